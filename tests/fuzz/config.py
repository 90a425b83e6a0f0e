"""The `schemathesis run` configuration both CLI runs share: the tenant's token and org on every request, the
hooks module, only the examples and fuzzing phases, and real identifiers for the path and header parameters."""

from __future__ import annotations


def schemathesis_config(token: str, org: str, max_examples: int, more: str = "") -> str:
    """A schemathesis.toml; `more` is appended (further `[parameters]` lines first, then `[[operations]]` tables)."""
    return f"""
headers = {{ Authorization = "Bearer {token}", "X-Roboto-Org-Id" = "{org}" }}
hooks = "tests.fuzz.schemathesis_hooks"

[generation]
max-examples = {max_examples}

[phases.coverage]
enabled = false

[phases.stateful]
enabled = false

[parameters]
session_id = "ss_fuzz"
device_id = "dv_fuzz"
name = "fuzz.a"
"x-roboto-org-id" = "{org}"
"x-roboto-resource-owner-id" = "{org}"
{more}"""
