"""Migration 0008 (compact metric key in the indexes of metric_values) both ways, rows kept; at head a definition's
delete still cascades to its values, and a metric's window, its keyset page and a session's rows are index scans."""

from __future__ import annotations

import psycopg
from alembic import command

from ingest.config import to_libpq_url, to_sqlalchemy_url
from ingest.db import alembic_config, migrate

ROWS = [("ss_a", 1.0, 10, 20), ("ss_b", 2.0, 30, 40), ("ss_c", 3.0, 50, 60)]


def _seed(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO orgs (org_id) VALUES ('og_m')")
    for metric_id, name in (("mt_one", "one"), ("mt_two", "two")):
        conn.execute(
            "INSERT INTO metric_definitions (metric_id, org_id, name, created_by, modified_by) "
            "VALUES (%s, 'og_m', %s, 'p', 'p')",
            (metric_id, name),
        )
        for session_id, value, start, end in ROWS:
            conn.execute(
                "INSERT INTO metric_values (metric_id, session_id, org_id, value, session_start_ns, session_end_ns, "
                "published_by, published) VALUES (%s, %s, 'og_m', %s, %s, %s, 'p', now())",
                (metric_id, session_id, value, start, end),
            )


def _values(url: str) -> list[tuple]:
    with psycopg.connect(to_libpq_url(url)) as conn:
        return conn.execute(
            "SELECT metric_id, session_id, value, session_start_ns, session_end_ns FROM metric_values ORDER BY 1, 2"
        ).fetchall()


def _indexes(url: str) -> dict[str, str]:
    with psycopg.connect(to_libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'metric_values'::regclass"
        ).fetchall()
    return {name: d[d.index("USING btree ") + len("USING btree ") :] for name, d in rows}


def _plan(conn: psycopg.Connection, sql: str, params: tuple) -> str:
    conn.execute("SET enable_seqscan = off")  # a three-row table: the plan shows which index serves the query
    return "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))


def test_downgrade_and_upgrade_keep_rows(servers):
    url = servers.new_database()
    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        _seed(conn)
    stored = _values(url)
    assert len(stored) == 6
    assert _indexes(url) == {
        "metric_values_pkey": "(session_id, metric_key)",
        "ix_metric_values_end": "(metric_key, session_end_ns, session_id)",
        "ix_metric_values_start": "(metric_key, session_start_ns, session_id)",
    }

    command.downgrade(alembic_config(to_sqlalchemy_url(url)), "0007")
    assert _values(url) == stored
    assert _indexes(url) == {
        "metric_values_pkey": "(metric_id, session_id)",
        "ix_metric_values_end": "(metric_id, session_end_ns, session_id)",
        "ix_metric_values_start": "(metric_id, session_start_ns, session_id)",
        "ix_metric_values_org_session": "(org_id, session_id)",
    }

    migrate(url)
    assert _values(url) == stored
    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        conn.execute("DELETE FROM metric_definitions WHERE metric_id = 'mt_one'")
    assert [r[0] for r in _values(url)] == ["mt_two"] * 3


def test_queries_use_the_indexes(servers):
    url = servers.new_database()
    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        _seed(conn)
        conn.execute("ANALYZE metric_values")
        key = "metric_key = hashtextextended(%s::text, 0)"
        window = _plan(
            conn,
            f"SELECT value FROM metric_values WHERE {key} AND session_end_ns >= %s AND session_end_ns < %s "
            "AND (session_end_ns, session_id) > (%s::bigint, %s::text) ORDER BY session_end_ns, session_id",
            ("mt_one", 0, 100, 20, "ss_a"),
        )
        assert "ix_metric_values_end" in window and "Sort" not in window
        by_start = _plan(
            conn,
            f"SELECT value FROM metric_values WHERE {key} AND session_start_ns >= %s AND session_start_ns < %s "
            "ORDER BY session_start_ns DESC, session_id DESC",
            ("mt_one", 0, 100),
        )
        assert "Index Scan Backward using ix_metric_values_start" in by_start and "Sort" not in by_start
        session = _plan(conn, "SELECT value FROM metric_values WHERE org_id = %s AND session_id = %s", ("og_m", "ss_b"))
        assert "metric_values_pkey" in session
        cascade = _plan(conn, "DELETE FROM metric_values WHERE metric_key = %s AND metric_id = %s", (1, "mt_one"))
        assert "ix_metric_values_" in cascade
