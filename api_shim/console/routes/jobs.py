"""Jobs: the org's jobs (live), one job's progress (live) with its failures paged, and downloads of all failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from api_shim.console import exports
from api_shim.console.errors import ConsoleRoute
from api_shim.console.params import jobs_cursor, parse_jobs_cursor, parse_position
from api_shim.console.render import page
from api_shim.console.viewer import Viewer, viewing
from api_shim.console.views import FailureRow, JobView, position_text
from ingest import jobs, results

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

JOBS_PAGE = 50
FAILURES_PAGE = 50


@dataclass
class JobsListing:
    jobs: list[JobView]
    before: str | None  # this page's position (None: the newest jobs)
    next: str | None  # the next (older) page's position


def jobs_listing(v: Viewer, before: str | None) -> JobsListing:
    rows = jobs.list_jobs(v.conn, v.org_id, parse_jobs_cursor(before) if before else None, JOBS_PAGE)
    older = jobs_cursor(rows[JOBS_PAGE - 1]) if len(rows) > JOBS_PAGE else None
    now = datetime.now(UTC)
    return JobsListing([JobView.of(r, now) for r in rows[:JOBS_PAGE]], before or None, older)


@dataclass
class JobDetail:
    job: JobView
    failures: list[FailureRow]
    start: str | None  # this failures page's position (None: the first)
    next: str | None


def job_detail(v: Viewer, job_id: str, start: str | None) -> JobDetail:
    job = JobView.of(jobs.get_job(v.conn, v.org_id, job_id))
    position = parse_position(start) if start else (0, 0)
    items, after = results.page_of_items(v.conn, v.org_id, job_id, status="failed", start=position, limit=FAILURES_PAGE)
    return JobDetail(job, [FailureRow.of(i) for i in items], start or None, position_text(after) if after else None)


@router.get("/console/jobs")
def jobs_page(request: Request, before: str | None = Query(default=None)) -> Response:
    with viewing(request) as v:
        listing = jobs_listing(v, before)
    return page("jobs.html", viewer=v.session, listing=listing)


@router.get("/console/jobs/table")
def jobs_table(request: Request, before: str | None = Query(default=None)) -> Response:
    """The live part of the jobs page, polled by htmx."""
    with viewing(request) as v:
        listing = jobs_listing(v, before)
    return page("_jobs_table.html", listing=listing)


@router.get("/console/jobs/{job_id}")
def job_page(request: Request, job_id: str, start: str | None = Query(default=None, alias="from")) -> Response:
    with viewing(request) as v:
        detail = job_detail(v, job_id, start)
    return page("job.html", viewer=v.session, detail=detail)


@router.get("/console/jobs/{job_id}/live")
def job_live(request: Request, job_id: str, start: str | None = Query(default=None, alias="from")) -> Response:
    """The live part of a job's page, polled by htmx until the job reaches a final state."""
    with viewing(request) as v:
        detail = job_detail(v, job_id, start)
    return page("_job_live.html", detail=detail)


def _download(request: Request, job_id: str, lines, extension: str, media_type: str) -> Response:
    with viewing(request) as v:
        jobs.get_job(v.conn, v.org_id, job_id)  # another org's job: 404 before anything is sent
    return StreamingResponse(
        lines(job_id),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{job_id}-failures.{extension}"'},
    )


@router.get("/console/jobs/{job_id}/failures.csv")
def failures_csv(request: Request, job_id: str) -> Response:
    return _download(request, job_id, exports.failures_csv, "csv", "text/csv; charset=utf-8")


@router.get("/console/jobs/{job_id}/failures.ndjson")
def failures_ndjson(request: Request, job_id: str) -> Response:
    return _download(request, job_id, exports.failures_ndjson, "ndjson", "application/x-ndjson")
