"""A loop in each worker's main process: heartbeats for readiness, and the sweeper that re-sends chunks whose
Celery message was lost (a broker restarted empty, an API process that died between commit and send, a publish the
broker refused).

A chunk is re-sent only when it has waited `requeue_after_s` since it was last sent (a retry waiting out its countdown
pushes that time to when the retry is due), its lane's queue has no message ready (Redis: the list is empty; RabbitMQ:
a passive declare's `message_count` is 0) and no worker holds it (row unlocked). Neither broker counts a message a
worker has taken and not yet acknowledged (Redis keeps it in its unacked set, RabbitMQ as delivered to that
consumer), so the rule does not promise that no copy exists, only that a lost message is always replaced: a worker
that vanished with its message lets go of the row lock when PostgreSQL ends its session, and only then may the chunk
be re-sent. A copy is harmless: a chunk is claimed once, under a row lock and only while queued, and the other copy
finds it done and is dropped.

The same loop purges finished jobs older than `METRICS_INGEST_JOB_RETENTION` every `purge_interval_s` (a minute), a
few small batches per tick so that heartbeats keep their pace; a backlog of old jobs is worked off over the next
ticks (ingest/retention.py).

And it recomputes the rollups of dirty days (ingest/rollups.py): at most `rollup_tick_s` of batches per tick, only
days that have been quiet for `rollup_quiet_s` (or waited `rollup_max_delay_s`); one worker at a time (advisory
lock), the others skip."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import structlog
from sqlalchemy import text

from ingest import heartbeats, jobs, retention, rollups
from ingest.broker_port import Broker
from ingest.config import get_settings
from ingest.db import transaction
from ingest.jobs import LANES

log = structlog.get_logger(__name__)

_stop = threading.Event()
_thread: threading.Thread | None = None
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
SWEEP_LOCK = 727275
PURGE_BATCHES_PER_TICK = 10


def heartbeat(lanes: list[str]) -> None:
    with transaction() as conn:
        heartbeats.beat(conn, WORKER_ID, socket.gethostname(), os.getpid(), lanes)


def sweep_once(broker: Broker, requeue_after_s: float) -> int:
    """Re-send lost chunk messages; returns how many were sent."""
    sent = 0
    waiting = broker.queue_lengths()
    for lane in LANES:
        if waiting.get(lane, 0) > 0:
            continue
        with transaction() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK}).scalar():
                return sent  # another worker is sweeping right now
            lost = jobs.chunks_to_resend(conn, lane, requeue_after_s)
        by_job: dict[str, list[int]] = {}
        for job_id, seq in lost:
            by_job.setdefault(job_id, []).append(seq)
        for job_id, seqs in by_job.items():
            broker.send_chunks(job_id, lane, seqs)
            log.warning("sweeper.resent", job_id=job_id, lane=lane, chunks=len(seqs))
        sent += len(lost)
    return sent


def purge_once(retention_s: float) -> bool:
    """Delete up to a few batches of expired jobs; True when more are left for the next tick."""
    purged, more = retention.purge(retention_s, max_batches=PURGE_BATCHES_PER_TICK)
    if purged.jobs:
        log.info("retention.purged", jobs=purged.jobs, chunks=purged.chunks, more=more)
    return more


def refresh_rollups(quiet_s: float, max_delay_s: float, pairs: int, budget_s: float) -> bool:
    """Recompute due dirty days for up to `budget_s`; True when more may be due (next tick at once)."""
    _done, more = rollups.refresh(pairs=pairs, quiet_s=quiet_s, max_delay_s=max_delay_s, budget_s=budget_s)
    return more


def _loop(broker: Broker, lanes: list[str]) -> None:
    settings = get_settings()
    interval = min(settings.sweep_interval_s, settings.heartbeat_interval_s, settings.purge_interval_s)
    next_purge = time.monotonic()
    while not _stop.is_set():
        try:
            heartbeat(lanes)
            sweep_once(broker, settings.requeue_after_s)
            if time.monotonic() >= next_purge:
                more = purge_once(settings.job_retention)
                next_purge = time.monotonic() + (0 if more else settings.purge_interval_s)
            refresh_rollups(
                settings.rollup_quiet_s,
                settings.rollup_max_delay_s,
                settings.rollup_batch_pairs,
                settings.rollup_tick_s,
            )
        except Exception as err:  # database or broker away: try again next tick
            log.warning("sweeper.tick_failed", error=str(err).splitlines()[0] if str(err) else type(err).__name__)
        _stop.wait(interval)
    try:
        with transaction() as conn:
            heartbeats.mark_stopped(conn, WORKER_ID)
    except Exception:
        pass


def start_background(broker: Broker, lanes: list[str]) -> None:
    global _thread
    if _thread is not None:
        return
    _stop.clear()
    _thread = threading.Thread(target=_loop, args=(broker, lanes), name="metrics-ingest-sweeper", daemon=True)
    _thread.start()
    log.info("sweeper.started", worker_id=WORKER_ID, lanes=lanes)


def stop_background() -> None:
    _stop.set()
    if _thread is not None:
        _thread.join(timeout=5)
