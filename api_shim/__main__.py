"""`python -m api_shim`: the HTTP API (what `metrics-ingest api` runs, without the CLI loaded)."""

from __future__ import annotations

import argparse

import uvicorn

from api_shim.server import HeadTimeoutProtocol
from ingest.config import get_settings
from ingest.logs import configure_logging


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m api_shim", description=__doc__)
    parser.add_argument("--host", default=settings.api_host)
    parser.add_argument("--port", type=int, default=settings.api_port)
    parser.add_argument("--workers", type=int, default=settings.api_workers)
    args = parser.parse_args()
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(
        "api_shim.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        http=HeadTimeoutProtocol,  # uvicorn's httptools protocol with a deadline on request heads
        access_log=False,
        timeout_keep_alive=5,
    )


if __name__ == "__main__":
    main()
