"""Native routes for devices and sessions, so pipelines can register them as they go."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api_shim import wire
from api_shim.deps import RequestContext, request_context
from api_shim.models import (
    CreateDeviceBody,
    CreateSessionBody,
    Data,
    DeviceRecord,
    SessionRecord,
    UpdateSessionBody,
    error_responses,
)
from ingest import catalog

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
