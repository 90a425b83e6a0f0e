"""Orgs, devices and sessions: the entities metrics attach to."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest.db import one_row
from ingest.errors import Conflict, InvalidRequest, NotFound

SESSION_COLUMNS = (
    "s.org_id, s.session_id, s.start_ns, s.end_ns, s.created, s.modified, "
    "COALESCE((SELECT array_agg(sd.device_id ORDER BY sd.device_id) FROM session_devices sd "
    "WHERE sd.org_id = s.org_id AND sd.session_id = s.session_id), '{}') AS device_ids"
)


def create_org(conn: Connection, org_id: str) -> None:
    res = conn.execute(text("INSERT INTO orgs (org_id) VALUES (:o) ON CONFLICT DO NOTHING"), {"o": org_id})
    if res.rowcount == 0:
        raise Conflict(f"Organization '{org_id}' already exists")


def list_orgs(conn: Connection) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(text("SELECT org_id, created FROM orgs ORDER BY org_id"))]


def require_org(conn: Connection, org_id: str) -> None:
    if conn.execute(text("SELECT 1 FROM orgs WHERE org_id = :o"), {"o": org_id}).first() is None:
        raise NotFound(f"Organization '{org_id}' not found")


def create_device(conn: Connection, org_id: str, device_id: str) -> dict:
    require_org(conn, org_id)
    return one_row(
        conn,
        "INSERT INTO devices (org_id, device_id) VALUES (:o, :d) ON CONFLICT DO NOTHING "
        "RETURNING org_id, device_id, created",
        {"o": org_id, "d": device_id},
        Conflict(f"Device '{device_id}' already exists"),
    )


def get_device(conn: Connection, org_id: str, device_id: str) -> dict:
    return one_row(
        conn,
        "SELECT org_id, device_id, created FROM devices WHERE org_id = :o AND device_id = :d",
        {"o": org_id, "d": device_id},
        NotFound(f"Device '{device_id}' not found"),
    )


def window_problem(start_ns: int, end_ns: int) -> str | None:
    if start_ns < 0 or end_ns < 0:
        return "Session times must be non-negative nanoseconds since the epoch"
    if end_ns < start_ns:
        return "Session end time must not be before its start time"
    return None


def _check_window(start_ns: int, end_ns: int) -> None:
    problem = window_problem(start_ns, end_ns)
    if problem:
        raise InvalidRequest(problem)


def _attach_devices(conn: Connection, org_id: str, session_id: str, device_ids: list[str]) -> None:
    if not device_ids:
        return
    known = {
        r.device_id
        for r in conn.execute(
            text("SELECT device_id FROM devices WHERE org_id = :o AND device_id = ANY(:d)"),
            {"o": org_id, "d": device_ids},
        )
    }
    missing = sorted(set(device_ids) - known)
    if missing:
        raise NotFound(f"Device '{missing[0]}' not found")
    conn.execute(
        text(
            "INSERT INTO session_devices (org_id, session_id, device_id) "
            "SELECT :o, :s, d FROM unnest(CAST(:d AS text[])) AS d ON CONFLICT DO NOTHING"
        ),
        {"o": org_id, "s": session_id, "d": sorted(set(device_ids))},
    )


def create_session(
    conn: Connection, org_id: str, session_id: str, start_ns: int, end_ns: int, device_ids: list[str]
) -> dict:
    _check_window(start_ns, end_ns)
    require_org(conn, org_id)
    res = conn.execute(
        text(
            "INSERT INTO sessions (org_id, session_id, start_ns, end_ns) VALUES (:o, :s, :a, :b) ON CONFLICT DO NOTHING"
        ),
        {"o": org_id, "s": session_id, "a": start_ns, "b": end_ns},
    )
    if res.rowcount == 0:
        raise Conflict(f"Session '{session_id}' already exists")
    _attach_devices(conn, org_id, session_id, device_ids)
    return get_session(conn, org_id, session_id)


def get_session(conn: Connection, org_id: str, session_id: str) -> dict:
    return one_row(
        conn,
        f"SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.org_id = :o AND s.session_id = :s",
        {"o": org_id, "s": session_id},
        NotFound(f"Session '{session_id}' not found"),
    )


def update_session(
    conn: Connection,
    org_id: str,
    session_id: str,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    device_ids: list[str] | None = None,
) -> dict:
    """Change a session's times and/or attached devices. New times are copied onto its metric rows."""
    current = conn.execute(
        text("SELECT start_ns, end_ns FROM sessions WHERE org_id = :o AND session_id = :s FOR UPDATE"),
        {"o": org_id, "s": session_id},
    ).first()
    if current is None:
        raise NotFound(f"Session '{session_id}' not found")
    new_start = current.start_ns if start_ns is None else start_ns
    new_end = current.end_ns if end_ns is None else end_ns
    _check_window(new_start, new_end)
    if (new_start, new_end) != (current.start_ns, current.end_ns):
        params = {"o": org_id, "s": session_id, "a": new_start, "b": new_end}
        conn.execute(
            text(
                "UPDATE sessions SET start_ns = :a, end_ns = :b, modified = now() WHERE org_id = :o AND session_id = :s"
            ),
            params,
        )
        conn.execute(
            text(
                "UPDATE metric_values SET session_start_ns = :a, session_end_ns = :b "
                "WHERE org_id = :o AND session_id = :s"
            ),
            params,
        )
    if device_ids is not None:
        conn.execute(
            text("DELETE FROM session_devices WHERE org_id = :o AND session_id = :s"),
            {"o": org_id, "s": session_id},
        )
        _attach_devices(conn, org_id, session_id, device_ids)
    return get_session(conn, org_id, session_id)
