"""The Celery app's transport settings, shared by the producer (API, sweeper) and the worker, and the name of the one
task a message invokes.

Two transports, chosen by the scheme of `METRICS_INGEST_BROKER_URL`:

- Redis (`redis://`, `rediss://`, a unix socket `unix:///path?db=N` or `redis+socket:///path?virtual_host=N`): one
  list per lane; a message taken by a worker waits in Redis's unacked set and is delivered again after
  `METRICS_INGEST_BROKER_VISIBILITY_TIMEOUT_S` if that worker never acknowledged it.
- RabbitMQ (`amqp://`, `amqps://`): one durable queue per lane, a quorum queue by default
  (`METRICS_INGEST_AMQP_QUEUE_TYPE`), bound to a topic exchange of the same name so that a retry's countdown waits in
  RabbitMQ (Celery's native delayed delivery) instead of in a worker's memory; publisher confirms on; a message held
  by a worker whose connection dies (missed heartbeats) is delivered again at once.

Both: acks late (a message is acknowledged when its chunk is committed), prefetch per lane (an interactive-only worker
takes one message per process at a time; a worker with the bulk lane keeps `METRICS_INGEST_BULK_PREFETCH` per process
so the next chunk is on hand when one commits)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from urllib.parse import parse_qs

from celery import Celery
from kombu import Exchange, Queue
from kombu.transport import redis as redis_transport

from ingest.config import Settings
from ingest.jobs import LANES

PROCESS_CHUNK = "metrics_ingest.process_chunk"
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
PUBLISH_CONFIRM_TIMEOUT_S = 5


def _kept_redis_client(self, client=None):
    """kombu's Redis channel builds a new `redis.Redis` object (on the channel's connection pool) for every publish and
    every acknowledgement; this keeps one per channel and pool instead. Sockets come from the same pool either way;
    a pool replaced after a disconnect gets a client of its own."""
    if client is not None:
        yield client
        return
    kept = self.__dict__.get("_kept_client")
    if kept is None or kept.connection_pool is not self.pool:
        kept = self.__dict__["_kept_client"] = self._create_client()
    yield kept


KOMBU_CONN_OR_ACQUIRE = redis_transport.Channel.conn_or_acquire  # what the patch replaces (tests compare its source)
redis_transport.Channel.conn_or_acquire = contextlib.contextmanager(_kept_redis_client)  # type: ignore[method-assign]


def is_amqp(url: str) -> bool:
    return url.startswith(AMQP_SCHEMES)


def _socket_parts(url: str, scheme: str, db_key: str) -> tuple[str, str]:
    path, _, query = url[len(scheme) :].partition("?")
    return path, parse_qs(query).get(db_key, ["0"])[0]


def kombu_url(url: str) -> str:
    """The broker URL as Kombu spells a Redis unix socket (`redis+socket:///path?virtual_host=N`)."""
    if url.startswith("unix://"):
        path, db = _socket_parts(url, "unix://", "db")
        return f"redis+socket://{path}?virtual_host={db}"
    return url


def redis_py_url(url: str) -> str:
    """The broker URL as redis-py spells a Redis unix socket (`unix:///path?db=N`)."""
    if url.startswith("redis+socket://"):
        path, db = _socket_parts(url, "redis+socket://", "virtual_host")
        return f"unix://{path}?db={db}"
    return url


def lane_queues(settings: Settings) -> list[Queue]:
    if not is_amqp(settings.effective_broker_url):
        return [Queue(lane, routing_key=lane) for lane in LANES]
    arguments = {"x-queue-type": settings.amqp_queue_type}
    return [
        Queue(
            lane,
            Exchange(lane, type="topic", durable=True),
            routing_key=lane,
            durable=True,
            auto_delete=False,
            queue_arguments=arguments,
        )
        for lane in LANES
    ]


def transport_settings(settings: Settings) -> dict:
    url = settings.effective_broker_url
    if is_amqp(url):
        return {
            "broker_heartbeat": settings.broker_heartbeat_s,
            "broker_transport_options": {
                "confirm_publish": True,  # a publish returns once RabbitMQ has the message (or raises)
                "connect_timeout": 5,
            },
            "broker_native_delayed_delivery_queue_type": settings.amqp_queue_type,
            "worker_detect_quorum_queues": True,  # quorum queues refuse global QoS: prefetch per consumer
        }
    return {
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
        },
    }


def make_celery(settings: Settings) -> Celery:
    app = Celery("metrics_ingest", broker=kombu_url(settings.effective_broker_url))
    app.conf.update(
        task_queues=lane_queues(settings),
        task_default_queue="interactive",
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # job state lives in PostgreSQL, not in a result backend
        result_backend=None,
        broker_connection_retry_on_startup=True,
        broker_pool_limit=20,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=max(5, settings.task_time_limit_s - 10),
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_max_retries=None,
        **transport_settings(settings),
    )
    return app


def publish_options(settings: Settings) -> dict:
    """Per-message publish options: on RabbitMQ, how long a publish waits for the broker's confirm before it counts as
    failed (a broker host that vanished would otherwise hold the caller until TCP gives up, many minutes later)."""
    return {"confirm_timeout": PUBLISH_CONFIRM_TIMEOUT_S} if is_amqp(settings.effective_broker_url) else {}


def prefetch_for(settings: Settings, lanes: Sequence[str]) -> int:
    """Messages each worker process reserves: one for a worker serving only interactive publishes (a message waits
    at the broker for whichever worker is free first), more for a worker with the bulk lane (the next chunk is
    already local when one commits, which hides the broker's round trip on a slow network)."""
    return settings.bulk_prefetch if "bulk" in lanes else settings.interactive_prefetch


def retry_countdown(app: Celery, delay_s: float) -> float:
    """The countdown of a retry as the transport can honour it: RabbitMQ's delayed delivery counts whole seconds
    (and refuses less than one), Redis holds the message in the worker for any fraction."""
    return float(max(1, math.ceil(delay_s))) if is_amqp(app.conf.broker_url or "") else delay_s
