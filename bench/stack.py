"""The service under test, started by the bench: PostgreSQL and Redis (embedded in a temp folder, or the servers
named by METRICS_INGEST_DATABASE_URL / _BROKER_URL, where the bench creates a database of its own), the API and
the workers as real processes, laid out like `metrics-ingest up` (a bulk+interactive worker and an
interactive-only worker).

The bench drives the service as a user does: the `metrics-ingest` CLI (migrate, org, token, api, worker), the HTTP
API and the SDK. It reads PostgreSQL only for its raw baselines and to check what was stored."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

CLI = str(Path(sys.executable).with_name("metrics-ingest"))
WORKER_CONCURRENCY = 2  # `up`'s default (METRICS_INGEST_WORKER_CONCURRENCY)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://) as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def cli(env: dict[str, str], *args: str) -> str:
    """Run `metrics-ingest ARGS` with `env`; its stdout, stripped. Fails with its stderr."""
    done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"metrics-ingest {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


@dataclass
class Servers:
    """PostgreSQL and Redis for one bench run: those named by METRICS_INGEST_DATABASE_URL / _BROKER_URL (in a
    database the bench creates for itself), else the embedded ones, run by `metrics-ingest up --servers-only` in a
    temp data dir (it migrates and prints the URLs)."""

    database_url: str
    broker_url: str
    tmp: Path
    embedded: subprocess.Popen | None = None
    admin_url: str = ""
    database: str = ""

    keep: bool = False  # a data dir given by the caller: left in place at close, for a later run to re-use

    @classmethod
    def start(cls, data_dir: Path | None = None) -> Servers:
        """`data_dir`: embedded servers in that folder, kept at close (created when missing, re-used when not)."""
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir.resolve() if data_dir is not None else Path(tempfile.mkdtemp(prefix="mi-bench-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_INGEST_")}
        database_url = broker_url = admin = name = ""
        if os.environ.get("METRICS_INGEST_DATABASE_URL"):
            admin = libpq_url(os.environ["METRICS_INGEST_DATABASE_URL"])
            name = f"mi_bench_{secrets.token_hex(4)}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            database_url = env["METRICS_INGEST_DATABASE_URL"] = urlunsplit(urlsplit(admin)._replace(path="/" + name))
        if os.environ.get("METRICS_INGEST_BROKER_URL"):
            broker_url = env["METRICS_INGEST_BROKER_URL"] = os.environ["METRICS_INGEST_BROKER_URL"]
        embedded = None
        if not (database_url and broker_url):
            env.update(METRICS_INGEST_DATA_DIR=str(tmp / "data"), METRICS_INGEST_LOG_FORMAT="json")
            embedded, urls = start_embedded(env, tmp / "servers.log")
            database_url, broker_url = database_url or urls["database"], broker_url or urls["broker"]
            admin = admin or libpq_url(urls["database"])  # the embedded servers' superuser: CREATE DATABASE for MLflow
        servers = cls(database_url, broker_url, tmp, embedded, admin, name, keep=data_dir is not None)
        cli(servers.env(), "migrate")
        return servers

    def env(self) -> dict[str, str]:
        """The environment of every process of the service and of the CLI: these servers, JSON logs."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_INGEST_")}
        env.update(
            METRICS_INGEST_DATABASE_URL=self.database_url,
            METRICS_INGEST_BROKER_URL=self.broker_url,
            METRICS_INGEST_LOG_FORMAT="json",
            METRICS_INGEST_DATA_DIR=str(self.tmp / "data"),  # `up` keeps nothing there: the servers are external
            PYTHONUNBUFFERED="1",  # pool children leave with os._exit: buffered log lines would be lost
        )
        return env

    def close(self) -> None:
        if self.database:
            with contextlib.suppress(psycopg.Error), psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        if self.embedded:
            stop_process(self.embedded, timeout=60)
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def drain(stream, log: Path) -> None:
    """Keep reading a child's stdout into its log file, so that the child never blocks on a full pipe."""
    with open(log, "a") as out:
        for line in stream:
            out.write(line)


