"""Accepting a job: store it (the outbox transaction), then send its messages, then optionally wait for it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import structlog

from api_shim.deps import RequestContext, get_broker
from api_shim.waiter import get_waiter
from ingest import jobs
from ingest.config import get_settings
from ingest.db import transaction
from ingest.payload import PublishRequest

log = structlog.get_logger(__name__)


def accept(
    ctx: RequestContext,
    requests: Iterable[PublishRequest],
    *,
    source: str,
    lane: str,
    incoming_items: int,
    idempotency_key: str | None = None,
    digest: str | None = None,
    wait: bool = False,
) -> tuple[jobs.NewJob, str]:
    """Store the job in one transaction; only after commit send its chunk messages. Returns (job, org_id).
    With `wait`, the caller's waiter is registered before any message goes out, so no notification is missed."""
    settings = get_settings()
    started = time.perf_counter()
    with ctx.acting(write=True) as c:
        if idempotency_key:
            existing = jobs.find_idempotent(c.conn, c.org_id, idempotency_key, digest or "")
            if existing is not None:
                return existing, c.org_id
        jobs.check_backlog(c.conn, incoming_items, settings.max_backlog_items)
        job = jobs.create_job(
            c.conn,
            org_id=c.org_id,
            principal=c.principal.principal,
            invocation_id=c.principal.invocation_id,
            source=source,
            lane=lane,
            requests=requests,
            chunk_items=settings.chunk_items,
            idempotency_key=idempotency_key,
            body_digest=digest,
            request_id=ctx.request_id,
            max_items=settings.max_items_per_job,
        )
        org_id = c.org_id
    if job.existing:
        return job, org_id
    if wait:
        get_waiter().register(job.job_id)
    get_broker().send_chunks(job.job_id, job.lane, job.chunk_seqs, ctx.request_id)
    log.info(
        "job.accepted",
        job_id=job.job_id,
        org_id=org_id,
        lane=job.lane,
        chunks=len(job.chunk_seqs),
        items=incoming_items,
        source=source,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return job, org_id


def wait_for(job_id: str, org_id: str, timeout_s: float) -> tuple[str, dict | None] | None:
    """(terminal state, a one-chunk job's outcomes when the notification carried them) once the job finished, or
    None after `timeout_s`. Woken by NOTIFY (the event was registered by `accept(wait=True)` before the job was
    sent); re-reads the row at least every 2 s as a safety net should a notification be lost with a connection."""
    waiter = get_waiter()
    event = waiter.register(job_id, keep=True)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if event.wait(min(remaining, 2.0)) and waiter.states.get(job_id) in jobs.TERMINAL_STATES:
                carried = waiter.outcomes.get(job_id)
                return waiter.states[job_id], json.loads(carried) if carried else None
            event.clear()
            with transaction() as conn:
                state = jobs.get_job(conn, org_id, job_id)["state"]
            if state in jobs.TERMINAL_STATES:
                return state, None
    finally:
        waiter.unregister(job_id)
