"""Scenario 5: the `api` host loses its route to the `db` host (a partition between those two only: the clients and
the broker still reach the API). Requests that need the database are answered 503 RobotoServiceUnavailableException
with Retry-After (bounded by the connect time-out and TCP_USER_TIMEOUT, never a hang or a 500), `/readyz` answers 503
naming the failed check, and when the link comes back the API recovers by itself: ready again, publishes answered."""

from __future__ import annotations

import time

import pytest

from tests.chaos.checks import job_requests
from tests.multihost.checks import assert_job_exact
from tests.multihost.conftest import FIGURES
from tests.support.jobs import wait_for_job
from tests.support.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.multihost]


def assert_unavailable(response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.json()["error"]["error_code"] == "RobotoServiceUnavailableException", response.text
    assert set(response.json()["error"]) == {"error_code", "message"}
    assert int(response.headers["Retry-After"]) > 0


def test_api_cut_off_from_the_database(deploy):
    d = deploy("redis", DB_KEEPALIVE_IDLE_S=2, DB_KEEPALIVE_INTERVAL_S=1, DB_KEEPALIVE_COUNT=3)
    d.start_worker("worker-a")
    d.wait_workers_ready(1)
    tenant = d.tenant()
    session = tenant.session()
    before = job_requests(session, requests=1, entries=20, prefix="before")
    after = job_requests(session, requests=1, entries=20, prefix="after")

    with tenant.client() as client:
        published = client.post("/v1/metrics", json=before[0])
        assert published.status_code == 200, published.text
        assert client.get("/readyz").status_code == 200

        d.net.separate("api", "db")
        cut_at = time.monotonic()
        listed = client.get("/v1/metrics/jobs")  # a pooled connection: its query is never answered
        assert_unavailable(listed)
        first_answer_s = time.monotonic() - cut_at
        assert_unavailable(client.post("/v1/metrics", json=after[0]))
        assert_unavailable(client.get("/v1/metrics/definitions/"))
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "database" in ready.json()["failed"] and ready.json()["checks"]["broker"] == "ok", ready.text
        assert client.get("/healthz").status_code == 200

        d.net.join("api", "db")
        joined_at = time.monotonic()
        wait_until(lambda: client.get("/readyz").status_code == 200, 60, "the API to be ready again by itself")
        recovered_s = time.monotonic() - joined_at
        published = client.post("/v1/metrics", json=after[0])
        assert published.status_code == 200, published.text

    jobs = tenant.sql("SELECT job_id, state FROM jobs WHERE org_id = %s ORDER BY created", tenant.org_id)
    assert [state for _, state in jobs] == ["succeeded", "succeeded"], jobs
    assert_job_exact(tenant, jobs[0][0], before)
    assert_job_exact(tenant, jobs[1][0], after)
    for job_id, _ in jobs:
        wait_for_job(tenant, job_id, 10)
    text = d.read_log("api")
    assert '"status_code": 500' not in text and "request.unhandled_error" not in text
    FIGURES.append(
        f"api cut off from db: first 503 after {first_answer_s:.1f} s; ready again {recovered_s:.1f} s after the "
        "link came back"
    )
