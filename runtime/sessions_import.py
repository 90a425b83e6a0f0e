"""`metrics-ingest sessions import FILE`: sessions from a CSV or NDJSON file, streamed to `POST /v1/sessions/batch`
in batches (several in flight), with progress, and the failed lines written to a file.

CSV: a header naming `session_id,start_time_ns,end_time_ns[,device_ids]`; `device_ids` separated by `;` or spaces.
NDJSON: one `{"session_id", "start_time_ns", "end_time_ns", "device_ids"}` object a line.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from runtime.backfill.client import JobClient

log = structlog.get_logger(__name__)

CSV_FIELDS = ("session_id", "start_time_ns", "end_time_ns")


@dataclass
class ImportStats:
    read: int = 0
    created: int = 0
    existing: int = 0
    failed: int = 0
    bytes_read: int = 0
    bytes_total: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def done(self) -> int:
        return self.created + self.existing + self.failed

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        share = f" {100 * self.bytes_read / self.bytes_total:5.1f}% of the file," if self.bytes_total else ""
        return (
            f"sessions:{share} {self.done:,} done ({self.created:,} created, {self.existing:,} existing, "
            f"{self.failed:,} failed), {self.done / elapsed:,.0f}/s"
        )


@dataclass
class Line:
    lineno: int
    item: dict | None  # the session, or None when the line is unreadable
    error: str | None = None


def detect_format(path: Path, explicit: str | None) -> str:
    if explicit:
        return explicit
    return "csv" if path.suffix.lower() == ".csv" else "ndjson"


def read_lines(fh: io.BufferedReader, fmt: str, stats: ImportStats) -> Iterator[Line]:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    if fmt == "ndjson":
        for lineno, raw in enumerate(text, 1):
            stats.bytes_read += len(raw)
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError:
                yield Line(lineno, None, "not valid JSON")
                continue
            yield Line(lineno, item) if isinstance(item, dict) else Line(lineno, None, "not a JSON object")
        return
    reader = csv.reader(text)
    header = next(reader, None) or []
    missing = [f for f in CSV_FIELDS if f not in header]
    if missing:
        yield Line(1, None, f"CSV header lacks {', '.join(missing)}")
        return
    index = {name: header.index(name) for name in (*CSV_FIELDS, "device_ids") if name in header}
    for fields in reader:
        stats.bytes_read += sum(len(f) + 1 for f in fields)
        if not fields:
            continue
        lineno = reader.line_num
        try:
            row: dict[str, Any] = {
                "session_id": fields[index["session_id"]],
                "start_time_ns": int(fields[index["start_time_ns"]]),
                "end_time_ns": int(fields[index["end_time_ns"]]),
            }
            devices = fields[index["device_ids"]] if "device_ids" in index else ""
        except (IndexError, ValueError):
            yield Line(lineno, None, "needs session_id and integer start_time_ns, end_time_ns")
            continue
        row["device_ids"] = [d for d in devices.replace(";", " ").split() if d]
        yield Line(lineno, row)


def batches(lines: Iterator[Line], size: int, on_error: Callable[[Line], None]) -> Iterator[list[Line]]:
    batch: list[Line] = []
    for line in lines:
        if line.item is None:
            on_error(line)
            continue
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Importer:
    def __init__(self, client: JobClient, stats: ImportStats, failures: Path, parallel: int) -> None:
        self.client = client
        self.stats = stats
        self.failures_path = failures
        self.failures: io.TextIOWrapper | None = None
        self.parallel = parallel

    def _fail(self, lineno: int, session_id: Any, code: str, message: str) -> None:
        if self.failures is None:
            self.failures = self.failures_path.open("w", encoding="utf-8")
        doc = {"line": lineno, "session_id": session_id, "error": {"error_code": code, "message": message}}
        self.failures.write(json.dumps(doc) + "\n")
        self.stats.failed += 1

    def _line_error(self, line: Line) -> None:
        with self.stats.lock:
            self._fail(line.lineno, None, "RobotoInvalidRequestException", line.error or "unreadable")

    def _send(self, batch: list[Line]) -> tuple[list[Line], dict]:
        return batch, self.client.create_sessions([b.item for b in batch if b.item is not None])

    def _settle(self, future: Future) -> None:
        batch, data = future.result()
        with self.stats.lock:
            for line, item in zip(batch, data["items"], strict=True):
                if item["status"] == "created":
                    self.stats.created += 1
                elif item["status"] == "exists":
                    self.stats.existing += 1
                else:
                    err = item.get("error") or {}
                    self._fail(line.lineno, item.get("session_id"), err.get("error_code", "?"), err.get("message", ""))

    def run(self, path: Path, fmt: str, batch_size: int, progress: Callable[[], None]) -> None:
        self.stats.bytes_total = path.stat().st_size
        in_flight: deque[Future] = deque()
        with path.open("rb") as fh, ThreadPoolExecutor(self.parallel) as pool:
            for batch in batches(read_lines(fh, fmt, self.stats), batch_size, self._line_error):
                self.stats.read += len(batch)
                in_flight.append(pool.submit(self._send, batch))
                while len(in_flight) >= self.parallel:
                    self._settle(in_flight.popleft())
                    progress()
            while in_flight:
                self._settle(in_flight.popleft())
                progress()
        if self.failures is not None:
            self.failures.close()


def import_sessions(
    client: JobClient,
    path: Path,
    *,
    fmt: str | None,
    batch_size: int,
    parallel: int,
    failures: Path | None,
    echo: Callable[[str], None],
    every_s: float = 2.0,
) -> int:
    """Exit code: 0 when every session was created or already there, 1 otherwise."""
    stats = ImportStats()
    failures = failures or path.with_name(path.name + ".failed.ndjson")
    last = [0.0]

    def progress() -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            echo(stats.line())

    importer = Importer(client, stats, failures, parallel)
    importer.run(path, detect_format(path, fmt), batch_size, progress)
    echo(stats.line())
    if stats.failed:
        echo(f"failed sessions written to {failures}")
        return 1
    return 0
