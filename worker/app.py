"""The Celery worker app. Transport settings come from `broker.celery_app`; the worker adds its own here."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import warnings
from datetime import UTC, datetime

import celery.apps.worker
import structlog
from celery.exceptions import SecurityWarning
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from broker import CeleryBroker
from broker.celery_app import make_celery, prefetch_for
from ingest.config import get_settings
from ingest.db import dispose_engine
from ingest.logs import uses_json_lines

log = structlog.get_logger(__name__)

app = make_celery(get_settings())
broker = CeleryBroker.for_app(app, get_settings())  # the sweeper re-sends lost chunk messages with it
app.conf.update(
    include=["worker.tasks"],
    worker_max_tasks_per_child=10_000,
    worker_redirect_stdouts=False,  # structlog writes JSON lines to stdout itself
)


@worker_process_init.connect
def _fresh_pool_after_fork(**_: object) -> None:
    """Each prefork child builds its own engine/pool; a pool inherited from the parent is never used."""
    dispose_engine()
    from ingest.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)


@worker_ready.connect
def _start_sweeper(sender=None, **_: object) -> None:
    from worker.sweeper import start_background

    lanes = [q.name for q in sender.app.amqp.queues.consume_from.values()] if sender else []
    start_background(broker, lanes)


@worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    from worker.sweeper import stop_background

    stop_background()


def _notice(msg: str, f: object = None) -> None:
    """Celery's own notices ("worker: Warm shutdown (MainProcess)", ...) as one log line like every other. Celery says
    them from signal handlers, so the line is written with os.write (no lock a handler could wait on)."""
    text = msg.strip()
    if uses_json_lines(get_settings().log_format):
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        text = json.dumps({"event": "worker.notice", "message": text, "level": "info", "timestamp": now})
    with contextlib.suppress(OSError):
        os.write(1, (text + "\n").encode())


def _quiet_celery() -> None:
    """No start banner, no multi-line warnings: as root Celery warns (several lines, on stderr) that workers should
    not run as root; with JSON-only messages (no pickle) that is advice, said here once as a structured line."""
    celery.apps.worker.safe_say = _notice
    warnings.filterwarnings("ignore", category=SecurityWarning)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        log.warning(
            "worker.running_as_root",
            accept_content=list(app.conf.accept_content),
            hint="run the service under an unprivileged account",
        )


def run_worker(lanes: list[str], concurrency: int, name: str | None) -> None:
    node = name or f"{'+'.join(lanes)}-%i@{socket.gethostname()}"
    _quiet_celery()
    app.worker_main(
        [
            "--quiet",  # no start banner: the node's "ready." line says it is up
            "worker",
            "--queues",
            ",".join(lanes),
            "--concurrency",
            str(concurrency),
            "--hostname",
            node,
            "--loglevel",
            get_settings().log_level,
            "--without-gossip",
            "--without-mingle",
            "--pool",
            "prefork",
            "--prefetch-multiplier",
            str(prefetch_for(get_settings(), lanes)),
        ]
    )
