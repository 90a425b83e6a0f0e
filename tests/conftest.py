"""Real servers and processes for every test: PostgreSQL, Redis, the API and Celery workers (no stand-ins)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import rabbitmq
from tests.support.servers import BROKERS, Servers, start_servers
from tests.support.stack import Stack
from tests.support.tenant import Tenant, new_tenant


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    found = start_servers(tmp_path_factory.mktemp("servers"))
    yield found
    found.close()


@pytest.fixture(scope="session")
def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared service: one API process and one worker process on a database of its own."""
    running = Stack(servers.new_database(), servers.new_broker(), tmp_path_factory.mktemp("stack"))
    running.start_api()
    running.start_worker()
    # In-process code (admin helpers, direct reads) talks to the same database.
    os.environ["METRICS_INGEST_DATABASE_URL"] = running.database_url
    os.environ["METRICS_INGEST_BROKER_URL"] = running.broker_url
    from ingest.config import get_settings

    get_settings.cache_clear()
    yield running
    running.stop()


@pytest.fixture(params=BROKERS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    """Run the test on each broker: "redis" and "rabbitmq" (skipped, with the reason, without RabbitMQ)."""
    if request.param == "rabbitmq" and (reason := rabbitmq.missing_reason()):
        pytest.skip(reason)
    return request.param


@pytest.fixture
def make_stack(servers: Servers, tmp_path: Path) -> Iterator:
    """A service of the test's own (fresh database, own broker) with settings: `make_stack(CHUNK_ITEMS=500)` sets
    METRICS_INGEST_CHUNK_ITEMS; `make_stack("rabbitmq")` runs it on a RabbitMQ virtual host of its own instead of a
    Redis database. The API is started; workers are the test's to start. Stopped afterwards."""
    made: list[Stack] = []

    def make(broker: str = "redis", **settings: object) -> Stack:
        log_dir = tmp_path / f"stack{len(made)}"
        log_dir.mkdir()
        env = {f"METRICS_INGEST_{k}": str(v) for k, v in settings.items()}
        running = Stack(servers.new_database(), servers.new_broker_of(broker), log_dir, extra_env=env)
        made.append(running)
        running.start_api()
        return running

    yield make
    for running in made:
        running.stop()


@pytest.fixture
def tenant(stack: Stack) -> Tenant:
    return new_tenant(stack.database_url, stack.url)


@pytest.fixture
def other_tenant(stack: Stack) -> Tenant:
    return new_tenant(stack.database_url, stack.url)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
