"""Wait for a job to finish without polling: one LISTEN connection per API process, dispatching PostgreSQL
notifications (sent by the worker when it commits a job's last chunk) to the requests waiting on them."""

from __future__ import annotations

import threading
import time

import psycopg
import structlog

from ingest.config import get_settings, to_libpq_url
from ingest.db import connect_args
from ingest.jobs import NOTIFY_CHANNEL

log = structlog.get_logger(__name__)


class JobWaiter:
    def __init__(self, url: str):
        self.url = url
        self._events: dict[str, threading.Event] = {}
        # what the notification carried for registered jobs: terminal state, and a one-chunk job's outcomes
        self.states: dict[str, str] = {}
        self.outcomes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-waiter", daemon=True)
                self._thread.start()
        self._listening.wait(5)

    def register(self, job_id: str, *, keep: bool = False) -> threading.Event:
        """The event set when `job_id` finishes; with `keep`, an event registered earlier is reused."""
        with self._lock:
            event = self._events.get(job_id) if keep else None
            if event is None:
                event = self._events[job_id] = threading.Event()
        return event

    def unregister(self, job_id: str) -> None:
        with self._lock:
            self._events.pop(job_id, None)
            self.states.pop(job_id, None)
            self.outcomes.pop(job_id, None)

    def _run(self) -> None:
        while True:
            try:
                with psycopg.connect(self.url, autocommit=True, **connect_args(get_settings())) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._listening.set()
                    # After a reconnect, wake every waiter so it re-reads its job's state once.
                    self._wake_all()
                    for note in conn.notifies():
                        job_id, _, rest = note.payload.partition(" ")
                        state, _, outcomes = rest.partition(" ")
                        with self._lock:
                            event = self._events.get(job_id)
                            if event is not None:
                                self.states[job_id] = state
                                if outcomes:
                                    self.outcomes[job_id] = outcomes
                        if event is not None:
                            event.set()
            except Exception as err:
                self._listening.clear()
                log.warning("waiter.disconnected", error=str(err).splitlines()[0] if str(err) else type(err).__name__)
                time.sleep(1)

    def _wake_all(self) -> None:
        with self._lock:
            for event in self._events.values():
                event.set()


_waiter: JobWaiter | None = None


def get_waiter() -> JobWaiter:
    global _waiter
    if _waiter is None:
        _waiter = JobWaiter(to_libpq_url(get_settings().effective_database_url))
        _waiter.start()
    return _waiter
