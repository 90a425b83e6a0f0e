"""The service under test, started by the bench: PostgreSQL and Redis (embedded in a temp folder, or the servers
named by METRICS_INGEST_DATABASE_URL / _BROKER_URL, where the bench creates a database of its own), the API and
the workers as real processes, laid out like `metrics-ingest up` (a bulk+interactive worker and an
interactive-only worker)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg

from ingest.auth import hash_token
from ingest.config import get_settings, to_libpq_url
from ingest.db import migrate
from ingest.ids import token_id, token_secret
from runtime.embedded import EmbeddedPostgres, EmbeddedRedis, free_port


@dataclass
class Servers:
    database_url: str
    broker_url: str
    tmp: Path
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    admin_url: str = ""
    database: str = ""

    @classmethod
    def start(cls) -> Servers:
        settings = get_settings()
        tmp = Path(tempfile.mkdtemp(prefix="mi-bench-"))
        pg = redis = None
        if settings.database_url:
            admin = to_libpq_url(settings.database_url)
        else:
            pg = EmbeddedPostgres(tmp / "pg", free_port())
            pg.start()
            admin = pg.admin_url()
        if settings.broker_url:
            broker = settings.broker_url
        else:
            redis = EmbeddedRedis(tmp / "redis", free_port())
            redis.start()
            broker = f"redis://127.0.0.1:{redis.port}/0"
        name = f"mi_bench_{secrets.token_hex(4)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.rsplit("/", 1)[0] + "/" + name
        migrate(url)
        return cls(url, broker, tmp, pg, redis, admin, name)

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


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
        env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_INGEST_")}
        env.update(
            METRICS_INGEST_DATABASE_URL=self.servers.database_url,
            METRICS_INGEST_BROKER_URL=self.servers.broker_url,
            METRICS_INGEST_LOG_FORMAT="json",
            METRICS_INGEST_DATA_DIR=str(self.log_dir / "data"),  # `up` keeps nothing there: the servers are external
            PYTHONUNBUFFERED="1",  # pool children leave with os._exit: buffered log lines would be lost
        )
        if self.api_port:
            env["METRICS_INGEST_API_PORT"] = str(self.api_port)
        return env

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        return subprocess.Popen(argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_api(self) -> None:
        self.api_port = self.api_port or free_port()
        self.api = self._spawn("api", [sys.executable, "-m", "runtime.cli", "api"])
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

    def start_up(self) -> None:
        """`metrics-ingest up` on the bench's servers (their URLs are set, so it starts no embedded ones): the
        supervisor, the API and the workers of the default layout, as one process tree (`self.up`)."""
        self.api_port = self.api_port or free_port()
        self.up = self._spawn("up", [sys.executable, "-m", "runtime.cli", "up"])
        self._wait_api(self.up)
        self.wait_workers(expected=2 if get_settings().interactive_worker else 1)

    def stop_up(self) -> None:
        if self.up:
            stop_process(self.up, timeout=40)
            self.up = None
        with psycopg.connect(self.servers.database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM worker_heartbeats")

    def start_worker(self, lanes: str = "bulk,interactive", concurrency: int = 2) -> None:
        name = f"worker{len(self.workers)}"
        argv = [sys.executable, "-m", "runtime.cli", "worker", "--lanes", lanes, "--concurrency", str(concurrency)]
        self.workers.append(self._spawn(name, [*argv, "--name", f"{name}-{os.getpid()}@bench"]))

    def start_up_layout(self) -> None:
        """The worker layout of `metrics-ingest up` with default settings."""
        self.start_worker("bulk,interactive", get_settings().worker_concurrency)
        self.start_worker("interactive", 1)
        self.wait_workers()

    def wait_workers(self, timeout: float = 90, expected: int | None = None) -> None:
        """Until every worker process (or `expected` ones) wrote a heartbeat (the sweeper runs once the worker is
        ready)."""
        expected = len(self.workers) if expected is None else expected
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with psycopg.connect(self.servers.database_url) as conn:
                n = conn.execute(
                    "SELECT count(*) FROM worker_heartbeats WHERE last_seen > now() - interval '10 s' AND NOT stopped"
                ).fetchone()[0]
            if n >= expected:
                return
            time.sleep(0.3)

    def start_noop_worker(self, pool: str = "prefork") -> None:
        argv = [sys.executable, "-m", "celery", "-A", "bench.noop", "worker", "-Q", "bench_noop", "-c", "1", "-P", pool]
        self.others.append(self._spawn("noop", [*argv, "--without-gossip", "--without-mingle", "-l", "WARNING"]))

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop_process(proc)
        self.workers = []
        with psycopg.connect(self.servers.database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM worker_heartbeats")

    def stop(self) -> None:
        if self.up:
            stop_process(self.up, timeout=40)
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


def new_org(database_url: str, sessions: int, prefix: str) -> Org:
    """An org with a token and `sessions` sessions, created straight in the database."""
    org_id = f"og_{prefix}_{secrets.token_hex(4)}"
    secret = token_secret()
    ids = [f"ss_{prefix}_{i:07d}" for i in range(sessions)]
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO orgs (org_id) VALUES (%s)", (org_id,))
        conn.execute(
            "INSERT INTO api_tokens (token_id, token_hash, principal, org_ids) VALUES (%s, %s, %s, %s)",
            (token_id(), hash_token(secret), "bench@example.com", [org_id]),
        )
        with conn.cursor().copy("COPY sessions (org_id, session_id, start_ns, end_ns) FROM STDIN") as copy:
            for i, s in enumerate(ids):
                start = 1_600_000_000_000_000_000 + i * 3_600_000_000_000
                copy.write_row((org_id, s, start, start + 3_000_000_000_000))
    return Org(org_id, secret, ids)
