"""FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from api_shim.errors import install_error_handlers
from api_shim.routes import catalog, definitions, health, jobs, metrics
from ingest import __version__


def create_app() -> FastAPI:
    app = FastAPI(
        title="metrics-ingest",
        version=__version__,
        description="Self-hosted, Roboto-compatible metrics ingestion service.",
        redirect_slashes=False,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(definitions.router)
    app.include_router(catalog.router)
    app.include_router(metrics.router)
    app.include_router(jobs.router)
    return app
