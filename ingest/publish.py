"""The publish pipeline: the steps over one chunk of requests, each a plain function over the batch, composed in
`process_chunk`, which reads top to bottom like the design card:

    validate entries -> resolve sessions -> resolve devices -> dedupe -> define metrics -> upsert -> outcomes

Everything is set-based: a fixed number of statements per chunk, whatever its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ingest import ids, rollups
from ingest.db import driver_connection, statement
from ingest.definitions import name_problem
from ingest.errors import InvalidRequest, NotFound
from ingest.notset import NOT_SET
from ingest.payload import PublishRequest

COPY_THRESHOLD = 200  # rows; above this the upsert goes through COPY into a staging table


@dataclass
class JobContext:
    org_id: str
    principal: str
    invocation_id: str | None
    published: datetime  # the job's accept time: a replay of a chunk writes the same rows
    max_name_length: int


@dataclass
class ChunkOutcome:
    """Compact outcomes: only failures are listed; every other entry succeeded."""

    request_errors: dict[int, list[str]] = field(default_factory=dict)  # local request index -> [code, message]
    item_errors: list[list[Any]] = field(default_factory=list)  # [local request, entry, code, message]
    succeeded: int = 0
    failed: int = 0

    def to_json(self) -> dict:
        return {"req": {str(k): v for k, v in self.request_errors.items()}, "items": self.item_errors}


@dataclass
class Session:
    start_ns: int
    end_ns: int
    device_ids: list[str]


# -- steps ---------------------------------------------------------------------------------------------------
def entry_problem(name: str, value: float | None, max_name_length: int) -> str | None:
    problem = name_problem(name, max_name_length)
    if problem:
        return problem
    if value is None or not math.isfinite(value):
        return f"Value for metric '{name}' is not finite"
    return None


def resolve_sessions(conn: Connection, org_id: str, session_ids: list[str]) -> dict[str, Session]:
    rows = conn.execute(
        statement(
            "SELECT s.session_id, s.start_ns, s.end_ns, "
            "COALESCE(array_agg(sd.device_id ORDER BY sd.device_id) FILTER (WHERE sd.device_id IS NOT NULL), '{}') "
            "AS device_ids FROM sessions s LEFT JOIN session_devices sd "
            "ON sd.org_id = s.org_id AND sd.session_id = s.session_id "
            "WHERE s.org_id = :o AND s.session_id = ANY(:ids) GROUP BY s.session_id, s.start_ns, s.end_ns"
        ),
        {"o": org_id, "ids": session_ids},
    )
    return {r.session_id: Session(r.start_ns, r.end_ns, list(r.device_ids)) for r in rows}


def known_devices(conn: Connection, org_id: str, device_ids: list[str]) -> set[str]:
    if not device_ids:
        return set()
    rows = conn.execute(
        statement("SELECT device_id FROM devices WHERE org_id = :o AND device_id = ANY(:d)"),
        {"o": org_id, "d": device_ids},
    )
    return {r.device_id for r in rows}


def infer_device(request: PublishRequest, session: Session, devices: set[str]) -> str | None:
    """The device a request's rows get: explicit, none, or the session's single attached device."""
    if request.device_id is None:
        return None
    if request.device_id is not NOT_SET:
        if request.device_id not in devices:
            raise NotFound(f"Device '{request.device_id}' not found")
        return request.device_id
    if len(session.device_ids) > 1:
        raise InvalidRequest(
            f"Session '{request.session_id}' has {len(session.device_ids)} attached devices; "
            "device_id must be given explicitly"
        )
    return session.device_ids[0] if session.device_ids else None


class DefinitionIds:
    """(org, name) -> metric_id of the definitions this process has seen, so that a chunk whose names are all known
    reads nothing. A definition's name never changes; one deleted meanwhile makes the upsert fail on its foreign key,
    and the task forgets every id (`forget`) before it retries."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._ids: dict[tuple[str, str], str] = {}

    def known(self, org_id: str, names: list[str]) -> dict[str, str]:
        return {n: i for n in names if (i := self._ids.get((org_id, n))) is not None}

    def remember(self, org_id: str, ids: dict[str, str]) -> None:
        if len(self._ids) + len(ids) > self.limit:
            self._ids.clear()
        self._ids.update({(org_id, n): i for n, i in ids.items()})

    def forget(self) -> None:
        self._ids.clear()


definition_ids = DefinitionIds()


def define_metrics(conn: Connection, ctx: JobContext, names: list[str]) -> dict[str, str]:
    """name -> metric_id, creating missing definitions. Race-free: concurrent creators of one name meet at the
    unique constraint, and everyone reads the winner's id."""
    if not names:
        return {}
    found = definition_ids.known(ctx.org_id, names)
    if len(found) == len(names):
        return found
    found.update(_definition_ids(conn, ctx.org_id, [n for n in names if n not in found]))
    missing = sorted(set(names) - found.keys())
    if missing:
        conn.execute(
            statement(
                "INSERT INTO metric_definitions (metric_id, org_id, name, created_by, modified_by) "
                "SELECT i, :o, n, :p, :p FROM unnest(CAST(:ids AS text[]), CAST(:names AS text[])) AS t(i, n) "
                "ORDER BY n ON CONFLICT ON CONSTRAINT uq_metric_definitions_org_name DO NOTHING"
            ),
            {"o": ctx.org_id, "p": ctx.principal, "ids": [ids.metric_id() for _ in missing], "names": missing},
        )
        found.update(_definition_ids(conn, ctx.org_id, missing))
    definition_ids.remember(ctx.org_id, found)
    return found


