"""Roboto `Metric` routes: publish (queued, answered when a worker finished it) and get_by_session."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api_shim import wire
from api_shim.bodies import read_json
from api_shim.deps import RequestContext, context_of, context_openapi, request_context
from api_shim.models import (
    BatchPublishResult,
    Data,
    JobRecord,
    MetricRecord,
    PublishMetricsRequest,
    PublishResult,
    error_responses,
)
from api_shim.openapi import body_of
from api_shim.submit import accept, wait_for
from ingest import jobs, results, values
from ingest.config import get_settings
from ingest.db import transaction
from ingest.errors import DomainError, IllegalArgument, InvalidRequest, NotFound, ServiceUnavailable
from ingest.payload import Limits, parse_request

router = APIRouter(tags=["metrics"], responses=error_responses(400, 401, 404, 503))

REQUEST_ERRORS = {cls.error_code: cls for cls in (NotFound, InvalidRequest, IllegalArgument)}


@router.post(
    "/v1/metrics",
    response_model=Data[PublishResult | BatchPublishResult],
    responses={
        202: {"model": Data[JobRecord], "description": "With `Prefer: respond-async`"},
        **error_responses(413, 429),
    },
    openapi_extra=body_of(PublishMetricsRequest) | context_openapi("prefer"),
)
async def publish(request: Request):
    settings = get_settings()
    ctx = context_of(request)
    prefer = request.headers.get("prefer")
    body = await read_json(request)
    publish_request = parse_request(body, Limits.from_settings(settings))
    respond_async = bool(prefer and "respond-async" in prefer.lower())
    return await run_in_threadpool(_publish, ctx, publish_request, respond_async)


def _publish(ctx: RequestContext, publish_request, respond_async: bool):
    settings = get_settings()
    job, org_id = accept(
        ctx,
        [publish_request],
        source="publish",
        lane="interactive",
        incoming_items=len(publish_request.entries),
        wait=not respond_async,
    )
    if respond_async:
        with transaction() as conn:
            row = jobs.get_job(conn, org_id, job.job_id)
        return wire.respond(wire.data(wire.job_record(row)), 202)
    finished = wait_for(job.job_id, org_id, settings.publish_wait_s)
    if finished is None:
        raise ServiceUnavailable(
            f"Publish job {job.job_id} is queued but no worker finished it in time; it will still complete. "
            "Retrying is safe (publish is an upsert).",
            retry_after_s=2,
        )
    state, outcomes = finished
    if state == "failed":  # a job-level failure (retries exhausted): transient, so the SDK may retry
        with transaction() as conn:
            row = jobs.get_job(conn, org_id, job.job_id)
        raise ServiceUnavailable(f"Publish job {job.job_id} failed: {row['error_message']}", retry_after_s=2)
    if outcomes is None:  # too large to ride on the notification, or woken by the safety-net poll
        with transaction() as conn:
            outcomes = jobs.chunk_rows(conn, job.job_id, 0, 1, with_payload=False)[0]["outcomes"]
    request_error = ((outcomes or {}).get("req") or {}).get("0")
    if request_error:  # whole-request failure: unknown session, device inference
        code, message = request_error
        raise REQUEST_ERRORS.get(code, DomainError)(message)
    items = list(results.items_of(0, 0, outcomes, [publish_request]))
    with transaction() as conn:
        results.attach_records(conn, org_id, items)
    return wire.respond(wire.publish_response(items, ctx.api_version))


@router.get("/v1/metrics/session/{session_id}/", response_model=Data[list[MetricRecord]])
def get_by_session(session_id: str, ctx: RequestContext = Depends(request_context)) -> Response:
    from ingest.catalog import get_session

    with ctx.acting(write=False) as c:
        get_session(c.conn, c.org_id, session_id)  # 404 for an unknown session
        rows = values.records_for_session(c.conn, c.org_id, session_id, get_settings().max_results)
    return wire.respond(wire.data([wire.metric_record(r) for r in rows]))
