"""Job retention: finished jobs (row, chunks, outcomes) are deleted some time after they finished, in small
batches. A job still queued or running is never touched, however old; metric values and definitions never are.

Each batch is one short transaction that locks only the rows it deletes (finished jobs nobody writes to any more;
`SKIP LOCKED`, so two sweepers, or a sweeper and `metrics-ingest jobs purge`, share the work), through the partial
index on `jobs.finished`. Ingestion never waits on it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest.db import transaction
from ingest.jobs import TERMINAL_STATES

BATCH_JOBS = 200  # jobs per transaction at most
BATCH_CHUNKS = 2000  # chunks per transaction at most (one job more when the first one alone has more)

_VICTIMS = (
    "SELECT job_id, chunks_total FROM jobs WHERE finished IS NOT NULL "
    "AND finished < now() - make_interval(secs => :age) AND state = ANY(:terminal) {org} "
    "ORDER BY finished LIMIT :lim FOR UPDATE SKIP LOCKED"
)


@dataclass
class Purged:
    jobs: int = 0
    chunks: int = 0

    def __iadd__(self, other: Purged) -> Purged:
        self.jobs += other.jobs
        self.chunks += other.chunks
        return self


def purge_batch(conn: Connection, older_than_s: float, org_id: str | None = None) -> Purged:
    """Delete one batch of jobs that finished more than `older_than_s` ago (of `org_id` only when given)."""
    params = {"age": older_than_s, "terminal": list(TERMINAL_STATES), "lim": BATCH_JOBS, "o": org_id}
    found = conn.execute(text(_VICTIMS.format(org="AND org_id = :o" if org_id else "")), params).all()
    chosen: list[str] = []
    chunks = 0
    for row in found:
        if chosen and chunks + row.chunks_total > BATCH_CHUNKS:
            break
        chosen.append(row.job_id)
        chunks += row.chunks_total
    if not chosen:
        return Purged()
    removed = conn.execute(text("DELETE FROM job_chunks WHERE job_id = ANY(:ids)"), {"ids": chosen}).rowcount
    gone = conn.execute(text("DELETE FROM jobs WHERE job_id = ANY(:ids)"), {"ids": chosen}).rowcount
    return Purged(gone, removed)


def purge(older_than_s: float, org_id: str | None = None, *, max_batches: int | None = None) -> tuple[Purged, bool]:
    """Batches, each in its own transaction, until none is left (or `max_batches` were done). Returns what was
    removed and whether more may be left."""
    total = Purged()
    batches = 0
    while max_batches is None or batches < max_batches:
        with transaction() as conn:
            done = purge_batch(conn, older_than_s, org_id)
        batches += 1
        total += done
        if done.jobs == 0:
            return total, False
    return total, True
