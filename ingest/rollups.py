"""Rollups: count, sum, min and max of a metric's values per UTC hour, session time kind and device
(`metric_rollups`; kinds 0/1 = session end/start time per device, 2/3 = the same over all devices, so that a read
without a device filter or grouping reads one cell per hour instead of one per device), recomputed in the
background from the raw rows, so that an aggregate over months reads a few cells per hour instead of every value.

The write path only marks what it touched: the distinct (metric, UTC day) pairs of the session start and end times
of the rows written go to `rollup_dirty`, in the writer's transaction. The worker's upsert marks its rows itself
(`mark_written`, called by ingest.publish.upsert_values: one INSERT of a few pairs per chunk); migration 0007's
triggers mark the rest: a row whose session times change (old and new days; a row-level trigger that fires only
then, so a re-published value costs nothing there) and deleted rows (a statement-level trigger: cascades of a
definition or an org). Every writer of metric_values must do one or the other; the property test goes through the
worker's own functions. The table is append-only (no ON CONFLICT, no foreign key), so concurrent writers never wait
on each other or on the sweep. An earlier version marked inserts and updates with statement-level triggers: their
transition tables cost the upsert up to 15% (inserts) and 25% (re-upserts) in bench/marks.py.

The sweep (`refresh_batch`) recomputes dirty days; readers (ingest/reads.py) use the cells of hours whose UTC day has
no dirty row and raw rows for everything else, in one statement (one snapshot). One batch is one REPEATABLE READ
transaction holding a transaction-level advisory lock (one sweeper at a time; another one skips):

  a. it reads up to `pairs` dirty (metric, day) pairs, and the ids of all their dirty rows;
  b. deletes the cells of those days (both kinds);
  c. inserts the cells recomputed from `metric_values` (GROUP BY GROUPING SETS ((hour, device), (hour)), on the end
     time for kinds 0 and 2 and on the start time for kinds 1 and 3, each a range scan of the time index);
  d. deletes exactly the dirty rows whose ids it read in (a), and commits. A serialization failure (a definition
     deleted meanwhile) rolls the batch back; it is retried.

Why this is exact: a writer's dirty row commits atomically with its values, so every change to metric_values is
either visible in the sweep's snapshot, together with its dirty row, or invisible together with it. The sweep
recomputes from the values its snapshot sees and deletes only the dirty rows that snapshot saw; a value committed
after the snapshot leaves its dirty row in place, so its day stays dirty, and readers keep taking it from raw rows
until a later sweep (whose snapshot sees it) recomputes it. A reader, in turn, sees cells and dirty rows in one
snapshot: a day is either clean (its cells are those recomputed from every value the snapshot sees: any later change
would have left a visible dirty row) or dirty (read raw).

Ingestion first: a day is taken only when it has had no new dirty row for `rollup_quiet_s` (a bulk load touching it
keeps it dirty instead of having it recomputed after every chunk), unless its oldest dirty row waited longer than
`rollup_max_delay_s`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ingest.db import statement, transaction
from ingest.reads import ALL_DEVICES, DAY_NS, HOUR_NS, KIND_OF_COLUMN, value_range

log = structlog.get_logger(__name__)

ROLLUP_LOCK = 727276
MAX_NS = 2**63 - 1
KINDS = {kind: column for column, kind in KIND_OF_COLUMN.items()}  # kind -> metric_values column (cells per device)
DEFAULT_PAIRS = 200  # (metric, day) pairs per batch
HEAD_SCAN = 20_000  # dirty rows looked at (oldest first) to pick the pairs of a batch
RETRIES = 5
RETRY_STATES = {"40001", "40P01", "23503"}  # serialization failure, deadlock, a definition deleted meanwhile


def mark_written(conn: Connection, rows: list[tuple]) -> None:
    """Mark the days of rows the caller is upserting (metric_id, session_id, value, device_id, start_ns, end_ns), in
    its transaction. A row the upsert leaves alone (an older publish) only marks a day that did not change: harmless,
    the sweep recomputes it."""
    pairs = sorted({(row[0], t // DAY_NS) for row in rows for t in (row[4], row[5])})
    if not pairs:
        return
    metric_ids, days = zip(*pairs, strict=True)
    conn.execute(
        statement(
            "INSERT INTO rollup_dirty (metric_id, day) SELECT * FROM unnest(CAST(:m AS text[]), CAST(:d AS bigint[]))"
        ),
        {"m": list(metric_ids), "d": list(days)},
    )


def hour_of(expr: str) -> str:
    """SQL: the start of the UTC hour holding `expr` (ns), also for times before 1970."""
    return f"({expr} - (({expr} % {HOUR_NS}) + {HOUR_NS}) % {HOUR_NS})"


@dataclass
class Refreshed:
    pairs: int = 0
    cells: int = 0
    dirty_rows: int = 0
    batches: int = 0
    busy: bool = False  # another sweeper held the lock

    def __iadd__(self, other: Refreshed) -> Refreshed:
        self.pairs += other.pairs
        self.cells += other.cells
        self.dirty_rows += other.dirty_rows
        self.batches += other.batches
        self.busy = self.busy or other.busy
        return self


_PICK = """
WITH head AS (SELECT metric_id, day, marked FROM rollup_dirty ORDER BY id LIMIT :scan),
pairs AS (SELECT metric_id, day, min(marked) AS first FROM head GROUP BY metric_id, day)
SELECT p.metric_id, p.day FROM pairs p
WHERE p.first < now() - make_interval(secs => :max_delay)
   OR NOT EXISTS (
       SELECT 1 FROM rollup_dirty d WHERE d.metric_id = p.metric_id AND d.day = p.day
       AND d.marked > now() - make_interval(secs => :quiet))
