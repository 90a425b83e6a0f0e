"""The Celery app's transport settings, shared by the producer (API, sweeper) and the worker, and the name of the one
task a message invokes."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from ingest.config import Settings
from ingest.jobs import LANES

PROCESS_CHUNK = "metrics_ingest.process_chunk"


def make_celery(settings: Settings) -> Celery:
    app = Celery("metrics_ingest", broker=settings.effective_broker_url)
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
