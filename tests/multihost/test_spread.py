"""Scenario 1: spread. A 200,000-item bulk job and 8 interactive SDK publishers, first with one worker host, then with
two: with two, each host processes at least a quarter of the job's chunks. Items/s of the bulk job and the
interactive latency are reported for both (the figures in docs/deploy.md). Every "host" here shares the machine's
two cores, so the second host adds no CPU: the figures show that the work spreads and what the network costs, not
capacity."""

from __future__ import annotations

import pytest

from tests.chaos.checks import job_requests
from tests.multihost.checks import assert_job_exact, items_counted
from tests.multihost.conftest import FIGURES, WORKER_HOSTS
from tests.multihost.load import Publishers
from tests.support.jobs import submit_job, wait_for_job

pytestmark = [pytest.mark.slow, pytest.mark.multihost]

BULK_ITEMS = 200_000
PUBLISHERS = 8


def run_round(d, tenant, tag: str) -> tuple[str, list[dict], Publishers]:
    """The bulk job and the publishers at once; returns when the job is terminal (publishers stop then)."""
    body = job_requests(tenant.session(), requests=40, entries=BULK_ITEMS // 40, prefix=f"bulk{tag}")
    with Publishers(tenant, PUBLISHERS, tag) as publishers, tenant.client() as client:
        job_id = submit_job(client, body)
        wait_for_job(client, job_id, 240)
    return job_id, body, publishers


def chunks_by_host(d, job_id: str) -> dict[str, int]:
    return {h: len([e for e in d.events(h, "chunk.processed") if e["job_id"] == job_id]) for h in WORKER_HOSTS}


def test_spread_over_two_worker_hosts(deploy):
    d = deploy("redis")
    tenant = d.tenant()
    rounds = {}
    for hosts, host in ((1, "worker-a"), (2, "worker-b")):
        # each worker host as docs/deploy.md lays it out: a worker for both lanes, one for interactive publishes
        d.start_worker(host, concurrency=2)
        d.start_worker(host, concurrency=1, lanes="interactive")
        d.wait_workers_ready(2 * hosts)
        job_id, body, publishers = run_round(d, tenant, str(hosts))
        ((duration_s, chunks),) = tenant.sql(
            "SELECT EXTRACT(EPOCH FROM finished - created), chunks_total FROM jobs WHERE job_id = %s", job_id
        )
        rounds[hosts] = (job_id, body, publishers, float(duration_s), chunks)

    job_id, _, _, _, chunks = rounds[2]
    shares = chunks_by_host(d, job_id)
    assert sum(shares.values()) == chunks, shares
    assert min(shares.values()) >= chunks / 4, f"one host did less than a quarter of the chunks: {shares}"
    assert chunks_by_host(d, rounds[1][0]) == {"worker-a": rounds[1][4], "worker-b": 0}

    stored = 0
    for job_id, body, publishers, _, _ in rounds.values():
        assert_job_exact(tenant, job_id, body)
        stored += BULK_ITEMS + publishers.assert_all_stored()
    states = tenant.sql("SELECT state, count(*) FROM jobs WHERE org_id = %s GROUP BY state", tenant.org_id)
    assert dict(states).keys() == {"succeeded"}, states
    assert items_counted(tenant) == stored

    for hosts, (_, _, publishers, duration_s, _) in rounds.items():
        p50, p95 = publishers.p50_p95()
        FIGURES.append(
            f"spread, {hosts} worker host{'s' if hosts > 1 else ''} (2 + 1 interactive processes each): "
            f"{BULK_ITEMS:,} bulk items in {duration_s:.1f} s = {BULK_ITEMS / duration_s:,.0f} items/s; "
            f"{PUBLISHERS} SDK publishers meanwhile: {len(publishers.latencies_ms)} calls of 20, "
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms"
        )
    FIGURES.append(f"spread, chunks of the 2-host job per host: {shares}")
