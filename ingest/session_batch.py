"""Sessions in bulk: up to MAX_BATCH sessions in a fixed number of statements, with one outcome per item.

The rules are those of `catalog.create_session`, item by item: a window that ends before it starts is refused, an
unknown device is a not-found, a session id already taken is a conflict - unless the stored session is identical
(same times, same devices), which is reported as `exists`, so a re-run of an import is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest.catalog import window_problem
from ingest.errors import Conflict, DomainError, InvalidRequest, NotFound

MAX_BATCH = 10_000


@dataclass
class NewSession:
    session_id: str
    start_ns: int
    end_ns: int
    device_ids: list[str] = field(default_factory=list)

    def same_as(self, start_ns: int, end_ns: int, device_ids: list[str]) -> bool:
        return (self.start_ns, self.end_ns, sorted(set(self.device_ids))) == (start_ns, end_ns, sorted(device_ids))


@dataclass
class Outcome:
    status: str  # created | exists | failed
    error: DomainError | None = None


def create_sessions(conn: Connection, org_id: str, items: list[NewSession | DomainError]) -> list[Outcome]:
    """One outcome per item, in order. An item may already be a DomainError (it failed to decode)."""
    if len(items) > MAX_BATCH:
        raise InvalidRequest(f"At most {MAX_BATCH} sessions per call")
    outcomes: list[Outcome | None] = [None] * len(items)
    first: dict[str, int] = {}  # session id -> index of the item that creates it
    for i, item in enumerate(items):
        if isinstance(item, DomainError):
            outcomes[i] = Outcome("failed", item)
            continue
        problem = window_problem(item.start_ns, item.end_ns)
        if problem:
            outcomes[i] = Outcome("failed", InvalidRequest(problem))
        elif item.session_id not in first:
            first[item.session_id] = i

    wanted = sorted({d for i in first.values() for d in _session(items, i).device_ids})
    known = _known_devices(conn, org_id, wanted)
    for sid, i in list(first.items()):
        missing = sorted(set(_session(items, i).device_ids) - known)
        if missing:
            outcomes[i] = Outcome("failed", NotFound(f"Device '{missing[0]}' not found"))
            del first[sid]

    created = _insert(conn, org_id, [_session(items, i) for i in first.values()])
    existing = _stored(conn, org_id, sorted(set(first) - created))
    for sid, i in first.items():
        if sid in created:
            outcomes[i] = Outcome("created")
        else:
            outcomes[i] = _against_stored(_session(items, i), existing.get(sid))
    # Repeats of a session id within the call: judged against the first item with that id.
    for i, item in enumerate(items):
        if outcomes[i] is not None or isinstance(item, DomainError):
            continue
        owner = items[first[item.session_id]] if item.session_id in first else None
        if isinstance(owner, NewSession) and owner.same_as(item.start_ns, item.end_ns, sorted(set(item.device_ids))):
            outcomes[i] = Outcome("exists")
        else:
            outcomes[i] = Outcome("failed", Conflict(f"Session '{item.session_id}' already exists"))
    return [o if o is not None else Outcome("failed", InvalidRequest("not processed")) for o in outcomes]


def _session(items: list[NewSession | DomainError], i: int) -> NewSession:
    item = items[i]
    assert isinstance(item, NewSession)
    return item


def _against_stored(item: NewSession, stored: tuple[int, int, list[str]] | None) -> Outcome:
    if stored is not None and item.same_as(*stored):
        return Outcome("exists")
    return Outcome("failed", Conflict(f"Session '{item.session_id}' already exists"))


def _known_devices(conn: Connection, org_id: str, device_ids: list[str]) -> set[str]:
    if not device_ids:
        return set()
    rows = conn.execute(
        text("SELECT device_id FROM devices WHERE org_id = :o AND device_id = ANY(:d)"), {"o": org_id, "d": device_ids}
    )
    return {r.device_id for r in rows}


def _insert(conn: Connection, org_id: str, sessions: list[NewSession]) -> set[str]:
    """Insert the sessions (sorted, so concurrent batches lock in one order) and their devices; the ids created."""
    if not sessions:
        return set()
    sessions = sorted(sessions, key=lambda s: s.session_id)
    rows = conn.execute(
        text(
            "INSERT INTO sessions (org_id, session_id, start_ns, end_ns) "
            "SELECT :o, s, a, b FROM unnest(CAST(:s AS text[]), CAST(:a AS int8[]), CAST(:b AS int8[])) AS t(s, a, b) "
            "ORDER BY s ON CONFLICT DO NOTHING RETURNING session_id"
        ),
        {
            "o": org_id,
            "s": [s.session_id for s in sessions],
            "a": [s.start_ns for s in sessions],
            "b": [s.end_ns for s in sessions],
        },
    )
    created = {r.session_id for r in rows}
    pairs = sorted((s.session_id, d) for s in sessions if s.session_id in created for d in set(s.device_ids))
    if pairs:
        conn.execute(
            text(
                "INSERT INTO session_devices (org_id, session_id, device_id) "
                "SELECT :o, s, d FROM unnest(CAST(:s AS text[]), CAST(:d AS text[])) AS t(s, d)"
            ),
            {"o": org_id, "s": [p[0] for p in pairs], "d": [p[1] for p in pairs]},
        )
    return created


def _stored(conn: Connection, org_id: str, session_ids: list[str]) -> dict[str, tuple[int, int, list[str]]]:
    if not session_ids:
        return {}
    rows = conn.execute(
        text(
            "SELECT s.session_id, s.start_ns, s.end_ns, COALESCE(array_agg(sd.device_id ORDER BY sd.device_id) "
            "FILTER (WHERE sd.device_id IS NOT NULL), '{}') AS device_ids FROM sessions s "
            "LEFT JOIN session_devices sd ON sd.org_id = s.org_id AND sd.session_id = s.session_id "
            "WHERE s.org_id = :o AND s.session_id = ANY(:ids) GROUP BY s.session_id, s.start_ns, s.end_ns"
        ),
        {"o": org_id, "ids": session_ids},
    )
    return {r.session_id: (r.start_ns, r.end_ns, list(r.device_ids)) for r in rows}