def _definition_ids(conn: Connection, org_id: str, names: list[str]) -> dict[str, str]:
    rows = conn.execute(
        statement("SELECT name, metric_id FROM metric_definitions WHERE org_id = :o AND name = ANY(:n)"),
        {"o": org_id, "n": list(names)},
    )
    return {r.name: r.metric_id for r in rows}


# The primary key (session_id, metric_key): metric_key is computed from metric_id by PostgreSQL (ingest.schema).
UPSERT_TAIL = (
    "ON CONFLICT (session_id, metric_key) DO UPDATE SET value = EXCLUDED.value, device_id = EXCLUDED.device_id, "
    "invocation_id = EXCLUDED.invocation_id, session_start_ns = EXCLUDED.session_start_ns, "
    "session_end_ns = EXCLUDED.session_end_ns, published_by = EXCLUDED.published_by, "
    "published = EXCLUDED.published "
    # An older publish that is processed late never overwrites a newer one.
    "WHERE metric_values.published <= EXCLUDED.published"
)
ROW_COLUMNS = "metric_id, session_id, value, device_id, session_start_ns, session_end_ns"


def upsert_values(conn: Connection, ctx: JobContext, rows: list[tuple]) -> None:
    """One statement for the whole chunk. Rows are unique per (metric_id, session_id) and sorted, so that
    concurrent chunks lock rows in the same order."""
    if not rows:
        return
    params: dict[str, Any] = {"o": ctx.org_id, "inv": ctx.invocation_id, "by": ctx.principal, "pub": ctx.published}
    select = (
        "SELECT metric_id, session_id, :o, value, device_id, CAST(:inv AS text), session_start_ns, session_end_ns, "
        "CAST(:by AS text), CAST(:pub AS timestamptz) FROM {source} ORDER BY metric_id, session_id "
    )
    insert = (
        "INSERT INTO metric_values (metric_id, session_id, org_id, value, device_id, invocation_id, "
        "session_start_ns, session_end_ns, published_by, published) "
    )
    if len(rows) < COPY_THRESHOLD:
        cols = list(zip(*rows, strict=True))
        source = (
            "unnest(CAST(:c0 AS text[]), CAST(:c1 AS text[]), CAST(:c2 AS float8[]), CAST(:c3 AS text[]), "
            f"CAST(:c4 AS int8[]), CAST(:c5 AS int8[])) AS t({ROW_COLUMNS})"
        )
        params.update({f"c{i}": list(c) for i, c in enumerate(cols)})
        conn.execute(statement(insert + select.format(source=source) + UPSERT_TAIL), params)
        rollups.mark_written(conn, rows)
        return
    with driver_connection(conn).cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS staging_values (metric_id text, session_id text, value float8, "
            "device_id text, session_start_ns int8, session_end_ns int8) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY staging_values ({ROW_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "float8", "text", "int8", "int8"])
            for row in rows:
                copy.write_row(row)
    conn.execute(statement(insert + select.format(source="staging_values") + UPSERT_TAIL), params)
    rollups.mark_written(conn, rows)


# -- composition ---------------------------------------------------------------------------------------------
def process_chunk(conn: Connection, ctx: JobContext, requests: list[PublishRequest]) -> ChunkOutcome:
    out = ChunkOutcome()
    sessions = resolve_sessions(conn, ctx.org_id, sorted({r.session_id for r in requests}))
    explicit = sorted({r.device_id for r in requests if isinstance(r.device_id, str)})
    devices = known_devices(conn, ctx.org_id, explicit)

    # key (name, session) -> row values; later entries win (dict insertion keeps the first position, value last)
    latest: dict[tuple[str, str], tuple[float, str | None, int, int]] = {}
    for ri, request in enumerate(requests):
        session = sessions.get(request.session_id)
        try:
            if session is None:
                raise NotFound(f"Session '{request.session_id}' not found")
            device = infer_device(request, session, devices)
        except (NotFound, InvalidRequest) as err:
            out.request_errors[ri] = [err.error_code, err.message]
            out.failed += len(request.entries)
            continue
        for ei, (name, value) in enumerate(request.entries):
            problem = entry_problem(name, value, ctx.max_name_length)
            if problem:
                out.item_errors.append([ri, ei, InvalidRequest.error_code, problem])
                out.failed += 1
                continue
            latest[(name, request.session_id)] = (value, device, session.start_ns, session.end_ns)  # type: ignore[assignment]
            out.succeeded += 1

    metric_ids = define_metrics(conn, ctx, sorted({name for name, _ in latest}))
    rows = sorted((metric_ids[name], session_id, *values) for (name, session_id), values in latest.items())
    upsert_values(conn, ctx, rows)
    return out
