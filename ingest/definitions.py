"""Metric definitions: per-org named schemas that metric values reference."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest import ids
from ingest.db import one_row
from ingest.errors import Conflict, InvalidRequest, NotFound
from ingest.notset import NOT_SET
from ingest.payload import text_problem

NAME_PATTERN = r"^[A-Za-z0-9\-._~]+$"
NAME_RE = re.compile(NAME_PATTERN)
MAX_UNIT_LENGTH = 63
DEFINITION_COLUMNS = "org_id, metric_id, name, description, unit, created_by, created, modified_by, modified"


def name_problem(name: str, max_length: int) -> str | None:
    """Why `name` is not a valid metric name, or None when it is."""
    if not name:
        return "Metric name must not be empty"
    if len(name) > max_length:
        return f"Metric name is longer than {max_length} characters"
    if NAME_RE.fullmatch(name) is None:
        # The message is stored (job outcomes, jsonb): show a name PostgreSQL cannot store escaped.
        shown = name if text_problem(name) is None else ascii(name)[1:-1]
        return f"Metric name '{shown}' contains characters outside [A-Za-z0-9-._~]"
    return None


def _check_unit(unit: str | None) -> None:
    if unit is not None and len(unit) > MAX_UNIT_LENGTH:
        raise InvalidRequest(f"unit must be at most {MAX_UNIT_LENGTH} characters")


def create_definition(
    conn: Connection,
    org_id: str,
    name: str,
    description: str | None,
    unit: str | None,
    created_by: str,
    *,
    max_name_length: int,
) -> dict:
    problem = name_problem(name, max_name_length)
    if problem:
        raise InvalidRequest(problem)
    _check_unit(unit)
    row = conn.execute(
        text(
            "INSERT INTO metric_definitions (metric_id, org_id, name, description, unit, created_by, modified_by) "
            "VALUES (:id, :o, :n, :d, :u, :p, :p) ON CONFLICT ON CONSTRAINT uq_metric_definitions_org_name "
            f"DO NOTHING RETURNING {DEFINITION_COLUMNS}"
        ),
        {"id": ids.metric_id(), "o": org_id, "n": name, "d": description, "u": unit, "p": created_by},
    ).first()
    if row is None:
        raise Conflict(f"Metric definition '{name}' already exists")
    return dict(row._mapping)


def get_definition(conn: Connection, org_id: str, name: str) -> dict:
    return one_row(
        conn,
        f"SELECT {DEFINITION_COLUMNS} FROM metric_definitions WHERE org_id = :o AND name = :n",
        {"o": org_id, "n": name},
        NotFound(f"Metric definition '{name}' not found"),
    )


def list_definitions(conn: Connection, org_id: str, after_name: str | None, limit: int) -> list[dict]:
    """One page ordered by name; fetches `limit + 1` rows so the caller knows whether another page exists."""
    rows = conn.execute(
        text(
            f"SELECT {DEFINITION_COLUMNS} FROM metric_definitions "
            "WHERE org_id = :o AND (CAST(:after AS text) IS NULL OR name > :after) ORDER BY name LIMIT :lim"
        ),
        {"o": org_id, "after": after_name, "lim": limit + 1},
    )
    return [dict(r._mapping) for r in rows]


def update_definition(
    conn: Connection, org_id: str, name: str, modified_by: str, *, description: Any = NOT_SET, unit: Any = NOT_SET
) -> dict:
    sets = ["modified_by = :p", "modified = now()"]
    params: dict[str, Any] = {"o": org_id, "n": name, "p": modified_by}
    if description is not NOT_SET:
        sets.append("description = :d")
        params["d"] = description
    if unit is not NOT_SET:
        _check_unit(unit)
        sets.append("unit = :u")
        params["u"] = unit
    if len(sets) == 2:  # `{}`: nothing to change, the record stays exactly as it was
        return get_definition(conn, org_id, name)
    row = conn.execute(
        text(
            f"UPDATE metric_definitions SET {', '.join(sets)} WHERE org_id = :o AND name = :n "
            f"RETURNING {DEFINITION_COLUMNS}"
        ),
        params,
    ).first()
    if row is None:
        raise NotFound(f"Metric definition '{name}' not found")
    return dict(row._mapping)


def delete_definition(conn: Connection, org_id: str, name: str) -> None:
    """Delete a definition; its values go with it (ON DELETE CASCADE)."""
    res = conn.execute(text("DELETE FROM metric_definitions WHERE org_id = :o AND name = :n"), {"o": org_id, "n": name})
    if res.rowcount == 0:
        raise NotFound(f"Metric definition '{name}' not found")
