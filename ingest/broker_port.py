"""The one port through which the domain's callers reach the message broker.

A message names a chunk of a job that PostgreSQL already holds (the outbox); it never carries the payload. Losing a
message loses nothing: the sweeper sends it again. The Celery adapter is `broker.CeleryBroker`; the edges (the API,
the worker, the runtime) construct it and hand it to whatever needs it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Broker(Protocol):
    def send_chunks(self, job_id: str, lane: str, seqs: Sequence[int], request_id: str | None = None) -> bool:
        """One message per chunk, sent after the job's transaction committed. False when the broker could not take
        them (the chunks stay queued in PostgreSQL and the sweeper sends them later)."""
        ...

    def queue_lengths(self) -> dict[str, int]:
        """Messages waiting in each lane's queue; raises when the broker does not answer."""
        ...

    def ping(self) -> bool:
        """True when the broker answers."""
        ...
