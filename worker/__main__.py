"""`python -m worker`: one Celery worker process (what `metrics-ingest worker` runs, without the CLI loaded)."""

from __future__ import annotations

import argparse

from ingest.config import get_settings
from ingest.jobs import LANES
from ingest.logs import configure_logging


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--lanes", default=",".join(LANES), help="comma-separated lanes (queues)")
    parser.add_argument("--concurrency", type=int, default=settings.worker_concurrency)
    parser.add_argument("--name", default=None, help="Celery node name (default: lanes@hostname)")
    args = parser.parse_args()
    configure_logging(settings.log_format, settings.log_level)
    from worker.app import run_worker

    run_worker(args.lanes.split(","), args.concurrency, args.name)


if __name__ == "__main__":
    main()
