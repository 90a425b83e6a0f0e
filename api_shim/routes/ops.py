"""Operator endpoints: `GET /metrics` (Prometheus text format) and `GET /ops/status` (what `metrics-ingest status
--endpoint` shows). No auth by default; when `METRICS_INGEST_METRICS_TOKEN` is set both require
`Authorization: Bearer <that token>` (API tokens do not open them)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from api_shim.deps import bearer, bearer_token, get_broker
from api_shim.models import error_responses
from ingest import status, telemetry
from ingest.config import get_settings
from ingest.db import transaction
from ingest.errors import Unauthorized


def require_operator(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """With METRICS_INGEST_METRICS_TOKEN set, these routes want it as bearer token (API tokens do not open them)."""
    expected = get_settings().metrics_token
    if not expected:
        return
    given = bearer_token(credentials)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("This endpoint requires the metrics token")


# The metrics token is optional (unset by default): the document says so with an empty security requirement.
router = APIRouter(tags=["operations"], dependencies=[Depends(require_operator)], responses=error_responses(401))
OPTIONAL_TOKEN: dict[str, Any] = {"security": [{}, {"HTTPBearer": []}]}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
    openapi_extra=OPTIONAL_TOKEN,
)
async def metrics() -> Response:
    body = await run_in_threadpool(telemetry.exposition, transaction, get_settings().worker_alive_s)
    return Response(body, media_type=telemetry.CONTENT_TYPE, headers={"Cache-Control": "no-store"})


@router.get("/ops/status", openapi_extra=OPTIONAL_TOKEN)
def ops_status() -> dict:
    """What `metrics-ingest status --endpoint` shows (the same report as the local command)."""
    return status.collect(get_settings(), get_broker())
