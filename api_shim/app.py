"""FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from api_shim.body_guard import BodyGuard
from api_shim.console import install as install_console
from api_shim.errors import install_error_handlers
from api_shim.middleware import ObservabilityMiddleware
from api_shim.openapi import complete
from api_shim.routes import catalog, definitions, health, jobs, metrics, ops, reads
from ingest import __version__
from ingest.config import get_settings
from ingest.logs import configure_logging

# Sync routes run in a thread pool; a Roboto publish holds its thread while it waits for the worker (no database
# connection is held meanwhile), so allow many more waiting publishes than anyio's default of 40.
THREADS = 256


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield
    from ingest.db import dispose_engine

    dispose_engine()


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = FastAPI(
        title="metrics-ingest",
        version=__version__,
        description="Self-hosted, Roboto-compatible metrics ingestion service.",
        redirect_slashes=False,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyGuard)  # inner: limits apply inside the observed request
    app.add_middleware(ObservabilityMiddleware)
    app.include_router(health.router)
    app.include_router(ops.router)
    app.include_router(definitions.router)
    app.include_router(catalog.router)
    app.include_router(metrics.router)
    app.include_router(jobs.router)
    app.include_router(reads.router)
    install_console(app)  # the web console at /console (HTML pages, same process, same middleware)
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
