"""What the pages show, computed from domain rows: a job's progress and speed, a listing's next position."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.jobs import TERMINAL_STATES
from ingest.results import Item


@dataclass
class JobView:
    job_id: str
    state: str
    lane: str
    source: str
    principal: str
    request_id: str | None
    idempotency_key: str | None
    total: int
    succeeded: int
    failed: int
    created: datetime
    started: datetime | None
    finished: datetime | None
    error_code: str | None
    error_message: str | None
    now: datetime

    @classmethod
    def of(cls, row: dict, now: datetime | None = None) -> JobView:
        return cls(
            row["job_id"],
            row["state"],
            row["lane"],
            row["source"],
            row["principal"],
            row.get("request_id"),
            row.get("idempotency_key"),
            row["total"],
            row["succeeded"],
            row["failed"],
            row["created"],
            row.get("started"),
            row.get("finished"),
            row.get("error_code"),
            row.get("error_message"),
            now or datetime.now(UTC),
        )

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def pending(self) -> int:
        return max(0, self.total - self.done)

    @property
    def percent(self) -> int:
        if self.total == 0:
            return 100 if self.terminal else 0
        return min(100, self.done * 100 // self.total)

    @property
    def age_s(self) -> float:
        return max(0.0, (self.now - self.created).total_seconds())

    @property
    def queued_s(self) -> float | None:
        return (self.started - self.created).total_seconds() if self.started else None

    @property
    def running_s(self) -> float | None:
        if self.started is None:
            return None
        return max(0.0, ((self.finished or self.now) - self.started).total_seconds())

    @property
    def items_per_s(self) -> float | None:
        """Items processed per second since the job was accepted (to its finish, or now while it runs): what the
        submitter sees end to end. Not per second of running time: a one-chunk job's start and finish are stamped
        in the same transaction, so its running time reads as zero."""
        elapsed = ((self.finished or self.now) - self.created).total_seconds()
        if elapsed <= 0 or not self.done:
            return None
        return self.done / elapsed


@dataclass
class FailureRow:
    request_index: int
    entry_index: int
    session_id: str
    name: str
    error_code: str
    message: str

    @classmethod
    def of(cls, item: Item) -> FailureRow:
        code, message = (item.error.error_code, item.error.message) if item.error else ("", "")
        return cls(item.request_index, item.entry_index, item.session_id, item.name, code, message)


def position_text(position: tuple[int, int]) -> str:
    """A position in a job's items (chunk seq, offset) as it travels in a URL: `3-120`."""
    return f"{position[0]}-{position[1]}"
