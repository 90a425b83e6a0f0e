"""A backfill killed mid-way (SIGKILL, no cleanup) and started again completes with no duplicate jobs, and leaves
nothing behind: the killed run's spool directory and partial failures file are removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from runtime.backfill.spool import PREFIX
from tests.integration.test_backfill import finished_line, job_count, value_count
from tests.support.cli import client_env, run_cli, start_cli
from tests.support.polling import wait_until

SESSIONS = 40
NAMES = 500  # 20,000 values; 40 chunks of 500


def test_killed_backfill_resumes_without_duplicates(tenant, tmp_path: Path):
    sessions = [tenant.session() for _ in range(SESSIONS)]
    path = tmp_path / "big.csv"
    with open(path, "w") as fh:
        fh.write("session_id,name,value\n")
        for s in sessions:
            for n in range(NAMES):
                fh.write(f"{s},resume.m{n:04d},{n}\n")
    args = ["backfill", str(path), "--chunk-items", "500", "--parallel", "1"]
    tmp = tmp_path / "tmp"  # the backfill's TMPDIR: where its spool goes
    tmp.mkdir()
    env = {**client_env(tenant), "TMPDIR": str(tmp)}

    proc = start_cli(
        *args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def three_jobs() -> bool:
        assert proc.poll() is None, "the backfill ended before it could be interrupted"
        return job_count(tenant) >= 3

    wait_until(three_jobs, 120, "three accepted jobs", interval=0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    accepted_before = job_count(tenant)
    assert 3 <= accepted_before < 40, "the kill must land mid-way"
    assert not path.with_name("big.csv.failed.ndjson").exists()
    assert list(tmp.glob(PREFIX + "*")), "the killed run left no spool directory: the check below proves nothing"
    partial = path.with_name("big.csv.failed.ndjson.partial")
    assert partial.exists()

    resumed = run_cli(*args, env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    summary = finished_line(resumed.stdout)
    assert summary["jobs"] == 40
    assert summary["jobs_resumed"] >= accepted_before
    assert (summary["succeeded"], summary["failed"]) == (20_000, 0)
    assert job_count(tenant) == 40  # one job per chunk, however many times it was sent
    assert value_count(tenant) == 20_000
    keys = tenant.sql("SELECT count(DISTINCT idempotency_key) FROM jobs WHERE org_id = %s", tenant.org_id)[0][0]
    assert keys == 40
    unfinished = tenant.sql(
        "SELECT count(*) FROM jobs WHERE org_id = %s AND state NOT IN ('succeeded', 'completed_with_errors', 'failed')",
        tenant.org_id,
    )[0][0]
    assert unfinished == 0
    assert not list(tmp.iterdir()), "the next run cleans up after the killed one"
    assert not partial.exists()
