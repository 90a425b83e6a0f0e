"""Live progress: a rich bar on a terminal, periodic structlog lines otherwise. Both read one `Stats` snapshot."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

log = structlog.get_logger(__name__)


@dataclass
class Stats:
    read: int = 0  # values read from the files
    line_errors: int = 0
    sent: int = 0  # values accepted by the API (new or resumed jobs)
    resumed: int = 0  # of which in jobs accepted by an earlier run
    rejected: int = 0  # values in chunks the API refused
    succeeded: int = 0
    failed: int = 0
    jobs: int = 0
    jobs_done: int = 0
    reading_done: bool = False
    bytes_read: int = 0
    bytes_total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed

    def estimated_total(self) -> int:
        """Values and unreadable lines: read so far, scaled by the share of bytes read until reading is done."""
        seen = self.read + self.line_errors
        if self.reading_done or not self.bytes_read:
            return seen
        return max(seen, int(seen * self.bytes_total / self.bytes_read))


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} items/s" if speed else "- items/s", style="progress.data.speed")


class RichProgress:
    log_chunks = False  # per-chunk log lines would scroll the bar away

    def __init__(self, stats: Stats, console: Console | None = None) -> None:
        self.stats = stats
        self.bar = Progress(
            TextColumn("[bold]backfill"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} processed"),
            TextColumn("sent {task.fields[sent]:,}"),
            TextColumn("[green]ok {task.fields[ok]:,}"),
            TextColumn("[red]failed {task.fields[failed]:,}"),
            _Rate(),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=4,
        )
        self.task = self.bar.add_task("backfill", total=1, sent=0, ok=0, failed=0)

    def __enter__(self) -> RichProgress:
        self.refresh()
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.refresh()
        self.bar.stop()

    def refresh(self) -> None:
        s = self.stats
        self.bar.update(
            self.task,
            total=max(1, s.estimated_total()),
            completed=s.processed + s.line_errors + s.rejected,
            sent=s.sent,
            ok=s.succeeded,
            failed=s.failed + s.line_errors + s.rejected,
        )


class LogProgress:
    """One `backfill.progress` line every `every_s` seconds (and at the end)."""

    log_chunks = True

    def __init__(self, stats: Stats, every_s: float = 2.0) -> None:
        self.stats = stats
        self.every_s = every_s
        self.started = time.monotonic()
        self.last = 0.0

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self._emit()

    def refresh(self) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self._emit()

    def _emit(self) -> None:
        self.last = time.monotonic()
        s = self.stats
        elapsed = max(1e-6, self.last - self.started)
        rate = s.processed / elapsed
        total = s.estimated_total()
        remaining = max(0, total - s.processed - s.line_errors - s.rejected)
        log.info(
            "backfill.progress",
            read=s.read,
            sent=s.sent,
            processed=s.processed,
            succeeded=s.succeeded,
            failed=s.failed + s.line_errors + s.rejected,
            total_estimate=total,
            items_per_s=round(rate, 1),
            eta_s=round(remaining / rate, 1) if rate > 0 else None,
            jobs=s.jobs,
            jobs_done=s.jobs_done,
        )
