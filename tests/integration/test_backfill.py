"""`metrics-ingest backfill` run as a subprocess against the live stack: exact counts, the failures file, re-runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import cli
from tests.support.cli import client_env

NAMES = [f"bf.metric_{i:03d}" for i in range(150)]


def run_cli(tenant, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return cli.run_cli(*args, env=client_env(tenant), timeout=timeout)


def finished_line(stdout: str) -> dict:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return next(e for e in reversed(events) if e.get("event") == "backfill.finished")


def job_count(tenant) -> int:
    return tenant.sql("SELECT count(*) FROM jobs WHERE org_id = %s", tenant.org_id)[0][0]


def value_count(tenant) -> int:
    return tenant.sql("SELECT count(*) FROM metric_values WHERE org_id = %s", tenant.org_id)[0][0]


@pytest.fixture
def dataset(tenant, tmp_path: Path) -> tuple[Path, list[str]]:
    """3,000 good rows over 20 sessions, plus 14 bad ones: 3 unreadable lines, and 11 the service refuses."""
    sessions = [tenant.session() for _ in range(20)]
    lines = ["session_id,name,value"]
    for s in sessions:
        lines += [f"{s},{n},{i * 0.5}" for i, n in enumerate(NAMES)]
    lines.insert(500, f"{sessions[0]},bf.metric_000,not-a-number")  # reader: value is not a number
    lines.insert(1200, f"{sessions[1]},bf.only_two_fields")  # reader: too few fields
    lines.insert(2100, ",bf.metric_001,1.0")  # reader: empty session id
    lines += [f"ss_missing,bf.metric_{i:03d},1.0" for i in range(5)]  # worker: session not found
    lines += [f"{sessions[2]},bad name {i}!,1.0" for i in range(4)]  # worker: invalid name
    lines += [f"{sessions[3]},bf.nan_{i},nan" for i in range(2)]  # worker: not finite
    path = tmp_path / "history.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path, sessions


def test_backfill_counts_failures_and_rerun(tenant, dataset):
    path, _ = dataset
    first = run_cli(tenant, "backfill", str(path), "--chunk-items", "1000")
    assert first.returncode == 1, first.stderr
    summary = finished_line(first.stdout)
    assert summary["read"] == 3011
    assert summary["line_errors"] == 3
    assert summary["succeeded"] == 3000
    assert summary["failed"] == 14
    assert summary["jobs"] == 4 and summary["jobs_resumed"] == 0
    assert value_count(tenant) == 3000
    jobs_after_first = job_count(tenant)
    assert jobs_after_first == 4

    failures = path.with_name("history.csv.failed.ndjson")
    assert Path(summary["failures_file"]) == failures
    docs = [json.loads(line) for line in failures.read_text().splitlines()]
    assert len(docs) == 14
    assert all(d["error"]["error_code"] and d["error"]["message"] for d in docs)
    unreadable = sorted(d["source"]["line"] for d in docs if "session_id" not in d)
    assert unreadable == [501, 1201, 2101]
    by_code: dict[str, int] = {}
    for d in docs:
        by_code[d["error"]["error_code"]] = by_code.get(d["error"]["error_code"], 0) + 1
    assert by_code == {"RobotoInvalidRequestException": 9, "RobotoNotFoundException": 5}
    nan_lines = [d for d in docs if d.get("metrics", [{}])[0].get("name", "").startswith("bf.nan_")]
    assert [d["metrics"][0]["value"] for d in nan_lines] == [None, None]

    # the same command again: every chunk is recognised by its key, nothing new is created
    second = run_cli(tenant, "backfill", str(path), "--chunk-items", "1000")
    assert second.returncode == 1
    again = finished_line(second.stdout)
    assert again["jobs_resumed"] == 4 and again["resumed_items"] == 3011
    assert (again["succeeded"], again["failed"]) == (3000, 14)
    assert job_count(tenant) == jobs_after_first
    assert len(failures.read_text().splitlines()) == 14

    # the failures file is itself valid input: fix the cause of some failures and feed it back
    tenant.session("ss_missing")
    third = run_cli(tenant, "backfill", str(failures))
    assert third.returncode == 1
    fixed = finished_line(third.stdout)
    assert (fixed["succeeded"], fixed["failed"], fixed["line_errors"]) == (5, 9, 3)
    assert value_count(tenant) == 3005
    retry_failures = failures.with_name(failures.name + ".failed.ndjson")
    assert len(retry_failures.read_text().splitlines()) == 9


def test_backfill_clean_file_exits_zero_and_job_commands(tenant, tmp_path):
    session = tenant.session()
    path = tmp_path / "clean.ndjson"
    path.write_text(
        json.dumps({"session_id": session, "device_id": {}, "metrics": [{"name": "a.b", "value": 1}]})
        + "\n"
        + json.dumps({"session_id": session, "metrics": [{"name": "a.c", "value": 2.5}, {"name": "bad!", "value": 3}]})
        + "\n"
    )
    result = run_cli(tenant, "backfill", str(path))
    assert result.returncode == 1
    summary = finished_line(result.stdout)
    assert (summary["succeeded"], summary["failed"]) == (2, 1)
    job_id = tenant.sql("SELECT job_id FROM jobs WHERE org_id = %s", tenant.org_id)[0][0]

    watched = run_cli(tenant, "job", "watch", job_id)
    assert watched.returncode == 1  # one value failed
    assert '"state": "completed_with_errors"' in watched.stdout

    listed = run_cli(tenant, "job", "results", job_id, "--failed")
    assert listed.returncode == 0
    items = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith('{"request_index"')]
    assert [(i["name"], i["status"]) for i in items] == [("bad!", "failed")]

    path.write_text(path.read_text().replace(', {"name": "bad!", "value": 3}', ""))
    clean = run_cli(tenant, "backfill", str(path))
    assert clean.returncode == 0, clean.stdout
    assert not path.with_name("clean.ndjson.failed.ndjson").exists()  # resolved failures leave no file


def test_job_watch_of_another_orgs_job_is_not_found(tenant, other_tenant):
    session = tenant.session()
    with tenant.client() as c:
        job = c.post("/v1/metrics/jobs", json={"requests": [{"session_id": session, "metrics": []}]}).json()["data"]
    result = run_cli(other_tenant, "job", "watch", job["job_id"])
    assert result.returncode == 1
    assert "RobotoNotFoundException" in result.stderr


def test_backfill_with_a_bad_token_stops_at_once(tenant, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("session_id,name,value\n" + "".join(f"ss_1,m{i},1\n" for i in range(100)))
    tenant.token = "mi_not_a_real_token_000000000000000000"
    result = run_cli(tenant, "backfill", str(path))
    assert result.returncode == 1
    assert "401" in result.stderr
    assert not path.with_name("x.csv.failed.ndjson").exists()
    assert job_count(tenant) == 0
