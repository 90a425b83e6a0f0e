"""Accepted jobs survive a worker SIGKILLed mid-job and a Redis that lost every message mid-job."""

from __future__ import annotations

import signal

import pytest
import redis

from tests.support.jobs import wait_for_job
from tests.support.polling import wait_until
from tests.support.stack import stop_process
from tests.support.tenant import new_tenant

SESSIONS, NAMES = 200, 40  # 8,000 items in 1,000-item chunks


@pytest.fixture
def private_stack(make_stack):
    return make_stack(CHUNK_ITEMS=1000)


def submit_big_job(tenant) -> tuple[str, list[str]]:
    sessions = [tenant.session(f"ss_{i:04d}") for i in range(SESSIONS)]
    requests = [
        {
            "session_id": s,
            "device_id": None,
            "metrics": [{"name": f"metric.{j:02d}", "value": float(i * 1000 + j)} for j in range(NAMES)],
        }
        for i, s in enumerate(sessions)
    ]
    requests[7]["metrics"][3]["name"] = "bad name"  # one known failure
    with tenant.client() as c:
        r = c.post("/v1/metrics/jobs", json={"requests": requests}, params={"lane": "bulk"})
    assert r.status_code == 202, r.text
    return r.json()["data"]["job_id"], sessions


def assert_complete_and_correct(tenant, job_id: str) -> None:
    with tenant.client() as c:
        job = wait_for_job(c, job_id, timeout=180)
    assert job["state"] == "completed_with_errors", job
    assert job["counts"] == {"total": SESSIONS * NAMES, "succeeded": SESSIONS * NAMES - 1, "failed": 1, "pending": 0}
    rows = tenant.sql(
        "SELECT count(*), count(DISTINCT (metric_id, session_id)), "
        "sum(CASE WHEN v.value = (CAST(substr(session_id, 4) AS int) * 1000 + CAST(substr(d.name, 8) AS int)) "
        "THEN 1 ELSE 0 END) FROM metric_values v JOIN metric_definitions d USING (metric_id) WHERE v.org_id = %s",
        tenant.org_id,
    )
    assert rows == [(SESSIONS * NAMES - 1,) * 3]
    chunks = tenant.sql(
        "SELECT count(*), sum(succeeded + failed) FROM job_chunks WHERE job_id = %s AND state = 'done'", job_id
    )
    assert chunks == [(SESSIONS * NAMES // 1000, SESSIONS * NAMES)]


def wait_some_progress(tenant, job_id: str) -> None:
    def progress() -> tuple | None:
        done = tenant.sql("SELECT chunks_done, chunks_total FROM jobs WHERE job_id = %s", job_id)[0]
        return done if done[0] >= 1 else None

    done, total = wait_until(progress, 60, f"job {job_id} to make progress", interval=0.02)
    assert done < total, "job finished before the fault could be injected"


@pytest.mark.slow
def test_worker_sigkill_mid_job(private_stack):
    tenant = new_tenant(private_stack.database_url, private_stack.url)
    worker = private_stack.start_worker(concurrency=1)
    job_id, _ = submit_big_job(tenant)
    wait_some_progress(tenant, job_id)
    stop_process(worker, signal.SIGKILL)  # the whole worker: main process and its pool, mid-chunk
    private_stack.workers.clear()
    pending = tenant.sql("SELECT chunks_done, chunks_total FROM jobs WHERE job_id = %s", job_id)[0]
    assert pending[0] < pending[1]
    private_stack.start_worker()
    assert_complete_and_correct(tenant, job_id)


@pytest.mark.slow
def test_redis_emptied_mid_job(private_stack):
    tenant = new_tenant(private_stack.database_url, private_stack.url)
    private_stack.start_worker(concurrency=1)
    job_id, _ = submit_big_job(tenant)
    wait_some_progress(tenant, job_id)
    # as a Redis restart that kept nothing would, for this stack's own database (other stacks share the server)
    redis.Redis.from_url(private_stack.broker_url).flushdb()
    assert_complete_and_correct(tenant, job_id)
    assert "sweeper.resent" in private_stack.logs()
