"""Backpressure: with the backlog full the API answers 429 + Retry-After; the backfill waits, retries and completes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.test_backfill import finished_line
from tests.support.cli import client_env, start_cli
from tests.support.polling import wait_until
from tests.support.tenant import new_tenant


@pytest.fixture
def small_backlog_stack(make_stack):
    return make_stack(MAX_BACKLOG_ITEMS=3000)  # no worker yet: the backlog can only grow


@pytest.mark.slow
def test_backfill_waits_out_429_and_completes(small_backlog_stack, tmp_path: Path):
    stack = small_backlog_stack
    tenant = new_tenant(stack.database_url, stack.url)
    sessions = [tenant.session() for _ in range(10)]
    path = tmp_path / "bp.csv"
    path.write_text(
        "session_id,name,value\n" + "".join(f"{s},bp.m{n:03d},{n}\n" for s in sessions for n in range(1000))
    )
    proc = start_cli(
        "backfill",
        str(path),
        "--chunk-items",
        "2000",
        "--parallel",
        "1",
        env=client_env(tenant, stack.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    # jobs 1 and 2 fit (backlog 0, then 2,000 <= 3,000); job 3 meets a 4,000-item backlog and gets 429
    def two_jobs() -> bool:
        assert proc.poll() is None, "the backfill ended early"
        return tenant.sql("SELECT count(*) FROM jobs WHERE org_id = %s", tenant.org_id)[0][0] >= 2

    wait_until(two_jobs, 120, "two accepted jobs", interval=0.1)
    # the third job is refused (the API logs each request with its status), and the backfill keeps waiting
    wait_until(lambda: '"status": 429' in stack.read_log("api"), 60, "a job refused with 429", interval=0.1)
    assert proc.poll() is None, "the backfill must still be waiting"
    assert tenant.sql("SELECT count(*) FROM jobs WHERE org_id = %s", tenant.org_id)[0][0] == 2
    stack.start_worker()
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    assert '"status": 429' in out  # the retry was logged
    summary = finished_line(out)
    assert (summary["jobs"], summary["succeeded"], summary["failed"]) == (5, 10_000, 0)
    assert tenant.sql("SELECT count(*) FROM jobs WHERE org_id = %s", tenant.org_id)[0][0] == 5
