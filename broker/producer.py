"""`CeleryBroker`: the domain's broker port (`ingest.broker_port.Broker`) on a Celery app, on Redis or RabbitMQ."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

import redis
import structlog
from celery import Celery
from kombu import Connection, Producer

from broker.celery_app import PROCESS_CHUNK, is_amqp, make_celery, publish_options, redis_py_url
from ingest.config import Settings
from ingest.jobs import LANES

log = structlog.get_logger(__name__)

PROBE_TIMEOUT_S = 2  # a probe (readiness, the sweeper's queue lengths) never hangs on an unreachable broker


class CeleryBroker:
    def __init__(self, app: Celery, url: str, options: dict | None = None) -> None:
        self.app = app
        self.url = url
        self.options = options or {}
        self._probe: RedisProbe | AmqpProbe = AmqpProbe(url) if is_amqp(url) else RedisProbe(url)
        # On Redis, one producer kept for the process (kombu's pool builds a Redis client object for every send).
        self._kept: KeptProducer | None = None if is_amqp(url) else KeptProducer(app)

    @classmethod
    def from_settings(cls, settings: Settings) -> CeleryBroker:
        return cls.for_app(make_celery(settings), settings)

    @classmethod
    def for_app(cls, app: Celery, settings: Settings) -> CeleryBroker:
        """The port on an existing Celery app (the worker's own)."""
        return cls(app, settings.effective_broker_url, publish_options(settings))

    def send_chunks(self, job_id: str, lane: str, seqs: Sequence[int], request_id: str | None = None) -> bool:
        def send(prod: Producer) -> None:
            for seq in seqs:
                self.app.send_task(
                    PROCESS_CHUNK,
                    args=[job_id, seq],
                    kwargs={"request_id": request_id},
                    queue=lane,
                    routing_key=lane,
                    producer=prod,
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
                    **self.options,
                )

        try:
            if self._kept is not None:
                self._kept.run(send)
            else:
                with self.app.producer_or_acquire() as prod:
                    send(prod)
        except Exception as err:  # broker down: the chunks stay queued in PostgreSQL; the sweeper sends them
            log.warning("enqueue.failed", job_id=job_id, lane=lane, chunks=len(seqs), error=str(err))
            return False
        return True

    def queue_lengths(self) -> dict[str, int]:
        return self._probe.lengths()

    def ping(self) -> bool:
        try:
            return self._probe.ping()
        except Exception as err:
            log.warning("broker.unreachable", error=str(err).splitlines()[0] if str(err) else repr(err))
            return False


class KeptProducer:
    """One kombu producer on one connection, kept for the life of the process and used under a lock (a send takes a
    fraction of a millisecond). After any error the producer is dropped and the next send builds a new one."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._producer: Producer | None = None

    def run(self, send: Callable[[Producer], None]) -> None:
        with self._lock:
            if self._producer is None:
                self._producer = self.app.amqp.Producer(self.app.connection_for_write())
            try:
                send(self._producer)
            except Exception:
                self._reset()
                raise

    def _reset(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.connection.collect()


class RedisProbe:
    """A plain Redis client with short time-outs. A lane's length counts the messages no worker has taken yet (a
    message a worker holds waits in Redis's unacked set, not in the list)."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(
            redis_py_url(url), socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
        )

    def lengths(self) -> dict[str, int]:
        return {lane: int(self._client.llen(lane)) for lane in LANES}

    def ping(self) -> bool:
        return bool(self._client.ping())


class AmqpProbe:
    """One AMQP connection of its own (heartbeat off, short time-outs), opened on first use and again after any
    error. A lane's length is the `message_count` of a passive `queue.declare`: the messages ready for delivery,
    not those delivered to a worker and not yet acknowledged (the same meaning as a Redis list's length). A queue
    that does not exist (a broker restarted empty, before any worker declared it again) holds nothing."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = Connection(
                self.url,
                connect_timeout=PROBE_TIMEOUT_S,
                heartbeat=0,
                transport_options={"read_timeout": PROBE_TIMEOUT_S, "write_timeout": PROBE_TIMEOUT_S},
            )
            conn.connect()
            self._conn = conn
        return self._conn

    def _reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.collect()  # drop the socket without a closing handshake that could wait on a dead peer

    def lengths(self) -> dict[str, int]:
        with self._lock:
            reused = self._conn is not None
            try:
                return self._lengths()
            except Exception:
                self._reset()
                if not reused:
                    raise
            # A connection kept from an earlier probe may have been closed by the server meanwhile (idle, restart):
            # one more try on a new one, so that the answer is about the broker, not about an old socket.
            try:
                return self._lengths()
            except Exception:
                self._reset()
                raise

    def _lengths(self) -> dict[str, int]:
        from amqp.exceptions import NotFound

        found: dict[str, int] = {}
        channel = self._connection().channel()
        for lane in LANES:
            try:
                found[lane] = int(channel.queue_declare(queue=lane, passive=True).message_count)
            except NotFound:  # the broker closed the channel with the error: open another
                found[lane] = 0
                channel = self._connection().channel()
        channel.close()
        return found

    def ping(self) -> bool:
        self.lengths()
        return True
