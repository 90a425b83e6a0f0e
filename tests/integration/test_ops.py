"""Operations on a stack of our own (so stopping its worker leaves the shared one alone): readiness follows the
workers, counters equal the work done and survive an API restart, the exposition parses, a client's request id
reaches the worker's log lines, the status command reports a job in progress."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.telemetry import SERIES
from tests.support.cli import run_cli
from tests.support.jobs import wait_for_job
from tests.support.polling import wait_until
from tests.support.stack import Stack, stop_process
from tests.support.tenant import Tenant, new_tenant

pytestmark = pytest.mark.slow


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    wait_until(check, timeout, what)


@pytest.fixture(scope="module")
def ops_stack(servers, tmp_path_factory) -> Iterator[Stack]:
    running = Stack(
        servers.new_database(),
        servers.new_broker(),
        tmp_path_factory.mktemp("ops_stack"),
        # small chunks: a job of a few requests spans several chunks (and several counter increments)
        extra_env={"METRICS_INGEST_WORKER_ALIVE_S": "3", "METRICS_INGEST_CHUNK_ITEMS": "3"},
    )
    running.start_api()
    running.start_worker()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ops_tenant(ops_stack: Stack) -> Tenant:
    return new_tenant(ops_stack.database_url, ops_stack.url)


def ready(stack: Stack) -> int:
    return httpx.get(stack.url + "/readyz", timeout=10).status_code


def scrape(stack: Stack, **headers: str) -> dict[tuple[str, tuple], float]:
    r = httpx.get(stack.url + "/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def submit_job(tenant: Tenant, requests: list[dict], **headers: str) -> httpx.Response:
    with tenant.client(**headers) as c:
        r = c.post("/v1/metrics/jobs", params={"lane": "bulk"}, json={"requests": requests})
    assert r.status_code == 202, r.text
    return r


def test_readiness_follows_the_workers(ops_stack: Stack):
    wait_for(lambda: ready(ops_stack) == 200, "readiness with a worker")
    body = httpx.get(ops_stack.url + "/readyz").json()
    assert body == {
        "status": "ok",
        "checks": {"database": "ok", "schema": "ok", "broker": "ok", "workers": "ok"},
    }
    assert httpx.get(ops_stack.url + "/healthz").json() == {"status": "ok"}

    ops_stack.stop_workers()  # a clean stop marks the heartbeat stopped
    wait_for(lambda: ready(ops_stack) == 503, "readiness to drop after a clean stop")
    body = httpx.get(ops_stack.url + "/readyz").json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["workers"]
    assert body["checks"] == {"database": "ok", "schema": "ok", "broker": "ok", "workers": "failed"}
    assert sample(scrape(ops_stack), "metrics_ingest_workers_alive") == 0
    assert httpx.get(ops_stack.url + "/healthz").status_code == 200  # alive all along

    ops_stack.start_worker()
    wait_for(lambda: ready(ops_stack) == 200, "readiness after the worker returned")
    assert sample(scrape(ops_stack), "metrics_ingest_workers_alive") == 1

    # a worker that dies without a word: its heartbeat goes stale after METRICS_INGEST_WORKER_ALIVE_S (3 s here)
    ops_stack.stop_workers(signal.SIGKILL)
    wait_for(lambda: ready(ops_stack) == 503, "readiness to drop after a killed worker")
    ops_stack.start_worker()
    wait_for(lambda: ready(ops_stack) == 200, "readiness after a restart")


def _items(good: int, bad: int, tag: str) -> list[dict]:
    metrics = [{"name": f"ops.{tag}.good{i}", "value": float(i)} for i in range(good)]
    metrics += [{"name": f"bad name {i}!", "value": 1.0} for i in range(bad)]
    return metrics


def test_counters_equal_the_work_done_and_survive_an_api_restart(ops_stack: Stack, ops_tenant: Tenant):
    wait_for(lambda: ready(ops_stack) == 200, "a ready stack")
    before = scrape(ops_stack)
    s1, s2 = ops_tenant.session(), ops_tenant.session()
    requests = [
        {"session_id": s1, "metrics": _items(4, 1, "a")},
        {"session_id": s2, "metrics": _items(3, 2, "b")},
        {"session_id": s1, "metrics": _items(2, 0, "c")},
        {"session_id": "ss_does_not_exist", "metrics": _items(2, 0, "d")},  # request-level error: 2 failed
    ]
    job = wait_for_job(ops_tenant, submit_job(ops_tenant, requests).json()["data"]["job_id"])
    assert (job["state"], job["counts"]["succeeded"], job["counts"]["failed"]) == ("completed_with_errors", 9, 5)

    after = scrape(ops_stack)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("metrics_ingest_items_total", lane="bulk", outcome="succeeded") == 9
    assert delta("metrics_ingest_items_total", lane="bulk", outcome="failed") == 5
    assert delta("metrics_ingest_jobs_total", lane="bulk", state="completed_with_errors") == 1
    assert delta("metrics_ingest_jobs_total", lane="bulk", state="succeeded") == 0
    assert delta("metrics_ingest_job_duration_seconds_count", lane="bulk") == 1
    assert delta("metrics_ingest_job_duration_seconds_bucket", lane="bulk", le="+Inf") == 1
    assert delta("metrics_ingest_items_total", lane="interactive", outcome="succeeded") == 0
    assert sample(after, "metrics_ingest_backlog_items", lane="bulk") == 0

    # the counters live in PostgreSQL: a new API process reports the same totals
    stop_process(ops_stack.api)
    ops_stack.start_api()
    again = scrape(ops_stack)
    for name, labels in [
        ("metrics_ingest_items_total", {"lane": "bulk", "outcome": "succeeded"}),
        ("metrics_ingest_items_total", {"lane": "bulk", "outcome": "failed"}),
        ("metrics_ingest_jobs_total", {"lane": "bulk", "state": "completed_with_errors"}),
    ]:
        assert sample(again, name, **labels) == sample(after, name, **labels)


def test_exposition_parses_and_names_every_series(ops_stack: Stack, ops_tenant: Tenant):
    with ops_tenant.client() as c:
        c.get("/v1/metrics/jobs/jb_unknown")  # a route with an id in it
    r = httpx.get(ops_stack.url + "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    names = {s.name for f in families.values() for s in f.samples}
    for series in SERIES:
        base = series.removesuffix("_total")
        assert series in names or base + "_count" in names or base in families, series
    assert families["metrics_ingest_job_duration_seconds"].type == "histogram"
    assert families["metrics_ingest_http_request_duration_seconds"].type == "histogram"
    assert families["metrics_ingest_jobs"].type == "counter"
    routes = {s.labels["route"] for s in families["metrics_ingest_http_requests"].samples}
    assert "/v1/metrics/jobs/{job_id}" in routes
    assert not any("jb_unknown" in route for route in routes)
    statuses = {
        (s.labels["route"], s.labels["status"])
        for s in families["metrics_ingest_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert ("/v1/metrics/jobs/{job_id}", "404") in statuses


def _log_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            lines.append(obj)
    return lines


def test_request_id_follows_a_job_into_the_worker_logs(ops_stack: Stack, ops_tenant: Tenant):
    wait_for(lambda: ready(ops_stack) == 200, "a ready stack")
    rid = "ops-trace-" + secrets.token_hex(6)
    s1 = ops_tenant.session()
    r = submit_job(ops_tenant, [{"session_id": s1, "metrics": _items(2, 1, "rid")}], **{"X-Request-Id": rid})
    assert r.headers["x-request-id"] == rid
    job_id = r.json()["data"]["job_id"]
    wait_for_job(ops_tenant, job_id)

    def worker_lines() -> list[dict]:
        text = "\n".join(ops_stack.read_log(f"worker{i}") for i in range(len(ops_stack.workers) + 4))
        return [line for line in _log_lines(text) if line.get("request_id") == rid]

    wait_for(lambda: any(line.get("event") == "job.finished" for line in worker_lines()), "the job.finished line")
    lines = worker_lines()
    assert {line["job_id"] for line in lines} == {job_id}
    processed = [line for line in lines if line["event"] == "chunk.processed"]
    assert processed and all(line["org_id"] == ops_tenant.org_id and line["lane"] == "bulk" for line in processed)
    assert all({"timestamp", "level", "event"} <= line.keys() for line in lines)
    api_lines = [line for line in _log_lines(ops_stack.read_log("api")) if line.get("request_id") == rid]
    assert {line["event"] for line in api_lines} >= {"job.accepted", "http.request"}

    # no header: the API makes one up, returns it, and the job carries it to the worker
    r = submit_job(ops_tenant, [{"session_id": s1, "metrics": _items(1, 0, "gen")}])
    generated = r.headers["x-request-id"]
    assert generated and generated != rid
    job_id = r.json()["data"]["job_id"]
    wait_for_job(ops_tenant, job_id)
    assert ops_tenant.sql("SELECT request_id FROM jobs WHERE job_id = %s", job_id) == [(generated,)]


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=stack.env())


def test_status_shows_a_job_in_progress(ops_stack: Stack, ops_tenant: Tenant):
    wait_for(lambda: ready(ops_stack) == 200, "a ready stack")
    ops_stack.stop_workers()  # the job stays queued: a backfill waiting for its workers
    s1 = ops_tenant.session()
    job_id = submit_job(ops_tenant, [{"session_id": s1, "metrics": _items(3, 0, f"st{i}")} for i in range(3)]).json()[
        "data"
    ]["job_id"]
    try:
        local = _cli(ops_stack, "status", "--json")
        assert local.returncode == 1, local.stderr  # not ready: no worker
        found = json.loads(local.stdout)
        assert found["services"]["workers"] == "failed" and found["services"]["database"] == "ok"
        running = {j["job_id"]: j for j in found["running_jobs"]}
        assert running[job_id]["total"] == 9 and running[job_id]["processed"] == 0
        bulk = next(lane for lane in found["lanes"] if lane["lane"] == "bulk")
        assert bulk["backlog_items"] >= 9

        remote = _cli(ops_stack, "status", "--json", "--endpoint", ops_stack.url)
        found = json.loads(remote.stdout)
        assert found["services"]["api"] == "ok" and job_id in {j["job_id"] for j in found["running_jobs"]}

        table = _cli(ops_stack, "status")
        assert job_id in table.stdout and "Jobs in progress" in table.stdout
    finally:
        ops_stack.start_worker()
    wait_for_job(ops_tenant, job_id)
    wait_for(lambda: _cli(ops_stack, "status", "--json").returncode == 0, "status to report ready")
    found = json.loads(_cli(ops_stack, "status", "--json").stdout)
    assert job_id not in {j["job_id"] for j in found["running_jobs"]}
    assert any(w["alive"] for w in found["workers"])
    failures = found["failures_last_hour"]
    assert failures["jobs"] >= 1 and failures["items"] >= 5  # the jobs with bad items above


def test_metrics_token_protects_the_operator_endpoints(ops_stack: Stack):
    secret = "mt-" + secrets.token_hex(8)
    stop_process(ops_stack.api)
    ops_stack.extra_env["METRICS_INGEST_METRICS_TOKEN"] = secret
    try:
        ops_stack.start_api()
        r = httpx.get(ops_stack.url + "/metrics")
        assert r.status_code == 401
        assert r.json()["error"]["error_code"] == "RobotoUnauthorizedException"
        assert httpx.get(ops_stack.url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(ops_stack.url + "/ops/status").status_code == 401
        assert scrape(ops_stack, Authorization=f"Bearer {secret}")
        assert httpx.get(ops_stack.url + "/readyz").status_code in (200, 503)  # probes stay open
    finally:
        stop_process(ops_stack.api)
        del ops_stack.extra_env["METRICS_INGEST_METRICS_TOKEN"]
        ops_stack.start_api()
    assert secret not in ops_stack.logs()


def test_readiness_names_a_stale_schema_and_a_dead_broker(servers, tmp_path):
    """An API on a database one migration behind and a Redis that does not answer: /readyz names both (and the
    missing workers), /metrics still serves this process's HTTP series."""
    import psycopg
    from alembic import command

    from ingest.config import to_libpq_url, to_sqlalchemy_url
    from ingest.db import alembic_config
    from runtime.embedded import free_port
    from tests.support.servers import with_database

    name = f"mi_test_old_{secrets.token_hex(4)}"
    with psycopg.connect(servers.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    servers.databases.append(name)
    url = with_database(to_libpq_url(servers.admin_url), name)
    command.upgrade(alembic_config(to_sqlalchemy_url(url)), "0001")

    stale = Stack(url, f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    stale.start_api()
    try:
        r = httpx.get(stale.url + "/readyz", timeout=30)
        assert r.status_code == 503
        body = r.json()
        assert body["checks"] == {"database": "ok", "schema": "failed", "broker": "failed", "workers": "failed"}
        assert body["failed"] == ["schema", "broker", "workers"]
        metrics = httpx.get(stale.url + "/metrics", timeout=30)
        assert metrics.status_code == 200
        names = {f.name for f in text_string_to_metric_families(metrics.text)}
        assert "metrics_ingest_http_requests" in names
        assert "metrics_ingest_jobs" not in names  # its table is not there yet: left out, not a failed scrape
    finally:
        stale.stop()
