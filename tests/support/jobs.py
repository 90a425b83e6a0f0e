"""Waiting for a job the way a caller does: polling `GET /v1/metrics/jobs/{id}` until it reaches a terminal state."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import Connection

from ingest import jobs
from ingest.jobs import TERMINAL_STATES
from ingest.payload import PublishRequest
from tests.support.polling import wait_until
from tests.support.tenant import Tenant


def wait_for_job(caller: httpx.Client | Tenant, job_id: str, timeout: float = 120) -> dict:
    """The job record once it is terminal, read with `caller`'s client (or a new client of the tenant). While the
    service cannot answer (a 503 during an outage, a refused connection), polling goes on until `timeout`."""
    if isinstance(caller, Tenant):
        with caller.client() as client:
            return wait_for_job(client, job_id, timeout)

    def finished() -> dict | None:
        try:
            response = caller.get(f"/v1/metrics/jobs/{job_id}")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        job = response.json()["data"]
        return job if job["state"] in TERMINAL_STATES else None

    return wait_until(finished, timeout, f"job {job_id} to finish", interval=0.1)


def submit_job(client: httpx.Client, requests: list[dict], lane: str = "bulk") -> str:
    """Submit a job through the native job API in `lane`; the test fails unless it is accepted (202). Its id."""
    submitted = client.post("/v1/metrics/jobs", json={"requests": requests}, params={"lane": lane})
    assert submitted.status_code == 202, submitted.text
    return submitted.json()["data"]["job_id"]


def store_job(conn: Connection, tenant: Tenant, requests: list[PublishRequest], chunk_items: int) -> str:
    """A bulk job stored straight through the job store, as the API's accept does, but with no message sent: what
    the sweeper (or a purge) finds when a send was lost. Returns its id."""
    job = jobs.create_job(
        conn,
        org_id=tenant.org_id,
        principal=tenant.principal,
        invocation_id=None,
        source="jobs",
        lane="bulk",
        requests=requests,
        chunk_items=chunk_items,
    )
    return job.job_id
