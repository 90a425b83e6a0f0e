"""Liveness and readiness probes. No auth, no data beyond the names of the checks."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api_shim.deps import get_broker
from api_shim.models import Health, Readiness
from ingest import readiness
from ingest.config import get_settings

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict:
    """200 while the API process serves."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready"}})
def readyz() -> JSONResponse:
    """200 when PostgreSQL answers, its schema is at the newest migration, the broker answers and a worker sent a
    heartbeat within `METRICS_INGEST_WORKER_ALIVE_S`; otherwise 503 with the same body naming the failed checks."""
    body = readiness.report(readiness.run_checks(get_settings(), get_broker()))
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503, headers={"Cache-Control": "no-store"})
