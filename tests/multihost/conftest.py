"""Several hosts on a test network (tests/multihost/network.py): `db` (PostgreSQL), `broker` (Redis and RabbitMQ),
`api`, `worker-a`, `worker-b`. The network and the servers are built once per test session, when a scenario first
needs them; each scenario deploys the service on them afresh (`deploy(...)`: a database and a broker of its own, the
API on `api`, workers on the worker hosts) and everything it started is stopped when it ends. Not root: every
scenario is skipped, with the reason.

Figures the scenarios measure are printed at the end of the run (`multihost figures`)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.multihost import network
from tests.multihost.network import Network
from tests.multihost.servers import PostgresHost, RedisHost
from tests.support import rabbitmq
from tests.support.polling import wait_until
from tests.support.rabbitmq import RabbitServer
from tests.support.servers import BROKERS
from tests.support.stack import FAST_SETTINGS, stop_process
from tests.support.tenant import Tenant, new_tenant

HOSTS = ("db", "broker", "api", "worker-a", "worker-b")
WORKER_HOSTS = ("worker-a", "worker-b")
API_PORT = 8000
RABBIT_VHOSTS = tuple(f"s{i}" for i in range(1, 17))

FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("multihost figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@dataclass
class Lab:
    net: Network
    pg: PostgresHost
    redis: RedisHost
    rabbit: RabbitServer | None
    log_dir: Path
    deployments: int = 0
    vhosts_used: int = 0

    def broker_url(self, kind: str) -> str:
        """A broker of a deployment's own: a Redis database, or a RabbitMQ virtual host."""
        if kind == "redis":
            return self.redis.new_broker()
        assert self.rabbit is not None
        self.vhosts_used += 1
        return self.rabbit.url(RABBIT_VHOSTS[self.vhosts_used - 1])


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = network.missing_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("multihost")
    net = Network()
    rabbit: RabbitServer | None = None
    pg = PostgresHost(net, "db", base / "pg")
    redis = RedisHost(net, "broker", base / "redis")
    try:
        net.create(HOSTS)
        pg.start()
        redis.start()
        if rabbitmq.missing_reason() is None:
            rabbit = RabbitServer(
                base / "rabbitmq", host=net["broker"].address, netns=net["broker"].netns, vhosts=RABBIT_VHOSTS
            )
            rabbit.start()
        yield Lab(net, pg, redis, rabbit, base)
    finally:
        if rabbit is not None:
            rabbit.close()
        pg.stop()
        redis.stop()
        net.close()  # kills whatever is still inside a namespace, deletes them and the bridge


@pytest.fixture(params=BROKERS)
def broker_kind(request: pytest.FixtureRequest, lab: Lab) -> str:
    """Scenarios that take it run on each broker (the lab's Redis, and its RabbitMQ when installed)."""
    if request.param == "rabbitmq" and lab.rabbit is None:
        pytest.skip(rabbitmq.missing_reason() or "RabbitMQ did not start")
    return request.param


@dataclass
class Deployment:
    lab: Lab
    log_dir: Path
    database_url: str
    broker_url: str
    settings: dict[str, str]
    service_database_url: str = ""  # what the API and workers use, when not `database_url` (through a relay)
    api: subprocess.Popen | None = None
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def net(self) -> Network:
        return self.lab.net

    @property
    def api_url(self) -> str:
        return f"http://{self.net['api'].address}:{API_PORT}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_INGEST_")}
        env.update(FAST_SETTINGS)
        env.update(
            METRICS_INGEST_DATABASE_URL=self.service_database_url or self.database_url,
            METRICS_INGEST_BROKER_URL=self.broker_url,
            METRICS_INGEST_LOG_FORMAT="json",
        )
        env.update(self.settings)
        return env

    def _cli(self, host: str, log: str, *args: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "runtime.cli", *args]
        return self.net.spawn(host, argv, self.log_dir / f"{log}.log", env=self.env())

    def start_api(self) -> None:
        self.api = self._cli("api", "api", "api", "--host", self.net["api"].address, "--port", str(API_PORT))

        def serving() -> bool:
            assert self.api is not None and self.api.poll() is None, self.read_log("api")[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.api_url + "/healthz", timeout=1).status_code == 200
            return False

        wait_until(serving, 60, "the API on the api host")

    def start_worker(self, host: str, concurrency: int = 2, lanes: str = "bulk,interactive") -> None:
        """A worker process on `host`; a host may run several (one per set of lanes)."""
        log = host if lanes == "bulk,interactive" else f"{host}-{lanes.replace(',', '+')}"
        name = f"{log}-{secrets.token_hex(2)}@{host}"
        self.workers[log] = self._cli(
            host, log, "worker", "--lanes", lanes, "--concurrency", str(concurrency), "--name", name
        )

    def wait_workers_ready(self, count: int, timeout: float = 60) -> None:
        """Until `count` workers have sent a heartbeat (their sweeper runs once the Celery consumer is up)."""
        wait_until(lambda: self.alive_workers() >= count, timeout, f"{count} workers to be up")

    def alive_workers(self) -> int:
        fresh = "NOT stopped AND last_seen > now() - interval '3s'"
        return int(self.sql(f"SELECT count(*) FROM worker_heartbeats WHERE {fresh}")[0][0])

    def stop_workers(self, host: str) -> None:
        for log in [log for log in self.workers if log == host or log.startswith(host + "-")]:
            stop_process(self.workers.pop(log), signal.SIGTERM, timeout=30)

    def sql(self, query: str, *params):
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def tenant(self) -> Tenant:
        return new_tenant(self.database_url, self.api_url)

    def read_log(self, name: str) -> str:
        """The log of the process `name` (api, worker-a, ...) or, for a host, of all its processes."""
        paths = [self.log_dir / f"{name}.log", *sorted(self.log_dir.glob(f"{name}-*.log"))]
        return "\n".join(p.read_text(errors="replace") for p in paths if p.exists())

    def events(self, name: str, event: str) -> list[dict]:
        """The JSON log lines with this `event` of one process, or of every process of a host."""
        found = []
        for line in self.read_log(name).splitlines():
            if f'"{event}"' in line and line.startswith("{"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(line))
        return [e for e in found if e.get("event") == event]

    def stop(self) -> None:
        for host in WORKER_HOSTS:
            self.stop_workers(host)
        if self.api is not None:
            stop_process(self.api, signal.SIGTERM, timeout=30)
            self.api = None


@pytest.fixture
def deploy(lab: Lab) -> Iterator:
    """`deploy(broker_kind, **settings)`: the service on the lab's servers, with a database and a broker (Redis
    database or RabbitMQ virtual host) of its own; settings as `CHUNK_ITEMS=2000`. The API is started; workers are
    the scenario's to start. Links cut or slowed by the scenario are restored, processes stopped, at the end."""
    made: list[Deployment] = []

    def make(broker_kind: str = "redis", db_port: int | None = None, **settings: object) -> Deployment:
        lab.deployments += 1
        log_dir = lab.log_dir / f"deployment{lab.deployments}"
        log_dir.mkdir()
        database_url = lab.pg.new_database()
        deployment = Deployment(
            lab,
            log_dir,
            database_url,
            lab.broker_url(broker_kind),
            {f"METRICS_INGEST_{k}": str(v) for k, v in settings.items()},
            database_url.replace(f":{lab.pg.port}/", f":{db_port}/") if db_port else "",
        )
        made.append(deployment)
        deployment.start_api()
        return deployment

    yield make
    lab.net.restore()
    for deployment in made:
        deployment.stop()
