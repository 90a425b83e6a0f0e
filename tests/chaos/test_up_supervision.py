"""Scenario 5: under `metrics-ingest up`, the embedded PostgreSQL or Redis process is killed. `up` notices,
restarts it (with backoff, logged) and the service recovers without losing a job. A child that keeps dying makes
`up` exit non-zero with the reason."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from ingest.config import EmbeddedSockets
from runtime.embedded import free_port
from tests.chaos.checks import assert_all_stored, job_requests
from tests.support.cli import start_cli
from tests.support.jobs import wait_for_job
from tests.support.polling import wait_until
from tests.support.stack import FAST_SETTINGS, stop_process
from tests.support.tenant import new_tenant

pytestmark = pytest.mark.slow


class Up:
    def __init__(self, data_dir: Path, **env: str):
        self.data_dir = data_dir
        self.api_port = int(env.pop("METRICS_INGEST_API_PORT", 0)) or free_port()
        self.log = data_dir / "up.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_INGEST_")}
        self.env.update(FAST_SETTINGS)
        self.env.update(
            METRICS_INGEST_DATA_DIR=str(data_dir),
            METRICS_INGEST_API_PORT=str(self.api_port),
            METRICS_INGEST_INTERACTIVE_WORKER="false",
            METRICS_INGEST_WORKER_CONCURRENCY="1",
            METRICS_INGEST_CHUNK_ITEMS="500",
            **env,
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def database_url(self) -> str:  # the embedded server's own socket: nothing but the data dir is needed
        return EmbeddedSockets.of(self.data_dir).database_url()

    @property
    def broker_url(self) -> str:
        return EmbeddedSockets.of(self.data_dir).broker_url()

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = start_cli(
            "up",
            env=self.env,
            own_settings=True,  # the embedded servers, whatever URLs an earlier test left in os.environ
            stdout=open(self.log, "ab"),  # noqa: SIM115 - owned by the child
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 120) -> None:
        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, self.text()[-3000:]
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200

        wait_until(lambda: _quiet(healthy), timeout, "`up` to serve")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def server_pid(self, name: str) -> int:
        assert self.process is not None
        for child in psutil.Process(self.process.pid).children(recursive=True):
            if child.name() == name and (name != "postgres" or child.ppid() == self.process.pid):
                return child.pid
        raise AssertionError(f"no {name} process under `up`")


def _quiet(fn):
    try:
        return fn()
    except httpx.HTTPError:
        return None


@pytest.fixture
def up(tmp_path: Path) -> Iterator:
    started: list[Up] = []

    def make(**env: str) -> Up:
        u = Up(tmp_path / f"up{len(started)}", **env)
        started.append(u)
        u.start()
        return u

    yield make
    for u in started:
        if u.process is not None:
            stop_process(u.process, signal.SIGTERM, timeout=60)


def submit(tenant, body: list[dict]) -> str:
    """Submit a job as a client does: a 503 with Retry-After (a pooled connection that died with the server is
    found out by the request that uses it) is retried; any other answer but 202 fails the test."""
    with tenant.client() as client:
        for _ in range(5):
            resp = client.post("/v1/metrics/jobs", json={"requests": body}, params={"lane": "bulk"})
            if resp.status_code != 503:
                break
            assert resp.json()["error"]["error_code"] == "RobotoServiceUnavailableException"
            time.sleep(min(5, int(resp.headers["Retry-After"])))
    assert resp.status_code == 202, resp.text
    return resp.json()["data"]["job_id"]


@pytest.mark.parametrize("server", ["postgres", "redis-server"])
def test_up_restarts_a_killed_server(up, server):
    u = up()
    u.wait_healthy()
    assert f"console: {u.url}/console\n" in u.text()  # the one line a newcomer opens in a browser
    tenant = new_tenant(u.database_url, u.url)
    session = tenant.session()
    body = job_requests(session, requests=40, entries=250)  # 10,000 items in 20 chunks
    job_id = submit(tenant, body)

    os.kill(u.server_pid(server), signal.SIGKILL)
    child = "postgres" if server == "postgres" else "redis"
    wait_until(lambda: "up.child_died" in u.text() and child in u.text(), 30, f"`up` to notice {child} died")
    wait_until(lambda: "up.child_restarting" in u.text(), 60, f"`up` to restart {child}")
    assert u.process is not None and u.process.poll() is None

    wait_for_job(tenant, job_id, 180)
    assert_all_stored(tenant, job_id, body)
    later = job_requests(session, requests=2, entries=50, prefix="after")
    later_id = submit(tenant, later)
    wait_for_job(tenant, later_id, 120)
    assert_all_stored(tenant, later_id, later)


def test_up_gives_up_on_a_child_that_keeps_dying(up):
    with socket.socket() as taken:  # the API cannot bind its port: it dies at once, every time
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # A window long enough for a loaded machine, where one start of the API alone may take 20 s.
        u = up(
            METRICS_INGEST_API_PORT=str(taken.getsockname()[1]),
            METRICS_INGEST_UP_MAX_RESTARTS="3",
            METRICS_INGEST_UP_RESTART_WINDOW_S="900",
        )
        assert u.process is not None
        code = u.process.wait(600)
    assert code != 0
    text = u.text()
    assert "api died 4 times within 900 s" in text and "giving up" in text
    assert text.count("up.child_restarting") >= 3
    # Every other child was stopped with it.
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(u.data_dir) in " ".join(p.info["cmdline"] or [])]
