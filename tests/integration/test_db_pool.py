"""The pool never hands out a connection the server has closed (ingest/db.py): a backend terminated behind its
back (what a PostgreSQL restart does to all of them) is replaced at checkout, without an error and without a
round trip for the healthy ones. tests/chaos/test_postgres_killed.py does the same with a real SIGKILL."""

from __future__ import annotations

import psycopg
from sqlalchemy import text

from ingest.config import Settings, to_libpq_url
from ingest.db import closed_by_server, make_engine
from tests.support.polling import wait_until
from tests.support.servers import Servers


def backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def terminate(url: str, pid: int) -> None:
    with psycopg.connect(to_libpq_url(url), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_closed_by_the_server_is_replaced_at_checkout(servers: Servers):
    url = servers.new_database()
    engine = make_engine(Settings(database_url=url), pool_size=1)
    try:
        first = backend_pid(engine)
        assert backend_pid(engine) == first  # a healthy pooled connection is reused
        terminate(url, first)
        raw = engine.pool._pool.queue[0].driver_connection  # type: ignore[attr-defined]
        wait_until(lambda: closed_by_server(raw), 10, "the terminated backend's socket to close")
        second = backend_pid(engine)  # no error: replaced before use
        assert second != first
        assert backend_pid(engine) == second
    finally:
        engine.dispose()


def test_an_idle_healthy_connection_is_not_taken_for_closed(servers: Servers):
    with psycopg.connect(to_libpq_url(servers.new_database()), autocommit=True) as conn:
        conn.execute("SELECT 1")
        assert not closed_by_server(conn)
