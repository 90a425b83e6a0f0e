"""Native job API: submit publish jobs (JSON or NDJSON), poll their state, page through per-item results."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api_shim import wire
from api_shim.bodies import is_ndjson, read_json, spool_body
from api_shim.deps import PageToken, RequestContext, request_context
from api_shim.models import Data, JobBody, JobItem, JobRecord, Page, error_responses
from api_shim.openapi import body_of
from api_shim.submit import accept
from ingest import jobs, results
from ingest.config import get_settings
from ingest.db import transaction
from ingest.errors import InvalidRequest
from ingest.jobs import LANES
from ingest.payload import Limits, parse_job_body, parse_ndjson_lines

router = APIRouter(tags=["jobs"], responses=error_responses(400, 401, 404, 503))


def _item_record(item: results.Item) -> dict:
    return {
        "request_index": item.request_index,
        "entry_index": item.entry_index,
        "session_id": item.session_id,
        "name": item.name,
        "status": item.status,
        "record": wire.metric_record(item.record) if item.record else None,
        "error": wire.item_error(item.error) if item.error else None,
    }


@router.post(
    "/v1/metrics/jobs",
    status_code=202,
    response_model=Data[JobRecord],
    responses={
        200: {"model": Data[JobRecord], "description": "The job already accepted under this Idempotency-Key"},
        **error_responses(409, 413, 429),
    },
    openapi_extra=body_of(JobBody, ndjson=True),
)
async def submit_job(
    request: Request,
    ctx: RequestContext = Depends(request_context),
    idempotency_key: str | None = Header(default=None, max_length=255),
    lane: Literal[LANES] | None = Query(default=None),  # type: ignore[valid-type]
) -> Response:
    settings = get_settings()
    limits = Limits.from_settings(settings)
    if is_ndjson(request.headers.get("content-type")):
        spool, digest = await spool_body(request)

        def run():
            with spool:
                requests = parse_ndjson_lines(spool, limits)
                # NDJSON is for large uploads: it goes to the bulk lane unless asked otherwise.
                return accept(
                    ctx,
                    requests,
                    source="jobs",
                    lane=lane or "bulk",
                    incoming_items=0,
                    idempotency_key=idempotency_key,
                    digest=digest,
                )
    else:
        body = await read_json(request)
        requests = parse_job_body(body, limits, settings.max_requests_per_job)
        items = sum(len(r.entries) for r in requests)
        digest = wire.body_digest(body)
        chosen = lane or ("interactive" if items <= settings.interactive_max_items else "bulk")

        def run():
            return accept(
                ctx,
                requests,
                source="jobs",
                lane=chosen,
                incoming_items=items,
                idempotency_key=idempotency_key,
                digest=digest,
            )

    job, org_id = await run_in_threadpool(run)
    with transaction() as conn:
        row = jobs.get_job(conn, org_id, job.job_id)
    return wire.respond(wire.data(wire.job_record(row)), 200 if job.existing else 202)


@router.get("/v1/metrics/jobs", response_model=Data[Page[JobRecord]])
def list_jobs(
    page_token: str | None = PageToken,
    max_results: int = Query(default=100, ge=1, le=1000),
    ctx: RequestContext = Depends(request_context),
) -> Response:
    with ctx.acting(write=False) as c:
        after = None
        if page_token:
            pos = wire.decode_page_token(page_token, bound_to="jobs:" + c.org_id)
            if not (isinstance(pos.get("c"), str) and isinstance(pos.get("j"), str)):
                raise InvalidRequest("page_token is not a valid page token")
            after = (pos["c"], pos["j"])
        rows = jobs.list_jobs(c.conn, c.org_id, after, max_results)
    return wire.respond(
        wire.keyset_page(
            rows,
            max_results,
            lambda r: {"c": r["created"].isoformat(), "j": r["job_id"]},
            "jobs:" + c.org_id,
            wire.job_record,
        )
    )


@router.get("/v1/metrics/jobs/{job_id}", response_model=Data[JobRecord])
def get_job(job_id: str, ctx: RequestContext = Depends(request_context)) -> Response:
    with ctx.acting(write=False) as c:
        row = jobs.get_job(c.conn, c.org_id, job_id)
    return wire.respond(wire.data(wire.job_record(row)))


@router.get("/v1/metrics/jobs/{job_id}/results", response_model=Data[Page[JobItem]])
def job_results(
    job_id: str,
    status: Literal["failed", "succeeded"] | None = Query(default=None),
    page_token: str | None = PageToken,
    max_results: int | None = Query(default=None, ge=1, le=100_000),
    ctx: RequestContext = Depends(request_context),
) -> Response:
    limit = max_results or get_settings().job_results_page_size
    bound = f"{job_id}:{status or ''}"
    with ctx.acting(write=False) as c:
        jobs.get_job(c.conn, c.org_id, job_id)  # 404 for another org's job
        start = (0, 0)
        if page_token:
            pos = wire.decode_page_token(page_token, bound_to=bound)
            if not (isinstance(pos.get("s"), int) and isinstance(pos.get("o"), int)):
                raise InvalidRequest("page_token is not a valid page token")
            start = (pos["s"], pos["o"])
        items, nxt = results.page_of_items(c.conn, c.org_id, job_id, status=status, start=start, limit=limit)
    next_token = wire.encode_page_token({"s": nxt[0], "o": nxt[1]}, bound_to=bound) if nxt else None
    return wire.respond(wire.page([_item_record(i) for i in items], next_token))
