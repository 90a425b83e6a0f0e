"""Thin tasks: claim the chunk, run the pipeline, record outcomes, all in one transaction."""

from __future__ import annotations

import time

import structlog
from psycopg import errors as pg_errors
from sqlalchemy.exc import IntegrityError

from broker.celery_app import PROCESS_CHUNK, retry_countdown
from ingest import backoff, jobs
from ingest.config import get_settings
from ingest.db import is_transient, transaction
from ingest.payload import decode_chunk, encode_keys
from ingest.publish import JobContext, definition_ids, process_chunk
from worker.app import app

log = structlog.get_logger(__name__)


def worth_retrying(err: BaseException) -> bool:
    """A transient database error, or a definition deleted between define and upsert (the retry re-creates it)."""
    return is_transient(err) or (
        isinstance(err, IntegrityError) and isinstance(err.orig, pg_errors.ForeignKeyViolation)
    )


@app.task(name=PROCESS_CHUNK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def process_chunk_task(self, job_id: str, seq: int, request_id: str | None = None) -> None:
    settings = get_settings()
    bound = log.bind(job_id=job_id, chunk=seq, request_id=request_id)
    started = time.perf_counter()
    try:
        with transaction() as conn:
            chunk = jobs.claim_chunk(conn, job_id, seq)
            if chunk is None:
                bound.info("chunk.skipped", reason="done or held by another worker")
                return
            if chunk.show_running:  # committed apart, so pollers see `running` while this chunk is processed
                with transaction() as other:
                    jobs.mark_started(other, job_id)
            bound = bound.bind(org_id=chunk.org_id, lane=chunk.lane)
            ctx = JobContext(
                chunk.org_id, chunk.principal, chunk.invocation_id, chunk.created, settings.max_name_length
            )
            requests = decode_chunk(chunk.payload)
            outcome = process_chunk(conn, ctx, requests)
            job = jobs.record_chunk(
                conn,
                job_id,
                seq,
                outcomes=outcome.to_json(),
                succeeded=outcome.succeeded,
                failed=outcome.failed,
                item_keys=encode_keys(requests),
            )
    except Exception as err:
        definition_ids.forget()  # a definition deleted meanwhile: the retry reads every id again
        if not worth_retrying(err):
            bound.exception("chunk.error")
            _give_up(job_id, seq, "RobotoServiceException", f"Processing failed: {type(err).__name__}", bound)
            return
        retries = self.request.retries
        if retries >= settings.task_max_retries:
            bound.error("chunk.retries_exhausted", retries=retries, error=str(err).splitlines()[0])
            _give_up(
                job_id,
                seq,
                "RobotoServiceUnavailableException",
                f"Gave up after {retries} retries: {type(err).__name__}",
                bound,
            )
            return
        delay = retry_countdown(self.app, backoff.jittered(retries, base_s=0.5, floor_s=0.2))
        bound.warning("chunk.retry", retries=retries, in_s=round(delay, 2), error=str(err).splitlines()[0])
        _postpone_resend(job_id, seq, delay, bound)
        raise self.retry(exc=err, countdown=delay) from None
    bound.info(
        "chunk.processed",
        items=outcome.succeeded + outcome.failed,
        succeeded=outcome.succeeded,
        failed=outcome.failed,
        ms=round((time.perf_counter() - started) * 1000, 1),
        job_state=job["state"],
    )
    if job["finished"] is not None:
        bound.info(
            "job.finished",
            state=job["state"],
            total=job["total"],
            succeeded=job["succeeded"],
            failed=job["failed"],
            duration_s=float(job["duration_s"] or 0),
        )


def _postpone_resend(job_id: str, seq: int, delay_s: float, bound) -> None:
    try:
        with transaction() as conn:
            jobs.postpone_resend(conn, job_id, seq, delay_s)
    except Exception as err:  # the database is away: a duplicate message later is harmless (claims are exclusive)
        bound.warning("chunk.postpone_failed", error=str(err).splitlines()[0])


def _give_up(job_id: str, seq: int, code: str, message: str, bound) -> None:
    try:
        with transaction() as conn:
            jobs.fail_chunk(conn, job_id, seq, code, message)
        bound.error("chunk.failed", error_code=code, message=message)
    except Exception as err:  # the database is still away: the chunk stays queued and the sweeper resends it
        bound.error("chunk.fail_not_recorded", error=str(err).splitlines()[0])
