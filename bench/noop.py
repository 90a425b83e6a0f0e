"""A no-op Celery task with a result backend: the baseline's queue round trip (send, run, answer) on the same
Redis as the service. Run by the bench as `celery -A bench.noop worker`; the broker comes from
METRICS_INGEST_BROKER_URL, which the bench sets."""

from __future__ import annotations

import os

from celery import Celery

QUEUE = "bench_noop"


def make_app(broker_url: str) -> Celery:
    app = Celery("bench_noop", broker=broker_url, backend=broker_url)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="bench.noop")
    def noop() -> int:
        return 1

    return app


app = make_app(
    os.environ.get("METRICS_INGEST_BROKER_URL", "redis://127.0.0.1:6379/0")
)  # the worker side (celery -A bench.noop)


def client_app(broker_url: str) -> Celery:
    """The sending side, in the bench process: the same app pointed at the bench's Redis."""
    app.conf.update(broker_url=broker_url, result_backend=broker_url)
    return app
