"""Chaos scenarios: each builds its own stack on a database and broker of its own; those that break a server
start their own embedded one, so the shared servers are never disturbed. Every scenario built on `fresh` runs twice:
on Redis and on RabbitMQ (a virtual host of its own on a RabbitMQ server the test session starts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.db import migrate
from runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.support.servers import Servers
from tests.support.stack import Stack


@pytest.fixture
def own_pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path / "pg")
    pg.data_dir.mkdir(parents=True)
    pg.start()
    migrate(pg.url)
    yield pg
    pg.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(tmp_path / "redis")
    redis.data_dir.mkdir(parents=True)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def stack_on(tmp_path: Path) -> Iterator:
    """Stacks on a given database and broker (two APIs on one database; a PostgreSQL of the test's own), stopped
    at the end of the test whatever happens. (tests/conftest.py make_stack always makes a fresh database.)"""
    made: list[Stack] = []

    def make(database_url: str, broker_url: str, **env: str) -> Stack:
        log_dir = tmp_path / f"stack{len(made)}"
        log_dir.mkdir()
        stack = Stack(database_url, broker_url, log_dir, extra_env=dict(env))
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()


@pytest.fixture
def fresh(servers: Servers, broker_kind: str) -> tuple[str, str]:
    """A database of its own, and a broker of its own: a Redis database, or a RabbitMQ virtual host (the test runs
    once on each, `broker_kind` in tests/conftest.py)."""
    return servers.new_database(), servers.new_broker_of(broker_kind)
