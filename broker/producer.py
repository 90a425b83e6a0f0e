"""`CeleryBroker`: the domain's broker port (`ingest.broker_port.Broker`) on a Celery app."""

from __future__ import annotations

from collections.abc import Sequence

import redis
import structlog
from celery import Celery

from broker.celery_app import PROCESS_CHUNK, make_celery
from ingest.config import Settings
from ingest.jobs import LANES

log = structlog.get_logger(__name__)


class CeleryBroker:
    def __init__(self, app: Celery, url: str) -> None:
        self.app = app
        self.url = url
        self._redis: redis.Redis | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> CeleryBroker:
        return cls(make_celery(settings), settings.effective_broker_url)

    def send_chunks(self, job_id: str, lane: str, seqs: Sequence[int], request_id: str | None = None) -> bool:
        try:
            with self.app.producer_or_acquire() as prod:
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
                    )
        except Exception as err:  # broker down: the chunks stay queued in PostgreSQL; the sweeper sends them
            log.warning("enqueue.failed", job_id=job_id, lane=lane, chunks=len(seqs), error=str(err))
            return False
        return True

    def _client(self) -> redis.Redis:
        """A plain Redis client with short time-outs: a probe never hangs on an unreachable broker."""
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        return self._redis

    def queue_lengths(self) -> dict[str, int]:
        client = self._client()
        return {lane: int(client.llen(lane)) for lane in LANES}

    def ping(self) -> bool:
        try:
            return bool(self._client().ping())
        except Exception as err:
            log.warning("broker.unreachable", error=str(err).splitlines()[0] if str(err) else repr(err))
            return False
