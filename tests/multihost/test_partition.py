"""Scenario 2: `worker-a` is cut off from the network in the middle of a chunk, for longer than the broker's redelivery
time. `worker-b` finishes that chunk; when `worker-a` comes back, what it was doing changes nothing: no chunk is
counted twice, no outcome written twice.

How the test knows worker-a holds the chunk: one key of chunk 0 is locked by the test (`SELECT ... FOR UPDATE` on its
row), so the worker that claims chunk 0 waits on that lock with the chunk's row locked; PostgreSQL shows a backend
from worker-a's address waiting on the test's lock. Only worker-a runs at that point; worker-b starts once it does.

Why worker-b can take the chunk although worker-a never released it: the database notices the vanished client
within seconds (the service's TCP keepalive / TCP_USER_TIMEOUT / client_connection_check_interval settings, here
2 + 1 x 3 s) and ends its session, which rolls back worker-a's transaction and drops its row lock. The chunk's
message comes back by redelivery (Redis: the visibility timeout; RabbitMQ: the dead connection's unacknowledged
messages) or from the sweeper; a copy is harmless (a chunk is claimed once, under a row lock, only while queued)."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.chaos.checks import job_requests
from tests.multihost.checks import assert_job_exact, items_counted
from tests.multihost.conftest import FIGURES
from tests.support.jobs import submit_job, wait_for_job
from tests.support.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.multihost]

KEEPALIVE = {"DB_KEEPALIVE_IDLE_S": 2, "DB_KEEPALIVE_INTERVAL_S": 1, "DB_KEEPALIVE_COUNT": 3}
VISIBILITY_S = 8  # Redis redelivers a message whose worker never acknowledged it after this long
HEARTBEAT_S = 4  # RabbitMQ drops a connection after two missed heartbeats and redelivers what it held


def redelivery_s(broker_kind: str) -> float:
    return VISIBILITY_S if broker_kind == "redis" else 2 * HEARTBEAT_S


def backends_from(deployment, address: str, waiting_on: int | None = None) -> int:
    query = "SELECT count(*) FROM pg_stat_activity WHERE client_addr = %s::inet"
    params: tuple = (address,)
    if waiting_on is not None:
        query += " AND wait_event_type = 'Lock' AND %s = ANY(pg_blocking_pids(pid))"
        params += (waiting_on,)
    return int(deployment.sql(query, *params)[0][0])


def test_worker_cut_off_mid_chunk(deploy, broker_kind):
    d = deploy(
        broker_kind,
        CHUNK_ITEMS=1000,
        BROKER_VISIBILITY_TIMEOUT_S=VISIBILITY_S,
        BROKER_HEARTBEAT_S=HEARTBEAT_S,
        DB_LOCK_TIMEOUT_MS=120_000,
        **KEEPALIVE,
    )
    a = d.net["worker-a"].address
    d.start_worker("worker-a", concurrency=1)
    d.wait_workers_ready(1)
    tenant = d.tenant()
    session = tenant.session()
    body = job_requests(session, requests=8, entries=1000)  # 8,000 items in 8 chunks of 1,000
    locked = body[0]["metrics"][0]["name"]  # in chunk 0
    seed = [{"session_id": session, "device_id": None, "metrics": [{"name": locked, "value": -1.0}]}]

    with tenant.client() as client:
        wait_for_job(client, submit_job(client, seed, "interactive"), 60)

        lock = psycopg.connect(d.database_url)  # the test's transaction holds the row of one key of chunk 0
        try:
            lock.execute(
                "SELECT v.value FROM metric_values v JOIN metric_definitions d USING (metric_id) "
                "WHERE v.org_id = %s AND v.session_id = %s AND d.name = %s FOR UPDATE OF v",
                (tenant.org_id, session, locked),
            )
            job_id = submit_job(client, body)
            blocked = lock.info.backend_pid
            wait_until(lambda: backends_from(d, a, waiting_on=blocked), 60, "worker-a to wait inside chunk 0")

            d.start_worker("worker-b", concurrency=1)
            d.wait_workers_ready(2)
            d.net.cut("worker-a")
            cut_at = time.monotonic()
            wait_until(lambda: backends_from(d, a) == 0, 60, "PostgreSQL to end worker-a's sessions")
            noticed_s = time.monotonic() - cut_at
        finally:
            lock.rollback()
            lock.close()

        job = wait_for_job(client, job_id, 120)
        assert job["state"] == "succeeded", job
        time.sleep(max(0.0, redelivery_s(broker_kind) + 2 - (time.monotonic() - cut_at)))
        finished_cut_s = time.monotonic() - cut_at
    by_b = [e for e in d.events("worker-b", "chunk.processed") if e["job_id"] == job_id]
    assert 0 in {e["chunk"] for e in by_b}, "worker-b did not process the chunk worker-a held"
    assert not [e for e in d.events("worker-a", "chunk.processed") if e["job_id"] == job_id and e["chunk"] == 0]

    # worker-a's own attempt at chunk 0 died with its connection: nothing of it was committed
    failed_there = [e for e in d.events("worker-a", "chunk.retry") if e["job_id"] == job_id and e["chunk"] == 0]
    assert failed_there, "worker-a's attempt at chunk 0 did not end in a connection error"

    d.net.heal("worker-a")
    wait_until(lambda: d.alive_workers() >= 2, 90, "worker-a to come back (its heartbeat)")
    after = job_requests(session, requests=4, entries=1000, prefix="after")  # both hosts work again
    with tenant.client() as client:
        after_id = submit_job(client, after)
        wait_for_job(client, after_id, 120)

    assert_job_exact(tenant, job_id, body)
    assert_job_exact(tenant, after_id, after)
    assert items_counted(tenant) == 1 + 8000 + 4000  # the seed and both jobs, each item counted once
    assert not [e for e in d.events("worker-a", "chunk.processed") if e["job_id"] == job_id and e["chunk"] == 0]
    FIGURES.append(
        f"partition ({broker_kind}): PostgreSQL ended the cut-off worker's session after {noticed_s:.1f} s; "
        f"worker-b finished the job while worker-a was cut off ({finished_cut_s:.1f} s in all)"
    )
