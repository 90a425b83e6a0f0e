"""The outbox: jobs and their chunks are stored in PostgreSQL (the source of truth) before any message is sent.

A job is split into chunks of about `chunk_items` items; each chunk is one Celery message (carrying only the job
id and chunk number), one transaction and one upsert statement in a worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from ingest import counters, ids
from ingest.db import one_row, statement
from ingest.errors import Conflict, NotFound, PayloadTooLarge, TooManyRequests
from ingest.payload import PublishRequest, encode_chunk

LANES = ("interactive", "bulk")  # one broker queue each; interactive publishes never wait behind a backfill
TERMINAL_STATES = ("succeeded", "completed_with_errors", "failed")
JOB_COLUMNS = (
    "job_id, org_id, lane, state, source, principal, invocation_id, idempotency_key, request_id, total, "
    "succeeded, failed, chunks_total, chunks_done, error_code, error_message, created, started, finished"
)
NOTIFY_CHANNEL = "metrics_ingest_jobs"


@dataclass
class NewJob:
    job_id: str
    lane: str
    chunk_seqs: list[int]
    existing: bool = False  # an idempotent replay of an already accepted job


@dataclass(frozen=True)
class Backlog:
    items: int  # accepted and not yet processed
    jobs: int  # queued or running


def backlog_by_lane(conn: Connection) -> dict[str, Backlog]:
    """The work accepted and not yet done, per lane (over the active jobs' partial index, never the history)."""
    rows = conn.execute(
        statement(
            "SELECT lane, COALESCE(sum(total - succeeded - failed), 0) AS items, count(*) AS jobs FROM jobs "
            "WHERE state IN ('queued', 'running') GROUP BY lane"
        )
    )
    return {r.lane: Backlog(int(r.items), int(r.jobs)) for r in rows}


def check_backlog(conn: Connection, incoming: int, limit: int) -> None:
    backlog = sum(b.items for b in backlog_by_lane(conn).values())
    if backlog + incoming > limit and backlog > 0:
        raise TooManyRequests(
            f"Ingest backlog is {backlog} items (limit {limit}); retry later",
            retry_after_s=5,
        )


def find_idempotent(conn: Connection, org_id: str, key: str, digest: str) -> NewJob | None:
    row = conn.execute(
        statement("SELECT job_id, lane, body_digest FROM jobs WHERE org_id = :o AND idempotency_key = :k"),
        {"o": org_id, "k": key},
    ).first()
    if row is None:
        return None
    if row.body_digest != digest:
        raise Conflict(f"Idempotency-Key '{key}' was already used with a different request body")
    return NewJob(row.job_id, row.lane, [], existing=True)


def chunked(requests: Iterable[PublishRequest], chunk_items: int) -> Iterator[list[PublishRequest]]:
    """Group whole requests into chunks of about `chunk_items` items (a request is never split)."""
    chunk: list[PublishRequest] = []
    items = 0
    for request in requests:
        chunk.append(request)
        items += len(request.entries)
        if items >= chunk_items:
            yield chunk
            chunk, items = [], 0
    if chunk:
        yield chunk


def create_job(
    conn: Connection,
    *,
    org_id: str,
    principal: str,
    invocation_id: str | None,
    source: str,
    lane: str,
    requests: Iterable[PublishRequest],
    chunk_items: int,
    idempotency_key: str | None = None,
    body_digest: str | None = None,
    request_id: str | None = None,
    max_items: int | None = None,
) -> NewJob:
    """Store a job and all its chunks in the caller's transaction. `requests` may be a lazy stream: chunks are
    written as they fill, so a large upload is never held whole in memory."""
    job_id = ids.job_id()
    # A body already in memory (a list) is chunked first, so the job row is written once with its totals; a lazy
    # stream (NDJSON) gets its totals when it ends.
    known = list(chunked(requests, chunk_items)) if isinstance(requests, list) else None
    total = sum(len(r.entries) for chunk in known for r in chunk) if known is not None else 0
    inserted = conn.execute(
        statement(
            "INSERT INTO jobs (job_id, org_id, lane, state, source, principal, invocation_id, idempotency_key, "
            "body_digest, request_id, total, chunks_total) VALUES (:j, :o, :lane, 'queued', :src, :p, :inv, :k, "
            ":dg, :rid, :total, :chunks) "
            "ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING job_id"
        ),
        {
            "j": job_id,
            "o": org_id,
            "lane": lane,
            "src": source,
            "p": principal,
            "inv": invocation_id,
            "k": idempotency_key,
            "dg": body_digest,
            "rid": request_id,
            "total": total,
            "chunks": max(1, len(known)) if known is not None else 0,
        },
    ).first()
    if inserted is None:  # the key was used before (or concurrently, and that transaction has now committed)
        existing = find_idempotent(conn, org_id, idempotency_key or "", body_digest or "")
        assert existing is not None
        return existing
    seqs: list[int] = []
    total = 0
    first_request = 0
    pending: list[tuple[int, list[PublishRequest], int]] = []
    for seq, chunk in enumerate(known if known is not None else chunked(requests, chunk_items)):
        total += sum(len(r.entries) for r in chunk)
        if max_items is not None and total > max_items:
            raise PayloadTooLarge(f"a job holds at most {max_items} items")
        pending.append((seq, chunk, first_request))
        first_request += len(chunk)
        seqs.append(seq)
        if len(pending) >= 8:
            _insert_chunks(conn, job_id, lane, pending)
            pending = []
    if not seqs:  # an empty publish still gets a (trivially succeeding) job with one empty chunk
        pending.append((0, [], 0))
        seqs.append(0)
    if pending:
        _insert_chunks(conn, job_id, lane, pending)
    if known is None:
        conn.execute(
            statement("UPDATE jobs SET total = :t, chunks_total = :c WHERE job_id = :j"),
            {"t": total, "c": len(seqs), "j": job_id},
        )
    return NewJob(job_id, lane, seqs)


def _insert_chunks(
    conn: Connection, job_id: str, lane: str, pending: list[tuple[int, list[PublishRequest], int]]
) -> None:
    conn.execute(
        statement(
            "INSERT INTO job_chunks (job_id, seq, lane, state, first_request, request_count, item_count, payload, "
            "enqueued_at) VALUES (:j, :seq, :lane, 'queued', :first, :rc, :ic, :payload, now())"
        ),
        [
            {
                "j": job_id,
                "seq": seq,
                "lane": lane,
                "first": first,
                "rc": len(chunk),
                "ic": sum(len(r.entries) for r in chunk),
                "payload": encode_chunk(chunk),
            }
            for seq, chunk, first in pending
        ],
    )


def get_job(conn: Connection, org_id: str, job_id: str) -> dict:
    return one_row(
        conn,
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = :j AND org_id = :o",
        {"j": job_id, "o": org_id},
        NotFound(f"Job '{job_id}' not found"),
    )


def list_jobs(conn: Connection, org_id: str, after: tuple[str, str] | None, limit: int) -> list[dict]:
    """Newest first; keyset on (created, job_id). Fetches `limit + 1` rows."""
    params: dict[str, Any] = {"o": org_id, "lim": limit + 1}
    where = ""
    if after is not None:
        where = "AND (created, job_id) < (CAST(:c AS timestamptz), :jid)"
        params.update(c=after[0], jid=after[1])
    rows = conn.execute(
        statement(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE org_id = :o {where} ORDER BY created DESC, job_id DESC LIMIT :lim"
        ),
        params,
    )
    return [dict(r._mapping) for r in rows]


def chunk_rows(conn: Connection, job_id: str, from_seq: int, limit: int, *, with_payload: bool) -> list[dict]:
    cols = "seq, state, first_request, request_count, item_count, outcomes, succeeded, failed"
    if with_payload:
        cols += ", payload, item_keys"
    rows = conn.execute(
        statement(f"SELECT {cols} FROM job_chunks WHERE job_id = :j AND seq >= :s ORDER BY seq LIMIT :lim"),
        {"j": job_id, "s": from_seq, "lim": limit},
    )
    return [dict(r._mapping) for r in rows]


# -- worker side ---------------------------------------------------------------------------------------------
@dataclass
class ClaimedChunk:
    job_id: str
    seq: int
    org_id: str
    lane: str
    principal: str
    invocation_id: str | None
    created: Any
    request_id: str | None
    item_count: int
    payload: bytes
    show_running: bool  # a multi-chunk job still marked queued: mark it running while this chunk is processed


def mark_started(conn: Connection, job_id: str) -> None:
    conn.execute(
        statement("UPDATE jobs SET state = 'running', started = now() WHERE job_id = :j AND state = 'queued'"),
        {"j": job_id},
    )


def claim_chunk(conn: Connection, job_id: str, seq: int) -> ClaimedChunk | None:
    """Lock a queued chunk for the rest of the caller's transaction. None when it is done already, or another
    worker holds it (a duplicate message). If this worker dies, PostgreSQL drops the lock with the connection."""
    row = conn.execute(
        statement(
            "SELECT c.job_id, c.seq, c.item_count, c.payload, j.org_id, j.lane, j.principal, j.invocation_id, "
            "j.created, j.request_id, j.state = 'queued' AND j.chunks_total > 1 AS show_running "
            "FROM job_chunks c JOIN jobs j USING (job_id) "
            "WHERE c.job_id = :j AND c.seq = :s AND c.state = 'queued' FOR UPDATE OF c SKIP LOCKED"
        ),
        {"j": job_id, "s": seq},
    ).first()
    if row is None:
        return None
    return ClaimedChunk(
        row.job_id,
        row.seq,
        row.org_id,
        row.lane,
        row.principal,
        row.invocation_id,
        row.created,
        row.request_id,
        row.item_count,
        bytes(row.payload),
        row.show_running,
    )


# One statement: the chunk's outcomes, the job's counters, its terminal state on the last chunk, the work counters,
# and the notification (delivered at commit) that wakes API processes waiting for the job
# ("<job_id> <state>[ <outcomes JSON>]").
_RECORD = (
    "WITH chunk AS (UPDATE job_chunks SET state = :st, outcomes = CAST(:o AS jsonb), succeeded = :s, failed = :f, "
    "  attempts = attempts + 1, processed_at = now(), "
    # the payload gives way to the item keys (results need no more), unless the chunk failed as a whole
    "  item_keys = :k, payload = CASE WHEN CAST(:k AS bytea) IS NULL THEN payload END "
    "  WHERE job_id = :j AND seq = :q RETURNING seq), "
    "job AS (UPDATE jobs SET succeeded = succeeded + :s, failed = failed + :f, chunks_done = chunks_done + 1, "
    "  started = COALESCE(started, now()), "
    "  error_code = COALESCE(error_code, CAST(:ec AS text)), "
    "  error_message = COALESCE(error_message, CAST(:em AS text)), "
    "  state = CASE WHEN chunks_done + 1 < chunks_total THEN 'running' "
    "    WHEN COALESCE(error_code, CAST(:ec AS text)) IS NOT NULL THEN 'failed' "
    "    WHEN failed + :f > 0 THEN 'completed_with_errors' ELSE 'succeeded' END, "
    "  finished = CASE WHEN chunks_done + 1 >= chunks_total THEN now() END "
    "  WHERE job_id = :j AND EXISTS (SELECT 1 FROM chunk) "
    "  RETURNING job_id, state, finished, lane, total, succeeded, failed, chunks_total, "
    "  EXTRACT(EPOCH FROM (finished - created)) AS duration_s), "
    # the work counters (ingest.counters) in the same statement
    f"counted AS ({counters.chunk_counts_cte('job')}) "
    "SELECT job.*, CASE WHEN job.finished IS NOT NULL THEN pg_notify(:ch, job.job_id || ' ' || job.state "
    # a one-chunk job's outcomes ride along when small, so a waiting publish needs no read to know them
    "  || CASE WHEN job.chunks_total = 1 AND octet_length(CAST(:ot AS text)) < 7000 THEN ' ' || CAST(:ot AS text) "
    "  ELSE '' END) END AS notified FROM job"
)


def record_chunk(
    conn: Connection,
    job_id: str,
    seq: int,
    *,
    outcomes: dict,
    succeeded: int,
    failed: int,
    state: str = "done",
    error: tuple[str, str] | None = None,
    item_keys: bytes | None = None,
) -> dict:
    """Store a chunk's outcomes and add them to the job's counts, in the chunk's transaction. The job's last
    chunk sets its terminal state and notifies waiting API processes (delivered at commit). With `item_keys`
    (`payload.encode_keys` of its requests) the chunk's payload is dropped: its results need only those."""
    encoded = json.dumps(outcomes, separators=(",", ":"))
    job = conn.execute(
        statement(_RECORD),
        {
            "st": state,
            "o": encoded,
            "ot": encoded,
            "s": succeeded,
            "f": failed,
            "j": job_id,
            "q": seq,
            "ec": error[0] if error else None,
            "em": error[1] if error else None,
            "ch": NOTIFY_CHANNEL,
            "shard": counters.random_shard(),
            "k": item_keys,
        },
    ).first()
    assert job is not None
    return dict(job._mapping)


def fail_chunk(conn: Connection, job_id: str, seq: int, code: str, message: str) -> dict | None:
    """Give up on a chunk after its retries: its items fail with the job-level error; the payload is kept (its values
    were never written) until the job is purged."""
    row = conn.execute(
        statement("SELECT item_count FROM job_chunks WHERE job_id = :j AND seq = :s AND state = 'queued' FOR UPDATE"),
        {"j": job_id, "s": seq},
    ).first()
    if row is None:
        return None
    return record_chunk(
        conn,
        job_id,
        seq,
        outcomes={"job_error": [code, message]},
        succeeded=0,
        failed=row.item_count,
        state="failed",
        error=(code, message),
    )


def postpone_resend(conn: Connection, job_id: str, seq: int, delay_s: float) -> None:
    """A chunk whose retry waits `delay_s` in its worker (a Celery countdown: not in the broker's queue) is not a lost
    message: the sweeper leaves it alone until the retry is due."""
    conn.execute(
        statement(
            "UPDATE job_chunks SET enqueued_at = now() + make_interval(secs => :d) "
            "WHERE job_id = :j AND seq = :s AND state = 'queued'"
        ),
        {"j": job_id, "s": seq, "d": delay_s},
    )


def chunks_to_resend(conn: Connection, lane: str, older_than_s: float, limit: int = 10_000) -> list[tuple[str, int]]:
    """Queued chunks of `lane` not taken by any worker (unlocked) and not sent for `older_than_s` seconds.
    The sweeper calls this only when the lane's broker queue is empty, so these messages were lost."""
    rows = conn.execute(
        statement(
            "UPDATE job_chunks SET enqueued_at = now() WHERE (job_id, seq) IN ("
            " SELECT job_id, seq FROM job_chunks WHERE state = 'queued' AND lane = :l "
            " AND enqueued_at < now() - make_interval(secs => :age) ORDER BY enqueued_at LIMIT :lim "
            " FOR UPDATE SKIP LOCKED) RETURNING job_id, seq"
        ),
        {"l": lane, "age": older_than_s, "lim": limit},
    )
    return [(r.job_id, r.seq) for r in rows]
