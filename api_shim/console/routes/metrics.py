"""A metric over time: its values (ingest.reads.query_page) or the 0.62 SDK's aggregates (ingest.reads.aggregate:
period, aggregation function, time zone, week start), charted, listed, and exported as CSV.

The page and its CSV export run the same read with the same explicit window, so the export holds exactly the values
shown. Without a window, the page shows the metric's whole time range and its links carry that range explicitly."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.engine import Connection

from api_shim.console import exports
from api_shim.console.errors import ConsoleRoute
from api_shim.console.instants import NS_PER_S, ceil_second, floor_second, format_instant, parse_instant
from api_shim.console.render import page, value_text
from api_shim.console.viewer import viewing
from api_shim.errors import status_of
from api_shim.wire import iso
from ingest import definitions, periods, reads
from ingest.errors import DomainError, InvalidRequest

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

MAX_POINTS = 500  # values (or buckets) one page shows; the window can be narrowed to see others
MAX_NAMES = 500
DEFAULT_SPAN_NS = 30 * 86_400 * NS_PER_S  # a metric with no values yet: the last 30 days
FIELD = {name: i for i, name in enumerate(reads.VALUE_FIELDS)}  # position of each field in a query page's rows
TIME_ZONES = (
    "UTC",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Helsinki",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


@dataclass
class MetricQuery:
    """The page's choices, as they come from its URL (every field optional but the name)."""

    name: str = ""
    start: str = ""
    end: str = ""
    time_filter: str = "end_time"
    period: str = ""  # empty: the values themselves, no aggregation
    aggregation: str = "mean"
    time_zone: str = "UTC"
    week_start: str = "monday"

    @classmethod
    def of(cls, request: Request) -> MetricQuery:
        q = request.query_params
        defaults = cls()
        return cls(**{f: (q.get(f) or "").strip() or getattr(defaults, f) for f in cls.__dataclass_fields__})

    @property
    def aggregated(self) -> bool:
        return bool(self.period)

    def link(self, path: str, start_ns: int, end_ns: int) -> str:
        """`path` with these choices and an explicit window (a deep link that shows the same values later)."""
        params = {"name": self.name, "start": format_instant(start_ns), "end": format_instant(end_ns)}
        if self.time_filter != "end_time":
            params["time_filter"] = self.time_filter
        if self.aggregated:
            params.update(period=self.period, aggregation=self.aggregation, time_zone=self.time_zone)
            if self.period == "weekly":
                params["week_start"] = self.week_start
        return f"{path}?{urlencode(params)}"


@dataclass
class ValueRow:
    time_ns: int
    session_id: str
    device_id: str | None
    value: float
    published: datetime


@dataclass
class BucketRow:
    start_ns: int
    end_ns: int
    count: int
    value: float


@dataclass
class MetricResult:
    metric: dict
    start_ns: int
    end_ns: int
    total: int  # values (or buckets) in the window
    values: list[ValueRow] = field(default_factory=list)
    buckets: list[BucketRow] = field(default_factory=list)

    @property
    def shown(self) -> int:
        return len(self.values) or len(self.buckets)


def window(conn: Connection, q: MetricQuery, metric: dict, column: str) -> tuple[int, int]:
    if q.start and q.end:
        start_ns, end_ns = parse_instant(q.start, "start"), parse_instant(q.end, "end")
    else:
        extent = reads.time_extent(conn, metric["metric_id"], column)
        if extent is not None:
            lo, hi = floor_second(extent[0]), ceil_second(extent[1] + 1)
        else:
            hi = ceil_second(time.time_ns())
            lo = hi - DEFAULT_SPAN_NS
        start_ns = parse_instant(q.start, "start") if q.start else lo
        end_ns = parse_instant(q.end, "end") if q.end else max(hi, start_ns + NS_PER_S)
    if end_ns <= start_ns:
        raise InvalidRequest("end must be after start")
    return start_ns, end_ns


