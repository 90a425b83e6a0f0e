"""Work counters of the workers, kept in PostgreSQL: jobs that reached each terminal state, items processed per
outcome, and the accept-to-finish time of jobs as a histogram.

They are incremented in each chunk's own transaction (`jobs.record_chunk`), so they count exactly the work that was
committed, by any worker process on any machine, and they survive every restart. Each increment lands on one of a
few shards (rows) chosen at random, so concurrent chunk commits rarely wait on one another; a read sums the shards
of a table of a few hundred rows at most, whatever the size of the data."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from ingest.db import statement

SHARDS = 8
JOBS = "jobs"
ITEMS = "items"
DURATION_BUCKET = "job_duration_bucket"
DURATION_SUM = "job_duration_sum"
OUTCOMES = ("succeeded", "failed")
# Upper bounds (seconds) of the job duration histogram: interactive publishes take well under a second, backfills
# hours.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, math.inf)


def bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def bucket_for(duration_s: float) -> str:
    for bound in DURATION_BUCKETS:
        if duration_s <= bound:
            return bucket_label(bound)
    return "+Inf"


def count_chunk(
    conn: Connection,
    *,
    lane: str,
    succeeded: int,
    failed: int,
    finished_state: str | None = None,
    duration_s: float | None = None,
) -> None:
    """Add a chunk's outcomes (and, on the job's last chunk, the job's terminal state and duration), in the
    caller's transaction. One statement; rows in a fixed order so that two commits never deadlock."""
    rows: list[tuple[str, str, float]] = []
    if succeeded:
        rows.append((ITEMS, "succeeded", succeeded))
    if failed:
        rows.append((ITEMS, "failed", failed))
    if finished_state is not None:
        duration = max(0.0, float(duration_s or 0.0))
        rows.append((JOBS, finished_state, 1))
        rows.append((DURATION_BUCKET, bucket_for(duration), 1))
        rows.append((DURATION_SUM, "", duration))
    if not rows:
        return
    rows.sort()
    shard = random_shard()
    params: dict[str, object] = {"lane": lane, "shard": shard}
    values = []
    for i, (series, label, value) in enumerate(rows):
        values.append(f"(:s{i}, :lane, :l{i}, :shard, :v{i})")
        params.update({f"s{i}": series, f"l{i}": label, f"v{i}": float(value)})
    conn.execute(
        statement(
            "INSERT INTO telemetry_counters (series, lane, label, shard, value) VALUES "
            + ", ".join(values)
            + " ON CONFLICT (series, lane, label, shard) DO UPDATE SET value = telemetry_counters.value + "
            "EXCLUDED.value"
        ),
        params,
    )


def _bucket_sql(duration: str) -> str:
    """`bucket_for` as a SQL expression over `duration` (seconds)."""
    finite = [bound for bound in DURATION_BUCKETS if math.isfinite(bound)]
    arms = " ".join(f"WHEN {duration} <= {bound!r} THEN '{bucket_label(bound)}'" for bound in finite)
    return f"CASE {arms} ELSE '+Inf' END"


def chunk_counts_cte(job: str) -> str:
    """`count_chunk` as a data-modifying CTE for a statement that records a chunk: `job` names a CTE with one row
    (`lane`, `state`, `finished`, `duration_s`); parameters `:s`, `:f` (the chunk's outcomes) and `:shard`. Rows go
    in the same fixed order as `count_chunk`'s, so concurrent commits never deadlock."""
    duration = f"GREATEST(0, CAST({job}.duration_s AS float8))"
    done = f"{job}.finished IS NOT NULL"
    return (
        "INSERT INTO telemetry_counters (series, lane, label, shard, value) "
        f"SELECT c.series, {job}.lane, c.label, CAST(:shard AS int), c.value FROM {job} CROSS JOIN LATERAL (VALUES "
        f"('{ITEMS}', 'succeeded', CAST(:s AS float8), CAST(:s AS int) > 0), "
        f"('{ITEMS}', 'failed', CAST(:f AS float8), CAST(:f AS int) > 0), "
        f"('{JOBS}', {job}.state, 1.0, {done}), "
        f"('{DURATION_BUCKET}', {_bucket_sql(duration)}, 1.0, {done}), "
        f"('{DURATION_SUM}', '', {duration}, {done})"
        ") AS c(series, label, value, keep) WHERE c.keep "
        'ORDER BY c.series COLLATE "C", c.label COLLATE "C" '
        "ON CONFLICT (series, lane, label, shard) DO UPDATE SET value = telemetry_counters.value + EXCLUDED.value"
    )


def random_shard() -> int:
    return random.randrange(SHARDS)


@dataclass
class Totals:
    """The counters summed over shards: {(series, lane, label): value}."""

    values: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def get(self, series: str, lane: str, label: str = "") -> float:
        return self.values.get((series, lane, label), 0.0)

    def lanes(self) -> set[str]:
        return {lane for (_, lane, _) in self.values}

    def labels(self, series: str) -> set[str]:
        return {label for (s, _, label) in self.values if s == series}


def read_totals(conn: Connection) -> Totals:
    rows = conn.execute(
        statement("SELECT series, lane, label, sum(value) AS v FROM telemetry_counters GROUP BY series, lane, label")
    )
    return Totals({(r.series, r.lane, r.label): float(r.v) for r in rows})
