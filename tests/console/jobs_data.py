"""Jobs for the console tests, submitted through the API as any client would, and their outcomes as the API
reports them (the console must show the same)."""

from __future__ import annotations

from tests.support.jobs import wait_for_job
from tests.support.tenant import Tenant


def submit(tenant: Tenant, requests: list[dict]) -> str:
    with tenant.client() as client:
        resp = client.post("/v1/metrics/jobs", json={"requests": requests})
    assert resp.status_code == 202, resp.text
    return resp.json()["data"]["job_id"]


def finish(tenant: Tenant, requests: list[dict]) -> str:
    """Submit a job and wait until a worker finished it."""
    job_id = submit(tenant, requests)
    wait_for_job(tenant, job_id)
    return job_id


def api_failures(tenant: Tenant, job_id: str) -> list[dict]:
    """Every failed item of the job, from `GET /v1/metrics/jobs/{id}/results?status=failed`, all pages."""
    found: list[dict] = []
    token = None
    with tenant.client() as client:
        while True:
            params = {"status": "failed", "max_results": 1000, **({"page_token": token} if token else {})}
            page = client.get(f"/v1/metrics/jobs/{job_id}/results", params=params).json()["data"]
            found += page["items"]
            token = page["next_token"]
            if not token:
                return found