def start_embedded(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """`metrics-ingest up --servers-only`: until it printed `database: URL` and `broker: URL`."""
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [CLI, "up", "--servers-only"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:  # its log lines, then those two
        key, _, value = line.strip().partition(": ")
        if key in ("database", "broker"):
            urls[key] = value
        if len(urls) == 2:
            threading.Thread(target=drain, args=(proc.stdout, log), daemon=True).start()
            return proc, urls
    raise RuntimeError(f"metrics-ingest up --servers-only exited with {proc.wait()}; see {log}")


@dataclass
class Service:
    servers: Servers
    log_dir: Path
    api_port: int = 0
    api: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    others: list[subprocess.Popen] = field(default_factory=list)
    up: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        return self.servers.env() | {"METRICS_INGEST_API_PORT": str(self.api_port)}

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        return subprocess.Popen(argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_api(self) -> None:
        self.api_port = self.api_port or free_port()
        self.api = self._spawn("api", [CLI, "api"])
        self._wait_api(self.api)

    def _wait_api(self, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start; see the logs in " + str(self.log_dir))
            time.sleep(0.2)

    def start_up(self, workers: int = 2) -> None:
        """`metrics-ingest up` on the bench's servers (their URLs are set, so it starts no embedded ones): the
        supervisor, the API and the `workers` worker processes of the default layout, as one process tree (`self.up`).
        Returns once `GET /ops/status` lists that many live workers."""
        self.api_port = self.api_port or free_port()
        self.up = self._spawn("up", [CLI, "up"])
        self._wait_api(self.up)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                listed = httpx.get(self.url + "/ops/status", timeout=10).json().get("workers", [])
                if sum(1 for w in listed if w["alive"]) >= workers:
                    return
            time.sleep(0.3)
        raise RuntimeError("the workers of `up` did not report ready; see " + str(self.log_dir))

    def stop_up(self) -> None:
        if self.up:
            stop_process(self.up, timeout=40)
            self.up = None

    def start_worker(self, lanes: str = "bulk,interactive", concurrency: int = 2) -> None:
        name = f"worker{len(self.workers)}"
        argv = [CLI, "worker", "--lanes", lanes, "--concurrency", str(concurrency)]
        self.workers.append(self._spawn(name, [*argv, "--name", f"{name}-{os.getpid()}@bench"]))

    def start_up_layout(self) -> None:
        """The worker layout of `metrics-ingest up` with default settings."""
        self.start_worker("bulk,interactive", WORKER_CONCURRENCY)
        self.start_worker("interactive", 1)
        self.wait_workers()

    def wait_workers(self, timeout: float = 90) -> None:
        """Until every worker process of ours is listed alive by `GET /ops/status` (it heartbeats once ready)."""
        ours = {p.pid for p in self.workers}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                workers = httpx.get(self.url + "/ops/status", timeout=10).json().get("workers", [])
                if ours <= {w["pid"] for w in workers if w["alive"]}:
                    return
            time.sleep(0.3)
        raise RuntimeError("the workers did not report ready; see " + str(self.log_dir))

    def start_noop_worker(self, pool: str = "prefork") -> None:
        argv = [sys.executable, "-m", "celery", "-A", "bench.noop", "worker", "-Q", "bench_noop", "-c", "1", "-P", pool]
        self.others.append(self._spawn("noop", [*argv, "--without-gossip", "--without-mingle", "-l", "WARNING"]))

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop_process(proc)
        self.workers = []

    def stop(self) -> None:
        self.stop_up()
        self.stop_workers()
        for proc in self.others:
            stop_process(proc)
        if self.api:
            stop_process(self.api)

    def process_trees(self) -> dict[str, list[int]]:
        return {"api": [self.api.pid] if self.api else [], "workers": [p.pid for p in self.workers]}


def tree_rss(pid: int) -> int:
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Org:
    org_id: str
    token: str
    sessions: list[str]


def new_org(service: Service, sessions: int, prefix: str) -> Org:
    """An org (`metrics-ingest org create`), a token (`token create`) and `sessions` sessions (`POST /v1/sessions`)."""
    env = service.env()
    org_id = cli(env, "org", "create", f"og_{prefix}_{secrets.token_hex(4)}")
    token = cli(env, "token", "create", "--org", org_id, "--principal", "bench@example.com")
    ids = [f"ss_{prefix}_{i:07d}" for i in range(sessions)]
    headers = {"Authorization": f"Bearer {token}"}

    def create(i: int) -> None:
        start = 1_600_000_000_000_000_000 + i * 3_600_000_000_000
        body = {"session_id": ids[i], "start_time_ns": start, "end_time_ns": start + 3_000_000_000_000}
        response = http.post(service.url + "/v1/sessions", json=body, headers=headers, timeout=60)
        if response.status_code != 201:
            raise RuntimeError(f"session create: {response.status_code} {response.text}")

    with httpx.Client() as http, ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(sessions)))
    return Org(org_id, token, ids)
