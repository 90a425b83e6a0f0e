"""Real PostgreSQL and Redis for the tests: the servers named by METRICS_INGEST_DATABASE_URL / _BROKER_URL when
set (each test session gets a fresh database on that server), else embedded ones started in a temp folder. Tests that
run on RabbitMQ get a virtual host of their own on a RabbitMQ server the test session starts (on first use) from the
machine's RabbitMQ installation."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from ingest.config import to_libpq_url
from ingest.db import migrate
from runtime.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from tests.support.rabbitmq import RabbitServer

BROKERS = ("redis", "rabbitmq")
RABBIT_VHOSTS = tuple(f"t{i:02d}" for i in range(1, 25))


@dataclass
class Servers:
    admin_url: str  # a libpq URL to a maintenance database of the server
    broker_base: str  # redis://host:port or unix:///path/redis.sock (no db index)
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    tmp: Path | None = None  # where more embedded Redis servers go when one runs out of databases
    databases: list[str] = field(default_factory=list)
    redis_dbs_used: int = 0
    more_redis: list[EmbeddedRedis] = field(default_factory=list)
    rabbits: list[RabbitServer] = field(default_factory=list)
    rabbit_vhosts_used: int = 0
    scratch: Path = field(default_factory=lambda: Path("/tmp"))  # where RabbitMQ servers keep their data

    def new_database(self) -> str:
        """A fresh, migrated database on the server; returns its URL."""
        name = f"mi_test_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        url = with_database(self.admin_url, name)
        migrate(url)
        return url

    def new_broker(self) -> str:
        """A Redis database of its own, never handed out twice in a run, so that stacks never share queues (and a
        test may flush its own). When the server's databases are used up, another embedded Redis is started; an
        external server's limit is an error naming the setting to raise."""
        capacity = redis_databases(self.broker_base)
        if self.redis_dbs_used + 1 >= capacity:  # index 0 is left alone
            if self.tmp is None:
                raise RuntimeError(
                    f"the test run needs more than {capacity - 1} Redis databases on {self.broker_base}: "
                    "raise `databases` in its configuration, or unset METRICS_INGEST_BROKER_URL"
                )
            extra = EmbeddedRedis(self.tmp / f"redis{len(self.more_redis) + 2}")
            extra.data_dir.mkdir(parents=True, exist_ok=True)
            extra.start()
            self.more_redis.append(extra)
            self.broker_base = extra.sockets.broker_url().partition("?")[0]
            self.redis_dbs_used = 0
        self.redis_dbs_used += 1
        return redis_db_url(self.broker_base, self.redis_dbs_used)

    def new_amqp_broker(self) -> str:
        """A RabbitMQ virtual host of its own (queues, exchanges, messages), on a server this test session started;
        another server is started when one's virtual hosts are used up."""
        if not self.rabbits or self.rabbit_vhosts_used >= len(RABBIT_VHOSTS):
            base = self.scratch / f"rabbitmq{len(self.rabbits)}"
            server = RabbitServer(
                base, port=free_port(), dist_port=free_port(), epmd_port=free_port(), vhosts=RABBIT_VHOSTS
            )
            self.rabbits.append(server)
            server.start()
            self.rabbit_vhosts_used = 0
        self.rabbit_vhosts_used += 1
        return self.rabbits[-1].url(RABBIT_VHOSTS[self.rabbit_vhosts_used - 1])

    def new_broker_of(self, kind: str) -> str:
        return self.new_amqp_broker() if kind == "rabbitmq" else self.new_broker()

    def close(self) -> None:
        for rabbit in self.rabbits:
            rabbit.close()
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                for name in self.databases:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass
        for server in [*self.more_redis, self.redis]:
            if server:
                server.stop()
        if self.pg:
            self.pg.stop()


def start_servers(tmp: Path) -> Servers:
    db_url = os.environ.get("METRICS_INGEST_DATABASE_URL")
    broker_url = os.environ.get("METRICS_INGEST_BROKER_URL")
    pg = redis = None
    if db_url:
        admin_url = to_libpq_url(db_url)
    else:
        pg = EmbeddedPostgres(tmp)
        pg.start()
        admin_url = pg.admin_url()
    if broker_url:
        base = broker_url.rstrip("/")
        if base.count("/") > 2:  # strip a db index
            base = base.rsplit("/", 1)[0]
    else:
        redis = EmbeddedRedis(tmp)
        redis.start()
        base = redis.sockets.broker_url().partition("?")[0]
    return Servers(admin_url, base, pg, redis, tmp=tmp if redis else None, scratch=tmp)


def with_database(url: str, name: str) -> str:
    """The PostgreSQL URL `url` naming database `name` instead (a TCP or a unix socket URL alike)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def redis_db_url(base: str, db: int) -> str:
    """Database `db` of the Redis server at `base` (redis://host:port or unix:///path)."""
    return f"{base}?db={db}" if base.startswith("unix://") else f"{base}/{db}"


def redis_databases(base_url: str) -> int:
    """How many databases the Redis server at `base_url` has (`databases`, 16 by default)."""
    import redis

    client = redis.Redis.from_url(base_url)
    try:
        return int(client.config_get("databases").get("databases", 16))
    except redis.ResponseError:  # CONFIG refused (a managed server): assume the default
        return 16
    finally:
        client.close()
