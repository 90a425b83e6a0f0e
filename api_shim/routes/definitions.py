"""Roboto `MetricDefinition` routes: create, get, list per org, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api_shim import wire
from api_shim.deps import PageToken, RequestContext, request_context
from api_shim.models import (
    CreateDefinitionBody,
    Data,
    MetricDefinitionRecord,
    Page,
    UpdateDefinitionBody,
    error_responses,
)
from ingest import definitions
from ingest.config import get_settings
from ingest.errors import InvalidRequest

router = APIRouter(tags=["metric definitions"], responses=error_responses(400, 401, 404, 503))


@router.post(
    "/v1/metrics/definition/", response_model=Data[MetricDefinitionRecord], responses=error_responses(409, 413)
)
def create_definition(body: CreateDefinitionBody, ctx: RequestContext = Depends(request_context)) -> Response:
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
    return wire.respond(wire.data(wire.definition_record(row)))


@router.get("/v1/metrics/definitions/", response_model=Data[Page[MetricDefinitionRecord]])
def list_definitions(
    page_token: str | None = PageToken,
    max_results: int | None = Query(default=None, ge=1, le=10_000),
    ctx: RequestContext = Depends(request_context),
) -> Response:
    limit = max_results or get_settings().definitions_page_size
    with ctx.acting(write=False) as c:
        after = None
        if page_token:
            position = wire.decode_page_token(page_token, bound_to=c.org_id)
            after = position.get("after")
            if not isinstance(after, str):
                raise InvalidRequest("page_token is not a valid page token")
        rows = definitions.list_definitions(c.conn, c.org_id, after, limit)
    return wire.respond(wire.keyset_page(rows, limit, lambda r: {"after": r["name"]}, c.org_id, wire.definition_record))


@router.get("/v1/metrics/definition/{name:path}", response_model=Data[MetricDefinitionRecord])
def get_definition(name: str, ctx: RequestContext = Depends(request_context)) -> Response:
    with ctx.acting(write=False) as c:
        row = definitions.get_definition(c.conn, c.org_id, name)
    return wire.respond(wire.data(wire.definition_record(row)))


@router.put(
    "/v1/metrics/definition/{name:path}", response_model=Data[MetricDefinitionRecord], responses=error_responses(413)
)
def update_definition(
    name: str, body: UpdateDefinitionBody, ctx: RequestContext = Depends(request_context)
) -> Response:
    changes: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set}
    with ctx.acting(write=False) as c:
        row = definitions.update_definition(c.conn, c.org_id, name, c.principal.principal, **changes)
    return wire.respond(wire.data(wire.definition_record(row)))


@router.delete("/v1/metrics/definition/{name:path}", response_model=Data[None])
def delete_definition(name: str, ctx: RequestContext = Depends(request_context)) -> Response:
    with ctx.acting(write=False) as c:
        definitions.delete_definition(c.conn, c.org_id, name)
    return wire.respond(wire.data(None))
