"""Scenario 4: the broker host is restarted empty in the middle of a job (Redis without persistence; RabbitMQ with its
data folder wiped: no queues, no messages, the user made again from its definitions). Every message in flight is
gone, including those workers held unacknowledged; a job accepted while the broker is down is committed but its
messages were never sent. The workers' sweepers re-send every chunk still queued once the lanes are empty, and every
accepted job ends with exactly the expected outcomes."""

from __future__ import annotations

import signal

import pytest

from tests.chaos.checks import job_requests, job_row
from tests.multihost.checks import assert_job_exact, items_counted
from tests.support.jobs import submit_job, wait_for_job
from tests.support.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.multihost]


def restart_empty(lab, broker_kind: str) -> None:
    if broker_kind == "redis":
        lab.redis.stop(signal.SIGKILL)  # no persistence: it comes back empty
        lab.redis.start()
    else:
        lab.rabbit.stop(signal.SIGKILL)
        lab.rabbit.wipe()
        lab.rabbit.start()


def test_broker_restarted_empty_mid_job(deploy, broker_kind, lab):
    d = deploy(broker_kind, CHUNK_ITEMS=1000)
    for host in ("worker-a", "worker-b"):
        d.start_worker(host, concurrency=1)
    d.wait_workers_ready(2)
    tenant = d.tenant()
    session = tenant.session()
    body = job_requests(session, requests=80, entries=1000)  # 80,000 items in 80 chunks
    during = job_requests(session, requests=3, entries=100, prefix="during")

    with tenant.client() as client:
        job_id = submit_job(client, body)
        wait_until(lambda: job_row(tenant, job_id)["succeeded"] > 0, 60, "the job to start")
        if broker_kind == "redis":
            lab.redis.stop(signal.SIGKILL)
        else:
            lab.rabbit.stop(signal.SIGKILL)
        at_stop = job_row(tenant, job_id)
        assert at_stop["succeeded"] < at_stop["total"], "the job finished before the broker went; make it larger"
        # accepted while the broker is down: committed in PostgreSQL, its message cannot be sent
        during_id = submit_job(client, during, "interactive")
        if broker_kind == "redis":
            lab.redis.start()
        else:
            lab.rabbit.wipe()
            lab.rabbit.start()

        wait_for_job(client, job_id, 180)
        wait_for_job(client, during_id, 120)

    assert_job_exact(tenant, job_id, body)
    assert_job_exact(tenant, during_id, during)
    assert items_counted(tenant) == 80_000 + 300
    resent = [e for host in ("worker-a", "worker-b") for e in d.events(host, "sweeper.resent")]
    assert {e["job_id"] for e in resent} >= {job_id, during_id}, "the jobs finished without the sweeper's help"
