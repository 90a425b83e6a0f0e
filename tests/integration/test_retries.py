"""Transient database errors are retried a bounded number of times; then the job fails clearly, payload kept."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ingest.config import to_libpq_url
from tests.support.jobs import wait_for_job
from tests.support.tenant import new_tenant


@pytest.mark.slow
def test_lock_timeouts_exhaust_retries_then_job_fails_with_payload_kept(make_stack, broker_kind):
    """On RabbitMQ the retries' countdowns wait in RabbitMQ's delayed-delivery queues (whole seconds), out of the
    lane's queue like a countdown held by a worker on Redis. The sweeper is held off (REQUEUE_AFTER_S): on a busy
    machine the first attempt can start more than the tests' 3 s after the job was accepted, with the message taken
    and the row not yet locked, and a copy sent then has a retry budget of its own (the retries counted here would be
    those of two copies; seen under load on both brokers)."""
    stack = make_stack(broker_kind, DB_LOCK_TIMEOUT_MS=200, TASK_MAX_RETRIES=2, REQUEUE_AFTER_S=120)
    stack.start_worker(concurrency=1)
    release = threading.Event()
    locked = threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(to_libpq_url(stack.database_url)) as conn:
            conn.execute("LOCK TABLE metric_values IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(120)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        locked.wait(10)
        tenant = new_tenant(stack.database_url, stack.url)
        ss = tenant.session()
        with tenant.client() as c:
            r = c.post(
                "/v1/metrics/jobs",
                json={"requests": [{"session_id": ss, "device_id": None, "metrics": [{"name": "m", "value": 1.0}]}]},
            )
            job = wait_for_job(c, r.json()["data"]["job_id"], timeout=120)
        assert job["state"] == "failed"
        assert job["error"]["error"]["error_code"] == "RobotoServiceUnavailableException"
        assert "Gave up after 2 retries" in job["error"]["error"]["message"]
        assert job["counts"] == {"total": 1, "succeeded": 0, "failed": 1, "pending": 0}
        assert tenant.sql("SELECT state, length(payload) > 0 FROM job_chunks WHERE job_id = %s", job["job_id"]) == [
            ("failed", True)
        ]
        assert stack.logs().count('"chunk.retry"') == 2
    finally:
        release.set()
        holder.join()
        stack.stop()