ORDER BY p.first, p.metric_id, p.day LIMIT :pairs
"""

_PAIRS = (
    "unnest(CAST(:m AS text[]), CAST(:d AS bigint[]), CAST(:lo AS bigint[]), CAST(:hi AS bigint[])) "
    "AS p(metric_id, day, lo, hi)"
)


def _insert_cells(kind: int) -> str:
    """Cells per (hour, device) as `kind`, and per hour over all devices as `kind + 2`, from one scan."""
    column = KINDS[kind]
    hour = hour_of("v." + column)
    return (
        "INSERT INTO metric_rollups (metric_id, kind, hour_ns, device_id, n, total, lo, hi) "
        f"SELECT p.metric_id, CASE WHEN c.all_devices = 1 THEN {kind + ALL_DEVICES} ELSE {kind} END, c.hour_ns, "
        f"c.device_id, c.n, c.total, c.lo, c.hi FROM {_PAIRS} "
        f"CROSS JOIN LATERAL (SELECT {hour} AS hour_ns, v.device_id, GROUPING(v.device_id) AS all_devices, "
        "count(*) AS n, sum(v.value) AS total, min(v.value) AS lo, max(v.value) AS hi FROM metric_values v "
        f"WHERE {value_range('v', column, 'p.metric_id', 'p.lo', 'p.hi')} "
        f"GROUP BY GROUPING SETS (({hour}, v.device_id), ({hour}))) AS c"
    )


def refresh_batch(conn: Connection, *, pairs: int, quiet_s: float, max_delay_s: float) -> Refreshed:
    """One batch in the caller's transaction, which must be REPEATABLE READ and fresh (see the module docstring)."""
    if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": ROLLUP_LOCK}).scalar():
        return Refreshed(busy=True)
    chosen = conn.execute(
        text(_PICK), {"scan": HEAD_SCAN, "max_delay": max_delay_s, "quiet": quiet_s, "pairs": pairs}
    ).all()
    if not chosen:
        return Refreshed()
    days = [r.day for r in chosen]
    params = {
        "m": [r.metric_id for r in chosen],
        "d": days,
        "lo": [d * DAY_NS for d in days],
        "hi": [min((d + 1) * DAY_NS, MAX_NS) for d in days],
    }
    ids = (
        conn.execute(
            text(f"SELECT r.id FROM rollup_dirty r JOIN {_PAIRS} ON r.metric_id = p.metric_id AND r.day = p.day"),
            params,
        )
        .scalars()
        .all()
    )
    conn.execute(
        text(
            f"DELETE FROM metric_rollups c USING {_PAIRS} WHERE c.metric_id = p.metric_id "
            "AND c.kind = ANY('{0,1,2,3}'::smallint[]) AND c.hour_ns >= p.lo AND c.hour_ns < p.hi"
        ),
        params,
    )
    cells = sum(conn.execute(text(_insert_cells(kind)), params).rowcount for kind in KINDS)
    gone = conn.execute(text("DELETE FROM rollup_dirty WHERE id = ANY(:ids)"), {"ids": list(ids)}).rowcount
    return Refreshed(pairs=len(chosen), cells=cells, dirty_rows=gone, batches=1)


def _retryable(err: DBAPIError) -> bool:
    return getattr(err.orig, "sqlstate", None) in RETRY_STATES


def refresh_once(*, pairs: int = DEFAULT_PAIRS, quiet_s: float = 0.0, max_delay_s: float = 0.0) -> Refreshed:
    """One batch in its own REPEATABLE READ transaction, retried on a serialization failure."""
    for attempt in range(RETRIES):
        try:
            with transaction() as conn:
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                return refresh_batch(conn, pairs=pairs, quiet_s=quiet_s, max_delay_s=max_delay_s)
        except DBAPIError as err:
            if not _retryable(err) or attempt == RETRIES - 1:
                raise
            log.info("rollups.retry", attempt=attempt + 1, sqlstate=getattr(err.orig, "sqlstate", None))
    raise AssertionError("unreachable")


def refresh(
    *,
    pairs: int = DEFAULT_PAIRS,
    quiet_s: float = 0.0,
    max_delay_s: float = 0.0,
    max_batches: int | None = None,
    budget_s: float | None = None,
) -> tuple[Refreshed, bool]:
    """Batches until no dirty day is due (or `max_batches` / `budget_s` ran out). Returns what was done and
    whether more may be due. Logs `rollups.refreshed` when something was recomputed."""
    total = Refreshed()
    started = time.monotonic()
    more = True
    while max_batches is None or total.batches < max_batches:
        if budget_s is not None and time.monotonic() - started > budget_s:
            break
        done = refresh_once(pairs=pairs, quiet_s=quiet_s, max_delay_s=max_delay_s)
        total += done
        if done.busy or done.pairs == 0:
            more = done.busy
            break
    if total.pairs:
        log.info(
            "rollups.refreshed",
            pairs=total.pairs,
            cells=total.cells,
            dirty_rows=total.dirty_rows,
            batches=total.batches,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
    return total, more


def backlog(conn: Connection) -> int:
    """Dirty rows waiting for the sweep (a count of an append-only table that the sweep keeps small)."""
    return int(conn.execute(text("SELECT count(*) FROM rollup_dirty")).scalar_one())
