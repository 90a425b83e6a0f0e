"""Engine and pool factory. Call `get_engine()` lazily: in a forked worker process it builds a fresh pool."""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psycopg
from psycopg import pq
from sqlalchemy import Engine, TextClause, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ingest.config import Settings, get_settings

_engine: Engine | None = None
_engine_pid: int | None = None

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(settings: Settings, *, pool_size: int | None = None) -> Engine:
    engine = create_engine(
        settings.sqlalchemy_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=pool_size or settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout_s,
        # No pre-ping round trip per checkout; `_drop_if_closed_by_server` looks at the socket instead (no I/O).
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args=connect_args(settings),
    )
    event.listen(engine, "checkout", _drop_if_closed_by_server)
    return engine


def _drop_if_closed_by_server(dbapi_connection, _record, _proxy) -> None:
    """A pooled connection the server closed meanwhile (PostgreSQL restarted, killed, or a backend terminated) is
    replaced before anyone uses it, so a database restart never reaches a client as an error.

    An idle connection in the pool has nothing to read: a readable socket means the server sent end-of-file or a
    FATAL message before closing. That is one non-blocking poll of the socket per checkout, not a round trip
    (`pool_pre_ping` would cost one `SELECT 1` per request on the publish path). SQLAlchemy answers
    DisconnectionError by discarding the connection and checking out another (a new one when the pool is stale).
    A peer that vanished without closing (a cut network) is not seen here; TCP keepalives handle that."""
    if closed_by_server(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")


def closed_by_server(conn: psycopg.Connection) -> bool:
    if conn.closed or conn.broken:
        return True
    try:
        poller = select.poll()  # not select.select: no limit on the descriptor's number
        poller.register(conn.pgconn.socket, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True


def connect_args(settings: Settings) -> dict:
    """libpq parameters of every connection the service opens (the pool, the API's LISTEN connection).

    A peer that vanishes without closing its connection (a host powered off, a network cut) is noticed on both sides
    within about idle + interval * count seconds (`METRICS_INGEST_DB_KEEPALIVE_*`): TCP keepalives probe an idle
    connection and TCP_USER_TIMEOUT drops one whose sent data stays unacknowledged, in libpq (the client) and, set
    per session, in the server; `client_connection_check_interval` makes the server look at the client's socket
    while a statement runs (a worker waiting on a lock). So a worker cut off in the middle of a chunk loses its
    transaction and its row lock in about a minute, not after the kernel's 15-minute retransmission limit, and a
    transaction left open by a client that never comes back ends after `DB_IDLE_IN_TRANSACTION_TIMEOUT_S`.
    PostgreSQL 14 or newer (client_connection_check_interval)."""
    idle, interval, count = settings.db_keepalive_idle_s, settings.db_keepalive_interval_s, settings.db_keepalive_count
    user_timeout_ms = (idle + interval * count) * 1000
    server = {
        "lock_timeout": settings.db_lock_timeout_ms,
        "tcp_keepalives_idle": idle,
        "tcp_keepalives_interval": interval,
        "tcp_keepalives_count": count,
        "tcp_user_timeout": user_timeout_ms,
        "client_connection_check_interval": interval * 1000,
        "idle_in_transaction_session_timeout": settings.db_idle_in_transaction_timeout_s * 1000,
    }
    return {
        "connect_timeout": 5,
        "application_name": "metrics-ingest",
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": count,
        "tcp_user_timeout": user_timeout_ms,
        "options": " ".join(f"-c {name}={value}" for name, value in server.items()),
    }


def get_engine() -> Engine:
    """The process's engine, created on first use, and again after a fork (never shared across processes)."""
    global _engine, _engine_pid
    if _engine is None or _engine_pid != os.getpid():
        _engine = make_engine(get_settings())
        _engine_pid = os.getpid()
    return _engine


@lru_cache(maxsize=1024)
def statement(sql: str) -> TextClause:
    """`text(sql)`, built once per distinct statement and reused: building a TextClause parses its bind parameters
    every time, which for the longer statements of the hot path cost more than executing them."""
    return text(sql)


def dispose_engine() -> None:
    global _engine
    if _engine is not None:
        _engine.dispose(close=_engine_pid == os.getpid())
        _engine = None


@contextmanager
def transaction() -> Iterator[Connection]:
    with get_engine().begin() as conn:
        yield conn


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Apply every pending Alembic migration (safe to run from several processes at once)."""
    from alembic import command

    from ingest.config import to_sqlalchemy_url

    command.upgrade(alembic_config(to_sqlalchemy_url(url)), "head")


def schema_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql+psycopg://")).get_current_head() or ""


def schema_current(conn: Connection) -> str | None:
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def is_transient(err: BaseException) -> bool:
    """The database could not do it now: the server is away, a connection broke, no pooled connection was free in
    time, or a statement lost a race (lock time-out, deadlock, serialization failure). Nothing in the request is wrong;
    the same work may succeed when retried."""
    if isinstance(
        err, OperationalError | InterfaceError | PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError
    ):
        return True
    return isinstance(err, DBAPIError) and (
        err.connection_invalidated or isinstance(err.orig, psycopg.OperationalError | psycopg.InterfaceError)
    )


def driver_connection(conn: Connection) -> psycopg.Connection:
    """The psycopg connection under a SQLAlchemy one, for what SQLAlchemy does not offer (COPY, binary cursors)."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def _naive_utc_loader() -> type[psycopg.abc.Loader]:
    loader = psycopg.adapters.get_loader(psycopg.adapters.types["timestamp"].oid, pq.Format.BINARY)
    assert loader is not None  # psycopg always has one for its built-in types
    return loader


# timestamptz loaded as `timestamp` (the same binary form: microseconds in UTC): a naive datetime in UTC, made
# without a conversion into the session's zone per value, and hashed without a utcoffset() call. A query page of
# 10,000 rows loads and renders in about two thirds of the time (issue 19, docs/reads.md).
NAIVE_UTC_LOADER = _naive_utc_loader()


def fetch_tuples(conn: Connection, sql: str, params: dict, *, naive_utc_times: bool = False) -> list[tuple]:
    """Run a statement on the driver's own binary cursor: a page of 10,000 rows or a
    1,000-entry publish's records skip SQLAlchemy's row objects. `naive_utc_times`: timestamptz columns come back
    as naive datetimes in UTC (NAIVE_UTC_LOADER)."""
    compiled = text(sql).bindparams(**params).compile(dialect=conn.dialect)
    with driver_connection(conn).cursor(binary=True) as cur:
        if naive_utc_times:
            cur.adapters.register_loader("timestamptz", NAIVE_UTC_LOADER)
        cur.execute(compiled.string, compiled.params)
        return cur.fetchall()


def one_row(conn: Connection, sql: str, params: dict, missing: Exception) -> dict:
    """The statement's single row as a dict; `missing` is raised when there is none (a 404 or 409)."""
    row = conn.execute(statement(sql), params).first()
    if row is None:
        raise missing
    return dict(row._mapping)
