"""Prometheus series of the service. Names are a contract: dashboards and alerts rely on them.

HTTP series are counted in the API process that served the request. Every other series is derived at scrape time
from PostgreSQL (so it counts the work of every worker, anywhere, and survives restarts) with one statement over
small tables: the sharded counters, the active jobs (partial index) and the worker heartbeats. Never a COUNT over
metric values or job history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest import counters, heartbeats, rollups
from ingest.jobs import LANES, TERMINAL_STATES, backlog_by_lane

log = structlog.get_logger(__name__)

PREFIX = "metrics_ingest"
SERIES = (
    f"{PREFIX}_http_requests_total",
    f"{PREFIX}_http_request_duration_seconds",
    f"{PREFIX}_jobs_total",
    f"{PREFIX}_items_total",
    f"{PREFIX}_backlog_items",
    f"{PREFIX}_job_duration_seconds",
    f"{PREFIX}_workers_alive",
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED_ROUTE = "<unmatched>"

disable_created_metrics()  # no `*_created` samples: they double the exposition and no dashboard uses them

registry = CollectorRegistry(auto_describe=True)
http_requests = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests served by this API process, by route template and status.",
    ["method", "route", "status"],
    registry=registry,
)
http_duration = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to serve HTTP requests in this API process, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=registry,
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    http_requests.labels(method, route, str(status)).inc()
    http_duration.labels(method, route).observe(seconds)


def snapshot(conn: Connection, worker_alive_s: float) -> tuple[counters.Totals, dict[str, float], int, int]:
    """(work counters, backlog per lane, workers alive, rollup dirty rows) over small tables, bounded by a
    statement timeout."""
    conn.execute(text("SET LOCAL statement_timeout = 2000"))
    backlog = {lane: float(b.items) for lane, b in backlog_by_lane(conn).items()}
    return (
        counters.read_totals(conn),
        backlog,
        heartbeats.alive_count(conn, worker_alive_s),
        rollups.backlog(conn),
    )


def database_families(
    totals: counters.Totals, backlog: dict[str, float], workers: int, rollup_backlog: int = 0
) -> list[Metric]:
    lanes = sorted(set(LANES) | totals.lanes() | set(backlog))
    jobs = CounterMetricFamily(
        f"{PREFIX}_jobs", "Jobs that reached each terminal state (all workers).", labels=["lane", "state"]
    )
    items = CounterMetricFamily(
        f"{PREFIX}_items", "Items processed by the workers, by outcome (all workers).", labels=["lane", "outcome"]
    )
    backlog_g = GaugeMetricFamily(f"{PREFIX}_backlog_items", "Items accepted and not yet processed.", labels=["lane"])
    duration = HistogramMetricFamily(
        f"{PREFIX}_job_duration_seconds", "Accept-to-finish time of jobs.", labels=["lane"]
    )
    states = sorted(set(TERMINAL_STATES) | totals.labels(counters.JOBS))
    for lane in lanes:
        for state in states:
            jobs.add_metric([lane, state], totals.get(counters.JOBS, lane, state))
        for outcome in counters.OUTCOMES:
            items.add_metric([lane, outcome], totals.get(counters.ITEMS, lane, outcome))
        backlog_g.add_metric([lane], backlog.get(lane, 0.0))
        cumulative = 0.0
        buckets = []
        for bound in counters.DURATION_BUCKETS:
            label = counters.bucket_label(bound)
            cumulative += totals.get(counters.DURATION_BUCKET, lane, label)
            buckets.append((label, cumulative))
        duration.add_metric([lane], buckets, sum_value=totals.get(counters.DURATION_SUM, lane))
    alive = GaugeMetricFamily(f"{PREFIX}_workers_alive", "Workers with a recent heartbeat.", value=workers)
    dirty = GaugeMetricFamily(
        f"{PREFIX}_rollup_dirty_rows",
        "Marks of (metric, UTC day) rollups not yet recomputed (those days are aggregated from raw rows).",
        value=rollup_backlog,
    )
    return [jobs, items, backlog_g, duration, alive, dirty]


class DatabaseCollector(Collector):
    """Reads the database-derived series at each scrape. If the database is away, those series are left out of
    that scrape (Prometheus marks them stale) rather than failing the HTTP series too."""

    def __init__(self, connect: Callable[[], AbstractContextManager[Connection]], worker_alive_s: float) -> None:
        self.connect = connect
        self.worker_alive_s = worker_alive_s

    def describe(self) -> list[Metric]:
        return []  # unknown until scraped; also keeps registration from calling collect()

    def collect(self) -> Iterator[Metric]:
        try:
            with self.connect() as conn:
                found = snapshot(conn, self.worker_alive_s)
        except Exception as err:
            log.warning("metrics.database_unavailable", error=str(err).splitlines()[0] if str(err) else repr(err))
            return
        yield from database_families(*found)


def exposition(connect: Callable[[], AbstractContextManager[Connection]], worker_alive_s: float) -> bytes:
    """The Prometheus text exposition: this process's HTTP series plus the database-derived ones."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_Forward(registry))
    scrape.register(DatabaseCollector(connect, worker_alive_s))
    return generate_latest(scrape)


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source.collect()
