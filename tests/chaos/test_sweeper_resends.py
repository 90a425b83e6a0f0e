"""Scenario 4: the API process dies right after committing a job and before sending its messages.

That crash leaves exactly this state: the job and its chunks committed, no message in the broker. We create it by
calling the outbox code in-process (the same call the API makes) and never enqueueing; the sweeper of a running
worker must send the chunks and the job must complete."""

from __future__ import annotations

import pytest

from ingest.config import Settings
from ingest.db import make_engine
from ingest.payload import PublishRequest
from tests.chaos.checks import assert_all_stored, job_requests
from tests.support.jobs import store_job, wait_for_job
from tests.support.tenant import new_tenant

pytestmark = pytest.mark.slow


def test_job_committed_but_never_enqueued_is_sent_by_the_sweeper(fresh, stack_on):
    database_url, broker_url = fresh
    stack = stack_on(database_url, broker_url, METRICS_INGEST_CHUNK_ITEMS="1000")
    stack.start_api()
    tenant = new_tenant(database_url, stack.url)
    session = tenant.session()
    body = job_requests(session, requests=12, entries=500)  # 6,000 items in 6 chunks

    engine = make_engine(Settings(database_url=database_url, broker_url=broker_url), pool_size=1)
    try:
        with engine.begin() as conn:
            job_id = store_job(
                conn,
                tenant,
                [
                    PublishRequest(r["session_id"], r["device_id"], [(m["name"], m["value"]) for m in r["metrics"]])
                    for r in body
                ],
                chunk_items=1000,
            )
    finally:
        engine.dispose()
    # No message was sent: nothing happens until a worker's sweeper notices the chunks (REQUEUE_AFTER_S=3).
    with tenant.client() as client:
        state = client.get(f"/v1/metrics/jobs/{job_id}").json()["data"]["state"]
    assert state == "queued"

    stack.start_worker()
    wait_for_job(tenant, job_id, 120)
    assert_all_stored(tenant, job_id, body)
    resent = [line for line in stack.logs().splitlines() if "sweeper.resent" in line and job_id in line]
    assert resent, "the job completed without the sweeper sending it"
