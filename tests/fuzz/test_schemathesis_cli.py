"""`schemathesis run` (the CLI, as a user runs it) over the live document, positive cases: every case the document
calls valid is accepted (no "schema-valid request rejected", i.e. no schema looser than validation), nothing answers
5xx, every response matches its schema, and the run reports no warning. Real identifiers come from a fixture tenant
(the config's `parameters`); what JSON Schema cannot say is in tests/fuzz/schemathesis_hooks.py. Invalid cases are
fuzzed by test_openapi_fuzz.py (no 5xx, always the Roboto envelope)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.config import schemathesis_config
from tests.support.jobs import wait_for_job
from tests.support.stack import Stack
from tests.support.tenant import new_tenant

MORE = """job_id = "{job}"

[[operations]]
include-name = "DELETE /v1/metrics/definition/{{name}}"
parameters = {{ name = "fuzz.gone" }}

[[operations]]
include-name = "GET /v1/metrics/definitions/"
parameters = {{ page_token = "{definitions_token}" }}

[[operations]]
include-name = "POST /v1/metrics/query"
parameters = {{ page_token = "" }}  # a query's token is bound to its body: the first page is what can be asked

[[operations]]
include-name = "GET /v1/metrics/jobs"
parameters = {{ page_token = "{jobs_token}" }}

[[operations]]
include-name = "GET /v1/metrics/jobs/{{job_id}}/results"
parameters = {{ page_token = "{results_token}", status = "succeeded" }}
"""


@pytest.mark.slow
def test_schemathesis_finds_the_document_exact(stack: Stack, tmp_path: Path):
    tenant = new_tenant(stack.database_url, stack.url)
    tenant.device("dv_fuzz")
    tenant.session("ss_fuzz", devices=("dv_fuzz",))
    with tenant.client() as c:
        for name in ("fuzz.a", "fuzz.b", "fuzz.gone"):
            assert c.post("/v1/metrics/definition/", json={"name": name}).status_code == 200
        body = {"requests": [{"session_id": "ss_fuzz", "metrics": [{"name": "fuzz.a", "value": 1.0}] * 2}]}
        jobs = [c.post("/v1/metrics/jobs", json=body).json()["data"]["job_id"] for _ in range(2)]
        for job_id in jobs:
            wait_for_job(c, job_id)
        tokens = {
            "definitions_token": c.get("/v1/metrics/definitions/", params={"max_results": 1}),
            "jobs_token": c.get("/v1/metrics/jobs", params={"max_results": 1}),
            "results_token": c.get(
                f"/v1/metrics/jobs/{jobs[0]}/results", params={"max_results": 1, "status": "succeeded"}
            ),
        }
    found = {key: r.json()["data"]["next_token"] for key, r in tokens.items()}
    assert all(found.values()), found
    config = tmp_path / "schemathesis.toml"
    more = MORE.format(job=jobs[0], **found)
    config.write_text(schemathesis_config(tenant.token, tenant.org_id, max_examples=15, more=more))
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run"]
        + ["--phases", "examples,fuzzing", "--mode", "positive", f"{stack.url}/openapi.json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis keeps its cache in the working directory
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-6000:]
    assert "Warnings:" not in report and "warning" not in report.splitlines()[-1], report[-3000:]
