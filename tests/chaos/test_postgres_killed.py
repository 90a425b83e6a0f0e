"""PostgreSQL killed with SIGKILL, then started again: once `/readyz` is green, no request fails.

Every pooled connection of every API process and worker is dead after the kill; the pools must replace them before
a request uses one (ingest/db.py looks at a pooled connection's socket at checkout), so not a single 503 reaches a
client once the service says it is ready again. Two API processes: `/readyz` reaches only one of them."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.chaos.checks import assert_all_stored, job_requests
from tests.support.jobs import submit_job, wait_for_job
from tests.support.polling import wait_until
from tests.support.servers import Servers
from tests.support.tenant import new_tenant

pytestmark = pytest.mark.slow

ROUNDS = 12  # requests of each kind after the restart


def gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_requests_succeed_once_ready_after_sigkill(own_pg, servers: Servers, stack_on):
    stack = stack_on(own_pg.url, servers.new_broker(), METRICS_INGEST_API_WORKERS="2")
    stack.start_api()
    stack.start_worker()
    tenant = new_tenant(own_pg.url, stack.url)
    session = tenant.session()
    warm = job_requests(session, requests=2, entries=10, prefix="w")

    with tenant.client() as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, 60, "the service to be ready")
        warm_id = submit_job(client, warm, "interactive")
        wait_for_job(client, warm_id, 60)

        def read(_: int) -> int:  # fills the pools of both API processes with connections
            return client.get("/v1/metrics/definitions/").status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(read, range(40))) == {200}

        assert own_pg.process is not None
        pgid = own_pg.process.pid
        own_pg.process.send_signal(signal.SIGKILL)  # the postmaster alone, as the OOM killer does
        own_pg.process.wait(30)
        wait_until(lambda: gone(pgid), 60, "the orphaned PostgreSQL backends to exit")
        own_pg.start()

        wait_until(lambda: client.get("/readyz").status_code == 200, 120, "the service to be ready again")

        requests = [job_requests(session, requests=1, entries=5, prefix=f"p{i}")[0] for i in range(ROUNDS)]
        bulk = [job_requests(session, requests=2, entries=20, prefix=f"b{i}") for i in range(ROUNDS)]

        def calls(i: int) -> list[tuple[str, httpx.Response]]:
            return [
                ("definitions", client.get("/v1/metrics/definitions/")),
                ("job", client.get(f"/v1/metrics/jobs/{warm_id}")),
                ("jobs", client.get("/v1/metrics/jobs")),
                ("session", client.get(f"/v1/metrics/session/{session}/")),
                ("publish", client.post("/v1/metrics", json=requests[i])),
                ("bulk", client.post("/v1/metrics/jobs", json={"requests": bulk[i]})),
            ]

        with ThreadPoolExecutor(6) as pool:
            answers = [answer for batch in pool.map(calls, range(ROUNDS)) for answer in batch]
        failed = [(kind, r.status_code, r.text[:200]) for kind, r in answers if r.status_code >= 300]
        assert not failed, failed
        bulk_ids = [r.json()["data"]["job_id"] for kind, r in answers if kind == "bulk"]
        for job_id in bulk_ids:
            wait_for_job(client, job_id, 120)

    for job_id, body in zip(bulk_ids, bulk, strict=True):
        assert_all_stored(tenant, job_id, body)
    assert "request.unhandled_error" not in stack.logs()
