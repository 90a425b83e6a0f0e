"""Native routes for devices and sessions, so pipelines can register them as they go."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api_shim import wire
from api_shim.deps import RequestContext, request_context
from ingest import catalog

router = APIRouter(tags=["sessions and devices"])

Id = Field(min_length=1, max_length=255, pattern=r"^[^\s/]+$")
NS = Field(ge=0, le=2**63 - 1)


class CreateDeviceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: str = Id


class CreateSessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str = Id
    start_time_ns: int = NS
    end_time_ns: int = NS
    device_ids: list[str] = Field(default_factory=list, max_length=1000)


class UpdateSessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start_time_ns: int | None = Field(default=None, ge=0, le=2**63 - 1)
    end_time_ns: int | None = Field(default=None, ge=0, le=2**63 - 1)
    device_ids: list[str] | None = Field(default=None, max_length=1000)


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


@router.post("/v1/devices", status_code=201)
def create_device(body: CreateDeviceBody, ctx: RequestContext = Depends(request_context)) -> dict:
    with ctx.acting(write=True) as c:
        row = catalog.create_device(c.conn, c.org_id, body.device_id)
    return wire.data(device_record(row))


@router.get("/v1/devices/{device_id}")
def get_device(device_id: str, ctx: RequestContext = Depends(request_context)) -> dict:
    with ctx.acting(write=False) as c:
        row = catalog.get_device(c.conn, c.org_id, device_id)
    return wire.data(device_record(row))


@router.post("/v1/sessions", status_code=201)
def create_session(body: CreateSessionBody, ctx: RequestContext = Depends(request_context)) -> dict:
    with ctx.acting(write=True) as c:
        row = catalog.create_session(
            c.conn, c.org_id, body.session_id, body.start_time_ns, body.end_time_ns, body.device_ids
        )
    return wire.data(session_record(row))


@router.get("/v1/sessions/{session_id}")
def get_session(session_id: str, ctx: RequestContext = Depends(request_context)) -> dict:
    with ctx.acting(write=False) as c:
        row = catalog.get_session(c.conn, c.org_id, session_id)
    return wire.data(session_record(row))


@router.put("/v1/sessions/{session_id}")
def update_session(session_id: str, body: UpdateSessionBody, ctx: RequestContext = Depends(request_context)) -> dict:
    with ctx.acting(write=True) as c:
        row = catalog.update_session(
            c.conn,
            c.org_id,
            session_id,
            start_ns=body.start_time_ns,
            end_ns=body.end_time_ns,
            device_ids=body.device_ids,
        )
    return wire.data(session_record(row))
