"""A no-op Celery task with a result backend: the baseline's queue round trip (send, run, answer) on the same
Redis as the service. Run by the bench as `celery -A bench.noop worker`; the broker comes from Settings."""

from __future__ import annotations

from celery import Celery

from ingest.config import get_settings

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


app = make_app(get_settings().broker_url or "redis://127.0.0.1:6379/0")  # the worker side (celery -A bench.noop)


def client_app(broker_url: str) -> Celery:
    """The sending side, in the bench process: the same app pointed at the bench's Redis."""
    app.conf.update(broker_url=broker_url, result_backend=broker_url)
    return app
