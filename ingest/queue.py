"""The broker side both edges share: the Celery app's transport settings and the one message we send.

The message carries only the job id and chunk number, never the payload (PostgreSQL holds it)."""

from __future__ import annotations

from functools import lru_cache

import structlog
from celery import Celery
from kombu import Queue

from ingest.config import Settings, get_settings

log = structlog.get_logger(__name__)

LANES = ("interactive", "bulk")
PROCESS_CHUNK = "metrics_ingest.process_chunk"


def make_celery(settings: Settings) -> Celery:
    app = Celery("metrics_ingest", broker=settings.require_broker_url())
    app.conf.update(
        task_queues=[Queue(lane, routing_key=lane) for lane in LANES],
        task_default_queue="interactive",
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # job state lives in PostgreSQL, not in a result backend
        result_backend=None,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Longer than any task may run: a message is re-delivered only if its worker vanished.
            "visibility_timeout": max(3600, settings.task_time_limit_s * 4),
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
        },
        broker_pool_limit=20,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=max(5, settings.task_time_limit_s - 10),
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_max_retries=None,
    )
    return app


@lru_cache(maxsize=1)
def producer() -> Celery:
    return make_celery(get_settings())


def enqueue_chunks(job_id: str, lane: str, seqs: list[int], request_id: str | None = None) -> bool:
    """Send one message per chunk, after the job's transaction committed. A failure here loses nothing: the
    chunks stay queued in PostgreSQL and the sweeper sends them again."""
    app = producer()
    try:
        with app.producer_or_acquire() as prod:
            for seq in seqs:
                app.send_task(
                    PROCESS_CHUNK,
                    args=[job_id, seq],
                    kwargs={"request_id": request_id},
                    queue=lane,
                    routing_key=lane,
                    producer=prod,
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
                )
    except Exception as err:  # broker down: the sweeper will send them
        log.warning("enqueue.failed", job_id=job_id, lane=lane, chunks=len(seqs), error=str(err))
        return False
    return True
