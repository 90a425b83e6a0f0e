"""Reading stored metric values as records (one row per (metric, session))."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from ingest.db import fetch_tuples, statement

RECORD_COLUMNS = (
    "v.org_id, v.metric_id, d.name, d.unit, v.session_id, v.value, v.device_id, v.invocation_id, "
    "v.session_start_ns, v.session_end_ns, v.published_by, v.published"
)
RECORD_FIELDS = tuple(column.split(".")[1] for column in RECORD_COLUMNS.split(", "))


def records_for_keys(conn: Connection, org_id: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """(name, session_id) -> stored record, for the keys that have one."""
    if not keys:
        return {}
    names, sessions = zip(*sorted(set(keys)), strict=True)
    rows = fetch_tuples(  # the driver's tuples: SQLAlchemy's row objects were a quarter of a 1,000-entry answer
        conn,
        f"SELECT {RECORD_COLUMNS} FROM unnest(CAST(:n AS text[]), CAST(:s AS text[])) AS k(name, session_id) "
        "JOIN metric_definitions d ON d.org_id = :o AND d.name = k.name "
        "JOIN metric_values v ON v.session_id = k.session_id AND v.metric_key = d.metric_key "
        "AND v.metric_id = d.metric_id",
        {"o": org_id, "n": list(names), "s": list(sessions)},
    )
    records = (dict(zip(RECORD_FIELDS, row, strict=True)) for row in rows)
    return {(r["name"], r["session_id"]): r for r in records}


def records_for_session(conn: Connection, org_id: str, session_id: str, limit: int) -> list[dict]:
    rows = conn.execute(
        statement(
            f"SELECT {RECORD_COLUMNS} FROM metric_values v JOIN metric_definitions d USING (metric_id) "
            "WHERE v.org_id = :o AND v.session_id = :s ORDER BY d.name LIMIT :lim"
        ),
        {"o": org_id, "s": session_id, "lim": limit},
    )
    return [dict(r._mapping) for r in rows]
