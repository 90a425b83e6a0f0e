"""Real PostgreSQL and Redis for the tests: the servers named by METRICS_INGEST_DATABASE_URL / _BROKER_URL when
set (each test session gets a fresh database on that server), else embedded ones started in a temp folder."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ingest.config import to_libpq_url
from ingest.db import migrate
from runtime.embedded import EmbeddedPostgres, EmbeddedRedis, free_port


@dataclass
class Servers:
    admin_url: str  # a libpq URL to a maintenance database of the server
    broker_base: str  # redis://host:port (no db index)
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    databases: list[str] = field(default_factory=list)
    redis_dbs_used: int = 0

    def new_database(self) -> str:
        """A fresh, migrated database on the server; returns its URL."""
        name = f"mi_test_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        url = self.admin_url.rsplit("/", 1)[0] + "/" + name
        migrate(url)
        return url

    def new_broker(self) -> str:
        """A Redis database index of its own (1..15), so that stacks do not share queues."""
        self.redis_dbs_used += 1
        return f"{self.broker_base}/{self.redis_dbs_used % 16}"

    def close(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                for name in self.databases:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.stop()


def start_servers(tmp: Path) -> Servers:
    db_url = os.environ.get("METRICS_INGEST_DATABASE_URL")
    broker_url = os.environ.get("METRICS_INGEST_BROKER_URL")
    pg = redis = None
    if db_url:
        admin_url = to_libpq_url(db_url)
    else:
        pg = EmbeddedPostgres(tmp, free_port())
        pg.start()
        admin_url = pg.admin_url()
    if broker_url:
        base = broker_url.rstrip("/")
        if base.count("/") > 2:  # strip a db index
            base = base.rsplit("/", 1)[0]
    else:
        redis = EmbeddedRedis(tmp, free_port())
        redis.start()
        base = f"redis://127.0.0.1:{redis.port}"
    return Servers(admin_url, base, pg, redis)
