"""The backfill run: read -> chunk -> submit (a few in flight) -> follow the jobs -> write the failures file.

Threads: the caller's thread reads and submits; a small pool sends bodies; a monitor thread polls unfinished jobs
and refreshes the progress display. Shared counters live in one `Stats` under its lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ingest.jobs import TERMINAL_STATES
from runtime.backfill.chunks import Chunk, build_chunks, file_digest
from runtime.backfill.client import ApiError, JobClient
from runtime.backfill.failures import FailuresWriter, default_path
from runtime.backfill.progress import Stats
from runtime.backfill.readers import LineError, Record, detect_format, read_file, read_stream
from runtime.backfill.spool import spool_dir

log = structlog.get_logger(__name__)

CHUNK_REJECTIONS = (400, 409, 413)  # the body itself was refused: its values fail, the run goes on


@dataclass
class Options:
    fmt: str | None = None
    chunk_items: int = 20_000
    parallel: int = 2
    wait: bool = True
    failures: Path | None = None  # one file for all inputs; default: beside each input
    lane: str = "bulk"
    poll_s: float = 0.25


@dataclass
class JobRef:
    chunk: Chunk
    job_id: str
    existing: bool
    state: str = "queued"
    succeeded: int = 0
    failed: int = 0


@dataclass
class FileResult:
    path: Path
    jobs: list[JobRef] = field(default_factory=list)
    failures_path: Path | None = None


class _Counted:
    """Wraps the record stream to count values and bytes read for the progress display."""

    def __init__(self, path: Path, fmt: str, stats: Stats) -> None:
        self.path, self.fmt, self.stats = path, fmt, stats

    def __iter__(self) -> Iterator[Record]:
        read = errors = 0
        base = self.stats.bytes_read
        with open(self.path, "rb") as fh:
            for n, record in enumerate(read_stream(fh, self.fmt), start=1):
                if isinstance(record, LineError):
                    errors += 1
                else:
                    read += 1
                if n % 2000 == 0:
                    self._add(read, errors, base + fh.tell())
                    read = errors = 0
                yield record
            self._add(read, errors, base + fh.tell())

    def _add(self, read: int, errors: int, position: int) -> None:
        with self.stats.lock:
            self.stats.read += read
            self.stats.line_errors += errors
            self.stats.bytes_read = position


class Backfill:
    def __init__(self, client: JobClient, options: Options, stats: Stats, progress) -> None:
        self.client = client
        self.options = options
        self.stats = stats
        self.progress = progress
        self.jobs: list[JobRef] = []
        self.jobs_lock = threading.Lock()
        self.stop = threading.Event()

    # -- monitor -----------------------------------------------------------------------------------------
    def _monitor(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.progress.refresh()
            self.stop.wait(self.options.poll_s)

    def poll(self, limit: int = 3) -> None:
        """Refresh the oldest unfinished jobs: the bulk lane is FIFO, so the newer ones have not moved yet (and
        a few GETs per tick keep the monitor's load on a busy API small)."""
        with self.jobs_lock:
            open_jobs = [j for j in self.jobs if j.state not in TERMINAL_STATES][:limit]
        for ref in open_jobs:
            try:
                self._update(ref, self.client.job(ref.job_id))
            except Exception as err:  # a blip: the next poll tries again
                log.warning("job.poll_failed", job_id=ref.job_id, error=str(err))

    def _update(self, ref: JobRef, job: dict) -> None:
        counts = job["counts"]
        with self.stats.lock:
            self.stats.succeeded += counts["succeeded"] - ref.succeeded
            self.stats.failed += counts["failed"] - ref.failed
            if job["state"] in TERMINAL_STATES and ref.state not in TERMINAL_STATES:
                self.stats.jobs_done += 1
        ref.succeeded, ref.failed, ref.state = counts["succeeded"], counts["failed"], job["state"]

    # -- one file ----------------------------------------------------------------------------------------
    def run_file(self, path: Path, failures: FailuresWriter) -> FileResult:
        fmt = detect_format(path, self.options.fmt)
        digest = file_digest(path, fmt, self.options.chunk_items)
        result = FileResult(path)
        source = str(path)
        errors: list[LineError] = []
        in_flight: deque[tuple[Chunk, Future]] = deque()
        with (
            spool_dir() as spool,
            ThreadPoolExecutor(max_workers=self.options.parallel, thread_name_prefix="submit") as pool,
        ):
            records: _Counted = _Counted(path, fmt, self.stats)
            chunks = build_chunks(
                records, digest=digest, chunk_items=self.options.chunk_items, spool_dir=spool, errors=errors
            )
            for chunk in chunks:
                self._drain_errors(errors, failures, source)
                in_flight.append((chunk, pool.submit(self.client.submit, chunk.body(), chunk.key, self.options.lane)))
                while len(in_flight) >= self.options.parallel * 2:
                    self._settle(*in_flight.popleft(), result, failures, source)
            self._drain_errors(errors, failures, source)
            while in_flight:
                self._settle(*in_flight.popleft(), result, failures, source)
            if self.options.wait:
                self._wait_for(result.jobs)
                for ref in result.jobs:
                    if ref.failed:
                        self._write_item_failures(ref, failures, source)
            for ref in result.jobs:
                ref.chunk.discard()
        return result

    def _drain_errors(self, errors: list[LineError], failures: FailuresWriter, source: str) -> None:
        while errors:
            failures.line_error(source, errors.pop(0))

    def _settle(self, chunk: Chunk, future: Future, result: FileResult, failures: FailuresWriter, source: str) -> None:
        try:
            submitted = future.result()
        except ApiError as err:
            if err.status not in CHUNK_REJECTIONS:
                raise  # 401/403/404...: no chunk can succeed, stop here
            # the API refused the body as a whole (should not happen: readers check the shape); every value in it
            # goes to the failures file with the API's answer
            log.error("chunk.rejected", chunk=chunk.seq, key=chunk.key, status=err.status, error=err.message)
            for request, lines in chunk.read_back():
                for entry, line in zip(request["metrics"], lines, strict=True):
                    failures.item(
                        source, line, request["session_id"], request["device_id"], entry,
                        {"error_code": err.error_code, "message": err.message},
                    )  # fmt: skip
            with self.stats.lock:
                self.stats.rejected += chunk.items
            chunk.discard()
            return
        job = submitted.job
        ref = JobRef(chunk, job["job_id"], submitted.existing, state="queued")
        (log.info if getattr(self.progress, "log_chunks", True) else log.debug)(
            "chunk.accepted" if not submitted.existing else "chunk.resumed",
            chunk=chunk.seq,
            job_id=ref.job_id,
            items=chunk.items,
            lines=f"{chunk.first_line}-{chunk.last_line}",
        )
        with self.stats.lock:
            self.stats.sent += chunk.items
            self.stats.jobs += 1
            if submitted.existing:
                self.stats.resumed += chunk.items
        self._update(ref, job)
        result.jobs.append(ref)
        with self.jobs_lock:
            self.jobs.append(ref)

    def _wait_for(self, refs: list[JobRef]) -> None:
        while any(r.state not in TERMINAL_STATES for r in refs):
            time.sleep(self.options.poll_s)
            if not self._monitor_running:
                self.poll()

    def _write_item_failures(self, ref: JobRef, failures: FailuresWriter, source: str) -> None:
        failed = {(i["request_index"], i["entry_index"]): i["error"] for i in self.client.results(ref.job_id, "failed")}
        for ri, (request, lines) in enumerate(ref.chunk.read_back()):
            for ei, (entry, line) in enumerate(zip(request["metrics"], lines, strict=True)):
                error = failed.get((ri, ei))
                if error is not None:
                    failures.item(source, line, request["session_id"], request["device_id"], entry, error)

    # -- all files ---------------------------------------------------------------------------------------
    _monitor_running = False

    def run(self, paths: list[Path]) -> list[FileResult]:
        with self.stats.lock:
            self.stats.bytes_total = sum(p.stat().st_size for p in paths)
        monitor = threading.Thread(target=self._monitor, name="monitor", daemon=True)
        self._monitor_running = True
        monitor.start()
        results: list[FileResult] = []
        shared = FailuresWriter(self.options.failures) if self.options.failures else None
        try:
            for path in paths:
                writer = shared or FailuresWriter(default_path(path))
                try:
                    results.append(self.run_file(path, writer))
                except BaseException:
                    writer.abort()  # interrupted: keep the previous failures file, write no partial one
                    raise
                if writer is not shared:
                    results[-1].failures_path = writer.close()
            with self.stats.lock:
                self.stats.reading_done = True
        finally:
            self.stop.set()
            monitor.join(timeout=10)
            self._monitor_running = False
        if shared is not None:
            written = shared.close()
            for r in results:
                r.failures_path = written
        self.poll(limit=10_000)
        return results


def iter_records(path: Path, fmt: str | None = None) -> list[Record]:
    """Every record of a file, in order (a small-file convenience for tools and tests)."""
    return list(read_file(path, detect_format(path, fmt)))
