"""What the `backfill` and `job` CLI commands do, kept apart from typer so it reads (and tests) plainly."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import structlog
from rich.console import Console

from ingest.jobs import TERMINAL_STATES
from runtime.backfill.client import ApiError, JobClient
from runtime.backfill.progress import LogProgress, RichProgress, Stats
from runtime.backfill.runner import Backfill, Options
from runtime.messages import message_console

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _progress(stats: Stats, plain: bool):
    if sys.stdout.isatty() and not plain:
        return RichProgress(stats, Console(stderr=False))
    return LogProgress(stats)


def backfill(client: JobClient, paths: list[Path], options: Options, *, plain: bool = False) -> int:
    err = message_console()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        err.print(f"metrics-ingest backfill: no such file: {', '.join(missing)}")
        return EXIT_USAGE
    stats = Stats()
    progress = _progress(stats, plain)
    started = time.monotonic()
    runner = Backfill(client, options, stats, progress)
    try:
        with progress:
            results = runner.run(paths)
    except KeyboardInterrupt:
        err.print("interrupted: accepted chunks stay accepted; run the same command again to resume")
        return EXIT_INTERRUPTED
    except ApiError as e:  # 401/403/404 etc. on a job poll: nothing sensible to retry
        err.print(f"metrics-ingest backfill: {e}")
        return EXIT_FAILED
    elapsed = time.monotonic() - started
    failed = stats.failed + stats.line_errors + stats.rejected
    failure_files = sorted({str(r.failures_path) for r in results if r.failures_path})
    job_ids = [ref.job_id for r in results for ref in r.jobs]
    log.info(
        "backfill.finished",
        files=len(paths),
        read=stats.read,
        line_errors=stats.line_errors,
        jobs=len(job_ids),
        jobs_resumed=sum(1 for r in results for ref in r.jobs if ref.existing),
        sent=stats.sent,
        resumed_items=stats.resumed,
        succeeded=stats.succeeded,
        failed=failed,
        seconds=round(elapsed, 2),
        items_per_s=round(stats.processed / elapsed, 1) if elapsed > 0 else None,
        waited=options.wait,
        failures_file=failure_files[0] if len(failure_files) == 1 else failure_files or None,
    )
    if not options.wait:
        err.print(f"submitted {len(job_ids)} job(s); follow one with `metrics-ingest job watch JOB_ID`")
    if failed:
        err.print(f"{failed} value(s) failed; see {', '.join(failure_files) or 'the log'}")
        return EXIT_FAILED
    return EXIT_OK


def watch(client: JobClient, job_id: str, *, poll_s: float = 0.5, plain: bool = False) -> int:
    job = client.job(job_id)
    stats = Stats(reading_done=True)
    progress = _progress(stats, plain)

    def apply(j: dict) -> None:
        c = j["counts"]
        with stats.lock:
            stats.read = stats.sent = c["total"]
            stats.succeeded, stats.failed = c["succeeded"], c["failed"]
            stats.jobs, stats.jobs_done = 1, int(j["state"] in TERMINAL_STATES)

    with progress:
        apply(job)
        while job["state"] not in TERMINAL_STATES:
            progress.refresh()
            time.sleep(poll_s)
            job = client.job(job_id)
            apply(job)
    c = job["counts"]
    log.info("job.finished", job_id=job_id, state=job["state"], **c)
    return EXIT_FAILED if c["failed"] or job["state"] == "failed" else EXIT_OK


def results(client: JobClient, job_id: str, *, failed_only: bool) -> int:
    """One JSON object per line on stdout."""
    for item in client.results(job_id, "failed" if failed_only else None):
        sys.stdout.write(json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return EXIT_OK
