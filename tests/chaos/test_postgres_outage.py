"""Scenario 3: PostgreSQL stopped in the middle of a job for several seconds, then started again.

While it is down the API answers 503 RobotoServiceUnavailableException with Retry-After on every route that needs
the database (never a 500, never a traceback); afterwards the workers reconnect and every accepted job finishes
with exactly the expected outcomes."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.chaos.checks import assert_all_stored, job_requests, job_row
from tests.support.jobs import submit_job, wait_for_job
from tests.support.polling import wait_until
from tests.support.tenant import new_tenant

pytestmark = pytest.mark.slow


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.json() == {
        "error": {"error_code": "RobotoServiceUnavailableException", "message": response.json()["error"]["message"]}
    }
    assert int(response.headers["Retry-After"]) > 0
    assert "Traceback" not in response.text


def test_postgres_down_mid_job(own_pg, fresh, stack_on):
    _, broker_url = fresh
    stack = stack_on(own_pg.url, broker_url, METRICS_INGEST_CHUNK_ITEMS="500")
    stack.start_api()
    stack.start_worker()
    tenant = new_tenant(own_pg.url, stack.url)
    session = tenant.session()
    body = job_requests(session, requests=80, entries=250)  # 20,000 items in 40 chunks
    small = job_requests(session, requests=1, entries=20, prefix="i")

    with tenant.client() as client:
        job_id = submit_job(client, body)
        wait_until(lambda: job_row(tenant, job_id)["succeeded"] > 0, 60, "the job to start")
        at_stop = job_row(tenant, job_id)
        own_pg.stop()
        assert at_stop["succeeded"] < at_stop["total"], "the job finished before the outage; make it larger"
        # Requests on a pooled connection (dropped mid-use) and on new connections (refused) alike.
        for _ in range(3):
            assert_unavailable(client.get(f"/v1/metrics/jobs/{job_id}"))
            assert_unavailable(client.post("/v1/metrics", json=small[0]))
            assert_unavailable(client.post("/v1/metrics/jobs", json={"requests": small}))
            assert_unavailable(client.get("/v1/metrics/definitions/"))
        assert client.get("/healthz").status_code == 200  # liveness does not depend on the database
        ready = client.get("/readyz")  # readiness says which check fails
        assert ready.status_code == 503 and "database" in ready.json()["failed"], ready.text
        time.sleep(5)
        own_pg.start()

        small_id = submit_job(client, small, "interactive")

    wait_for_job(tenant, job_id, 180)
    wait_for_job(tenant, small_id, 60)
    assert_all_stored(tenant, job_id, body)
    assert_all_stored(tenant, small_id, small)
    assert '"status_code": 500' not in stack.logs() and "request.unhandled_error" not in stack.logs()
