"""Scenario 3: a slow network. 50 ms are added to every round trip to the `db` host (`tc netem delay` on its link;
where the kernel has no netem, a relay on the db host holds every byte PostgreSQL sends for 50 ms: the same added
round-trip time, for the service's connections only). A bulk job and interactive SDK publishers still complete with
exact results; the interactive p50 is reported next to the p50 of the same calls without the delay (same run)."""

from __future__ import annotations

import signal
import socket
import sys

import pytest

from tests.chaos.checks import job_requests
from tests.multihost.checks import assert_job_exact, items_counted
from tests.multihost.conftest import FIGURES
from tests.multihost.load import Publishers
from tests.support.jobs import submit_job, wait_for_job
from tests.support.polling import wait_until
from tests.support.stack import stop_process

pytestmark = [pytest.mark.slow, pytest.mark.multihost]

DELAY_MS = 50
RELAY_PORT = 5433


def publish_round(tenant, tag: str, calls: int) -> Publishers:
    """One SDK publisher, `calls` calls in a row: the latency of a publish with nothing else going on."""
    with Publishers(tenant, 1, tag, max_calls=calls) as publishers:
        wait_until(lambda: len(publishers.latencies_ms) >= calls, 120, f"{calls} publishes")
    return publishers


def test_everything_completes_over_a_slow_link_to_the_database(deploy, lab):
    netem_missing = lab.net.delay("db", DELAY_MS)
    relay = None
    if netem_missing is None:
        lab.net.undelay("db")  # the baseline first, on a fast link
        how = "tc netem on the db host's link"
        d = deploy("redis")
    else:  # the same 50 ms per round trip from a relay on the db host, for the service's connections
        how = f"a delaying relay on the db host: {netem_missing}"
        argv = [sys.executable, "-m", "tests.multihost.delay_relay", lab.pg.address, str(RELAY_PORT)]
        relay = lab.net.spawn("db", [*argv, lab.pg.address, str(lab.pg.port), str(DELAY_MS)], lab.log_dir / "relay.log")
        wait_until(lambda: socket.create_connection((lab.pg.address, RELAY_PORT), 1), 30, "the relay")
        d = deploy("redis", db_port=RELAY_PORT)
    try:
        run_with_delay(d, lab, relay, how)
    finally:
        lab.net.undelay("db")
        if relay is not None:
            stop_process(relay)


def run_with_delay(d, lab, relay, how: str) -> None:
    for host in ("worker-a", "worker-b"):
        d.start_worker(host, concurrency=2)
        d.start_worker(host, concurrency=1, lanes="interactive")
    d.wait_workers_ready(4)
    tenant = d.tenant()
    fast = publish_round(tenant, "fast", 30)

    if relay is None:
        assert lab.net.delay("db", DELAY_MS) is None
    else:
        relay.send_signal(signal.SIGUSR1)
    body = job_requests(tenant.session(), requests=8, entries=5000, prefix="slow")  # 40,000 items
    with Publishers(tenant, 2, "slow") as publishers, tenant.client() as client:
        job_id = submit_job(client, body)
        wait_for_job(client, job_id, 240)
    slow = publish_round(tenant, "slow1", 30)
    if relay is None:
        lab.net.undelay("db")
    else:
        relay.send_signal(signal.SIGUSR2)

    assert_job_exact(tenant, job_id, body)
    stored = 40_000 + sum(p.assert_all_stored() for p in (fast, publishers, slow))
    assert items_counted(tenant) == stored
    states = tenant.sql("SELECT DISTINCT state FROM jobs WHERE org_id = %s", tenant.org_id)
    assert states == [("succeeded",)], states
    p50_fast, p50_slow = fast.p50_p95()[0], slow.p50_p95()[0]
    FIGURES.append(
        f"slow network (+{DELAY_MS} ms per round trip to db; {how}): interactive p50 {p50_slow:.0f} ms vs "
        f"{p50_fast:.0f} ms without the delay (x{p50_slow / p50_fast:.1f}); during a 40,000-item bulk job "
        f"p50 {publishers.p50_p95()[0]:.0f} ms"
    )