def read_metric(conn: Connection, org_id: str, q: MetricQuery) -> MetricResult:
    """What the page shows for `q`; the CSV export calls this too."""
    metric = reads.resolve_metric(conn, org_id, q.name)
    filters = reads.Filters(time_column=reads.time_column(q.time_filter))
    start_ns, end_ns = window(conn, q, metric, filters.time_column)
    if q.aggregated:
        aggregate = reads.AggregateSpec(
            metric,
            filters,
            reads.parse_period(q.period),
            reads.parse_aggregation(q.aggregation),
            start_ns,
            end_ns,
            periods.resolve_zone(q.time_zone),
            periods.weekday_index(q.week_start),
        )
        buckets = reads.aggregate(conn, aggregate).buckets
        shown = [BucketRow(b.start_ns, b.end_ns, b.total, b.value) for b in buckets[:MAX_POINTS]]
        return MetricResult(metric, start_ns, end_ns, len(buckets), buckets=shown)
    spec = reads.QuerySpec(metric, filters, start_ns, end_ns, MAX_POINTS, "time", False)
    found = reads.query_page(conn, spec, None)
    at = FIELD[filters.time_column]
    sid, device, value, published = FIELD["session_id"], FIELD["device_id"], FIELD["value"], FIELD["published"]
    values = [ValueRow(r[at], r[sid], r[device], r[value], r[published]) for r in found.items]
    return MetricResult(metric, start_ns, end_ns, found.total_count, values=values)


def chart_of(q: MetricQuery, result: MetricResult) -> dict:
    if q.aggregated:
        return {
            "kind": "time",
            "bars": True,
            "tz": q.time_zone,
            "label": f"{q.aggregation} of {q.name} ({q.period})",
            "x": [b.start_ns / NS_PER_S for b in result.buckets],
            "y": [b.value for b in result.buckets],
        }
    return {
        "kind": "time",
        "bars": False,
        "tz": "Etc/UTC",
        "label": q.name,
        "x": [r.time_ns / NS_PER_S for r in result.values],
        "y": [r.value for r in result.values],
    }


def metric_names(conn: Connection, org_id: str) -> list[str]:
    return [d["name"] for d in definitions.list_definitions(conn, org_id, None, MAX_NAMES)[:MAX_NAMES]]


@router.get("/console/metrics")
def metrics_page(request: Request) -> Response:
    q = MetricQuery.of(request)
    result, error, status = None, None, 200
    with viewing(request) as v:
        names = metric_names(v.conn, v.org_id)
        if q.name:
            try:
                result = read_metric(v.conn, v.org_id, q)
            except DomainError as err:  # shown above the form the user can correct
                error, status = err, status_of(err)
    context: dict = {"viewer": v.session, "q": q, "names": names, "zones": TIME_ZONES, "error": error}
    context.update(
        result=result,
        periods=periods.PERIODS,
        aggregations=reads.AGGREGATIONS,
        weekdays=periods.WEEKDAYS,
    )
    if result is not None:
        context.update(
            chart=chart_of(q, result),
            csv_link=q.link("/console/metrics.csv", result.start_ns, result.end_ns),
            deep_link=q.link("/console/metrics", result.start_ns, result.end_ns),
        )
    return page("metrics.html", status=status, **context)


def metric_csv_lines(q: MetricQuery, result: MetricResult):
    if q.aggregated:
        return exports.csv_lines(
            ["bucket_start", "bucket_end", "start_ns", "end_ns", "count", "value"],
            (
                [format_instant(b.start_ns), format_instant(b.end_ns), b.start_ns, b.end_ns, b.count]
                + [value_text(b.value)]
                for b in result.buckets
            ),
        )
    return exports.csv_lines(
        ["time", "time_ns", "session_id", "device_id", "value", "published"],
        (
            [
                format_instant(r.time_ns),
                r.time_ns,
                exports.csv_text(r.session_id),
                exports.csv_text(r.device_id),
                value_text(r.value),
                iso(r.published),
            ]
            for r in result.values
        ),
    )


@router.get("/console/metrics.csv")
def metrics_csv(request: Request) -> Response:
    q = MetricQuery.of(request)
    if not q.name:
        raise InvalidRequest("name is required")
    with viewing(request) as v:
        result = read_metric(v.conn, v.org_id, q)
    filename = "".join(c if c.isalnum() or c in "-._" else "_" for c in q.name)[:100] or "metric"
    return StreamingResponse(
        metric_csv_lines(q, result),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
