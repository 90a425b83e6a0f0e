"""Roboto `MetricDefinition` routes: create, get, list per org, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api_shim import wire
from api_shim.deps import RequestContext, request_context
from ingest import definitions
from ingest.config import get_settings
from ingest.errors import InvalidRequest

router = APIRouter(tags=["metric definitions"])


class CreateDefinitionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(max_length=1000)
    description: str | None = None
    unit: str | None = None


class UpdateDefinitionBody(BaseModel):
    """Absent key = leave unchanged; null = clear; string = set."""

    model_config = ConfigDict(extra="ignore")
    description: str | None = None
    unit: str | None = None


@router.post("/v1/metrics/definition/", status_code=200)
def create_definition(body: CreateDefinitionBody, ctx: RequestContext = Depends(request_context)) -> dict:
    with ctx.acting(write=True) as c:
        row = definitions.create_definition(
            c.conn,
            c.org_id,
            body.name,
            body.description,
            body.unit,
            c.principal.principal,
            max_name_length=get_settings().max_name_length,
        )
    return wire.data(wire.definition_record(row))


@router.get("/v1/metrics/definitions/")
def list_definitions(
    page_token: str | None = Query(default=None, max_length=4096),
    max_results: int | None = Query(default=None, ge=1, le=10_000),
    ctx: RequestContext = Depends(request_context),
) -> dict:
    limit = max_results or get_settings().definitions_page_size
    with ctx.acting(write=False) as c:
        after = None
        if page_token:
            position = wire.decode_page_token(page_token, bound_to=c.org_id)
            after = position.get("after")
            if not isinstance(after, str):
                raise InvalidRequest("page_token is not a valid page token")
        rows = definitions.list_definitions(c.conn, c.org_id, after, limit)
    return wire.keyset_page(rows, limit, lambda r: {"after": r["name"]}, c.org_id, wire.definition_record)


@router.get("/v1/metrics/definition/{name:path}")
def get_definition(name: str, ctx: RequestContext = Depends(request_context)) -> dict:
    with ctx.acting(write=False) as c:
        row = definitions.get_definition(c.conn, c.org_id, name)
    return wire.data(wire.definition_record(row))


@router.put("/v1/metrics/definition/{name:path}")
def update_definition(name: str, body: UpdateDefinitionBody, ctx: RequestContext = Depends(request_context)) -> dict:
    changes: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set}
    with ctx.acting(write=False) as c:
        row = definitions.update_definition(c.conn, c.org_id, name, c.principal.principal, **changes)
    return wire.data(wire.definition_record(row))


@router.delete("/v1/metrics/definition/{name:path}")
def delete_definition(name: str, ctx: RequestContext = Depends(request_context)) -> dict:
    with ctx.acting(write=False) as c:
        definitions.delete_definition(c.conn, c.org_id, name)
    return wire.data(None)
