"""Property test: aggregates and query `total_count` served from the rollups (ingest/reads.py: cells of clean hours
plus raw rows for the rest) equal the raw-row computation, on random data changed through the real write paths
(the worker's upsert, re-publishes, session time changes, deleted definitions) and refreshed partially (some days
left dirty, some recomputed before the next change). The shared stack's worker sweeps meanwhile as in production.

Every period x every aggregation per example; zones with half- and quarter-hour offsets and DST; widened or not;
group_by device; device filters. count/min/max compare exactly, sum/mean with a relative tolerance of 1e-9 (the
summation order differs)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ingest import catalog, publish, reads, rollups
from ingest.db import transaction
from ingest.notset import NOT_SET
from tests.support.metric_rows import define

S = 1_000_000_000
M = 60 * S
H = 60 * M
D = 24 * H
ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Eucla", "America/St_Johns", "Europe/Berlin"]
PERIODS = ["daily", "weekly", "monthly", "quarterly", "yearly"]
AGGREGATIONS = ["sum", "mean", "max", "min", "count"]
DEVICES = [None, "d1", "d2", "d3"]
# Days around DST changes (Berlin: 2024-03-31, 2024-10-27), month, quarter and year ends.
ANCHORS = [date(2024, 3, 30), date(2024, 3, 31), date(2024, 6, 30), date(2024, 10, 27), date(2024, 12, 31)]
_ids = itertools.count()


def _ns(d: date) -> int:
    return (d - date(1970, 1, 1)).days * D


# Near a local midnight of one of the zones, on the hour, or anywhere in the day.
OFFSETS = [0, 1, -1, 30 * M, -30 * M, 45 * M, 15 * M, 5 * H + 30 * M, 5 * H + 45 * M, H, -H, 2 * H + 30 * M]
instants = st.builds(
    lambda anchor, days, offset, jitter: _ns(anchor) + days * D + offset + jitter,
    st.sampled_from(ANCHORS),
    st.integers(min_value=-2, max_value=2),
    st.sampled_from(OFFSETS),
    st.one_of(st.just(0), st.integers(min_value=0, max_value=D)),
)
values = st.one_of(st.integers(min_value=-400, max_value=400).map(lambda q: q / 4), st.floats(-1e6, 1e6))


@st.composite
def sessions(draw):
    end = draw(instants)
    return end - draw(st.sampled_from([0, 1, 30 * M, H, 3 * H, 2 * D])), end


@st.composite
def story(draw):
    """Sessions, two metrics, then a list of steps applied in order."""
    n_sessions = draw(st.integers(min_value=3, max_value=14))
    times = [draw(sessions()) for _ in range(n_sessions)]
    devices = [draw(st.sampled_from(DEVICES)) for _ in range(n_sessions)]
    refresh_step = st.tuples(
        st.just("refresh"), st.integers(min_value=1, max_value=6), st.integers(min_value=0, max_value=2)
    )
    publish_step = st.tuples(
        st.just("publish"),
        st.integers(min_value=0, max_value=1),
        st.lists(st.tuples(st.integers(0, n_sessions - 1), values), min_size=1, max_size=12),
    )
    steps = st.one_of(
        publish_step,
        publish_step,
        st.tuples(st.just("move"), st.integers(0, n_sessions - 1), sessions()),
        refresh_step,
        refresh_step,
        st.tuples(st.just("delete"), st.just(1), st.just(None)),
    )
    plan = [("publish", 0, [(i, draw(values)) for i in range(n_sessions)])]
    if draw(st.booleans()):
        plan.append(("publish", 1, [(i, draw(values)) for i in range(n_sessions) if i % 2]))
    if draw(st.booleans()):
        plan.append(("refresh", 10_000, 1))  # all clean before the changes
    plan += draw(st.lists(steps, max_size=6))
    return times, devices, plan


def device_filter():
    return st.one_of(
        st.just(NOT_SET), st.just(NOT_SET), st.none(), st.lists(st.sampled_from(["d1", "d2", "d3", "zz"]), unique=True)
    )


@st.composite
def windows(draw):
    start = draw(instants) - draw(st.sampled_from([0, 3 * D, 40 * D]))
    return start, start + draw(st.sampled_from([H, D, 3 * D, 20 * D, 100 * D, 400 * D])) + draw(
        st.sampled_from([0, 1, -1, 17 * M, 30 * M])
    )


class World:
    """The tenant's sessions and two metric definitions, changed through the service's own write functions."""

    def __init__(self, tenant, times: list[tuple[int, int]], devices: list[str | None]) -> None:
        self.tenant = tenant
        run = next(_ids)
        self.sessions = [f"ss_r{run}_{i}" for i in range(len(times))]
        self.times = list(times)
        self.devices = devices
        self.metrics = [define(tenant, f"roll.{run}.a"), define(tenant, f"roll.{run}.b")]
        self.deleted: set[int] = set()
        self.published = datetime(2026, 1, 1, tzinfo=UTC)
        with transaction() as conn:
            for sid, (start, end) in zip(self.sessions, times, strict=True):
                catalog.create_session(conn, tenant.org_id, sid, start, end, [])

    def publish(self, metric: int, entries: list[tuple[int, float]]) -> None:
        if metric in self.deleted:
            return
        self.published += timedelta(seconds=1)
        ctx = publish.JobContext(self.tenant.org_id, self.tenant.principal, None, self.published, 255)
        latest = {i: v for i, v in entries}
        rows = sorted(
            (self.metrics[metric], self.sessions[i], v, self.devices[i], *self.times[i]) for i, v in latest.items()
        )
        with transaction() as conn:
            publish.upsert_values(conn, ctx, rows)

    def move(self, session: int, times: tuple[int, int]) -> None:
        self.times[session] = times
        with transaction() as conn:
            catalog.update_session(conn, self.tenant.org_id, self.sessions[session], start_ns=times[0], end_ns=times[1])

    def delete(self, metric: int) -> None:
        self.deleted.add(metric)
        self.tenant.sql("DELETE FROM metric_definitions WHERE metric_id = %s", self.metrics[metric])

    def apply(self, step: tuple) -> None:
        kind, a, b = step
        if kind == "publish":
            self.publish(a, b)
        elif kind == "move":
            self.move(a, b)
        elif kind == "delete":
            self.delete(a)
        else:
            for _ in range(b):
                rollups.refresh_once(pairs=a)


def _compare(got: reads.AggregateResult, expected: reads.AggregateResult, aggregation: str) -> None:
    assert (got.total_groups, got.groups_truncated) == (expected.total_groups, expected.groups_truncated)
    assert [(b.start_ns, b.end_ns, b.total, b.group_key) for b in got.buckets] == [
        (b.start_ns, b.end_ns, b.total, b.group_key) for b in expected.buckets
    ]
    for g, e in zip(got.buckets, expected.buckets, strict=True):
        if aggregation in ("sum", "mean"):
            assert math.isclose(g.value, e.value, rel_tol=1e-9, abs_tol=1e-9), (g, e)
        else:
            assert g.value == e.value, (g, e)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    world=story(),
    queries=st.lists(
        st.tuples(
            windows(),
            st.sampled_from(ZONES),
            st.sampled_from(["start_time", "end_time"]),
            st.booleans(),
            st.booleans(),
            device_filter(),
            st.integers(min_value=0, max_value=6),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_rollups_equal_raw_rows(tenant, world, queries):
    times, devices, plan = world
    w = World(tenant, times, devices)
    for step in plan:
        w.apply(step)
    live = [m for i, m in enumerate(w.metrics) if i not in w.deleted]
    for metric_id in live:
        cells, dirty = tenant.sql(
            "SELECT (SELECT count(*) FROM metric_rollups WHERE metric_id = %s), "
            "(SELECT count(*) FROM rollup_dirty WHERE metric_id = %s)",
            metric_id,
            metric_id,
        )[0]
        event(f"cells: {'yes' if cells else 'no'}, dirty days: {'yes' if dirty else 'no'}")
    for (lo, hi), zone, time_filter, widen, grouped, device_ids, week_start in queries:
        for metric_id in live:
            filters = reads.Filters(
                time_column=reads.TIME_COLUMNS[time_filter],
                device_ids=device_ids,
                group_by="device.device_id" if grouped else None,
                group_expr="v.device_id" if grouped else None,
            )
            metric = {"metric_id": metric_id, "name": "x", "unit": None, "org_id": tenant.org_id}
            with transaction() as conn:
                for period in PERIODS:
                    for aggregation in AGGREGATIONS:
                        spec = reads.AggregateSpec(
                            metric, filters, period, aggregation, lo, hi, ZoneInfo(zone), week_start, widen
                        )
                        _compare(reads.aggregate_combined(conn, spec), reads.aggregate_raw(conn, spec), aggregation)
                ungrouped = reads.Filters(time_column=filters.time_column, device_ids=device_ids)
                where, params = reads.where_sql(metric_id, ungrouped, lo, hi)
                assert reads.count_combined(conn, metric_id, ungrouped, lo, hi) == reads.count_raw(conn, where, params)
    rollups.refresh_once(pairs=10_000)  # leave little behind for the next example
