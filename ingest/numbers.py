"""Numbers as JSON carries them: `5.0` is the integer 5 (JSON Schema says so, and clients send it), `true` is not."""

from __future__ import annotations


def json_integer(value: object) -> object:
    """An integral float becomes that int; any other value is returned as it is (bools stay bools)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def strict_integer(value: object) -> object:
    """For pydantic `BeforeValidator`: refuse booleans (pydantic's lax mode reads `true` as 1), keep the rest."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return json_integer(value)
