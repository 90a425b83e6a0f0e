"""Operator endpoints: `GET /metrics` (Prometheus text format) and `GET /ops/status` (what `metrics-ingest status
--endpoint` shows). No auth by default; when `METRICS_INGEST_METRICS_TOKEN` is set both require
`Authorization: Bearer <that token>` (API tokens do not open them)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api_shim.deps import bearer_token, get_broker
from ingest import status, telemetry
from ingest.config import get_settings
from ingest.db import transaction
from ingest.errors import Unauthorized

router = APIRouter(tags=["operations"])


def require_operator(authorization: str | None) -> None:
    expected = get_settings().metrics_token
    if not expected:
        return
    given = bearer_token(authorization)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("This endpoint requires the metrics token")


@router.get("/metrics", response_class=Response)
async def metrics(authorization: str | None = Header(default=None, include_in_schema=False)) -> Response:
    require_operator(authorization)
    body = await run_in_threadpool(telemetry.exposition, transaction, get_settings().worker_alive_s)
    return Response(body, media_type=telemetry.CONTENT_TYPE, headers={"Cache-Control": "no-store"})


@router.get("/ops/status")
def ops_status(authorization: str | None = Header(default=None, include_in_schema=False)) -> dict:
    require_operator(authorization)
    return status.collect(get_settings(), get_broker())
