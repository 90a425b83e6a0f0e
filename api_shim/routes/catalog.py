"""Native routes for devices and sessions, so pipelines can register them as they go."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api_shim import wire
from api_shim.bodies import read_json
from api_shim.deps import RequestContext, request_context
from api_shim.models import (
    CreateDeviceBody,
    CreateSessionBody,
    Data,
    DeviceRecord,
    SessionBatchBody,
    SessionBatchResult,
    SessionRecord,
    UpdateSessionBody,
    error_responses,
)
from api_shim.openapi import body_of
from ingest import catalog, session_batch
from ingest.errors import DomainError, InvalidRequest, PayloadTooLarge

router = APIRouter(tags=["sessions and devices"], responses=error_responses(400, 401, 404, 503))
CREATED = error_responses(409, 413)


def device_record(row: dict) -> dict:
    return {"org_id": row["org_id"], "device_id": row["device_id"], "created": wire.iso(row["created"])}


def session_record(row: dict) -> dict:
    return {
        "org_id": row["org_id"],
        "session_id": row["session_id"],
        "start_time_ns": row["start_ns"],
        "end_time_ns": row["end_ns"],
        "device_ids": list(row["device_ids"]),
        "created": wire.iso(row["created"]),
        "modified": wire.iso(row["modified"]),
    }


@router.post("/v1/devices", status_code=201, response_model=Data[DeviceRecord], responses=CREATED)
def create_device(body: CreateDeviceBody, ctx: RequestContext = Depends(request_context)) -> Response:
    with ctx.acting(write=True) as c:
        row = catalog.create_device(c.conn, c.org_id, body.device_id)
    return wire.respond(wire.data(device_record(row)), 201)


@router.get("/v1/devices/{device_id}", response_model=Data[DeviceRecord])
def get_device(device_id: str, ctx: RequestContext = Depends(request_context)) -> Response:
    with ctx.acting(write=False) as c:
        row = catalog.get_device(c.conn, c.org_id, device_id)
    return wire.respond(wire.data(device_record(row)))


@router.post("/v1/sessions", status_code=201, response_model=Data[SessionRecord], responses=CREATED)
def create_session(body: CreateSessionBody, ctx: RequestContext = Depends(request_context)) -> Response:
    with ctx.acting(write=True) as c:
        row = catalog.create_session(
            c.conn, c.org_id, body.session_id, body.start_time_ns, body.end_time_ns, body.device_ids
        )
    return wire.respond(wire.data(session_record(row)), 201)


def _batch_item(raw: Any) -> session_batch.NewSession | DomainError:
    try:
        body = CreateSessionBody.model_validate(raw)
    except ValidationError as err:
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in err.errors()[:5]]
        return InvalidRequest("Invalid request: " + "; ".join(parts))
    return session_batch.NewSession(body.session_id, body.start_time_ns, body.end_time_ns, body.device_ids)


def _batch_items(body: Any) -> list[Any]:
    if not isinstance(body, dict) or set(body) != {"sessions"} or not isinstance(body["sessions"], list):
        raise InvalidRequest('Request body must be {"sessions": [...]}')
    if len(body["sessions"]) > session_batch.MAX_BATCH:
        raise PayloadTooLarge(f"At most {session_batch.MAX_BATCH} sessions per call, got {len(body['sessions'])}")
    return body["sessions"]


@router.post(
    "/v1/sessions/batch",
    response_model=Data[SessionBatchResult],
    openapi_extra=body_of(SessionBatchBody),
    responses=error_responses(413),
)
async def create_sessions(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """Create up to 10,000 sessions in one call. Each item is answered on its own (`created`, `exists` for an
    identical stored session, or `failed` with the error the single route would give); the call itself fails
    only for a body that is not `{"sessions": [...]}`."""

    def authorize() -> None:  # who, and for which org, before the body is read: 401 and 404 first, as on every route
        with ctx.acting(write=True):
            pass

    await run_in_threadpool(authorize)
    raws = _batch_items(await read_json(request))
    items = [_batch_item(raw) for raw in raws]

    def run() -> list[session_batch.Outcome]:
        with ctx.acting(write=True) as c:
            return session_batch.create_sessions(c.conn, c.org_id, items)

    outcomes = await run_in_threadpool(run)
    out = []
    for raw, outcome in zip(raws, outcomes, strict=True):
        sid = raw.get("session_id") if isinstance(raw, dict) else None
        entry: dict[str, Any] = {"session_id": sid if isinstance(sid, str) else None, "status": outcome.status}
        if outcome.error is not None:
            entry["error"] = {"error_code": outcome.error.error_code, "message": outcome.error.message}
        out.append(entry)
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("created", "exists", "failed")}
    payload = {"created": counts["created"], "existing": counts["exists"], "failed": counts["failed"], "items": out}
    return wire.respond(wire.data(payload))


@router.get("/v1/sessions/{session_id}", response_model=Data[SessionRecord])
def get_session(session_id: str, ctx: RequestContext = Depends(request_context)) -> Response:
    with ctx.acting(write=False) as c:
        row = catalog.get_session(c.conn, c.org_id, session_id)
    return wire.respond(wire.data(session_record(row)))


@router.put("/v1/sessions/{session_id}", response_model=Data[SessionRecord], responses=error_responses(413))
def update_session(
    session_id: str, body: UpdateSessionBody, ctx: RequestContext = Depends(request_context)
) -> Response:
    with ctx.acting(write=True) as c:
        row = catalog.update_session(
            c.conn,
            c.org_id,
            session_id,
            start_ns=body.start_time_ns,
            end_ns=body.end_time_ns,
            device_ids=body.device_ids,
        )
    return wire.respond(wire.data(session_record(row)))
