"""Property test: POST /v1/metrics/aggregate equals a plain-Python bucketing of the same rows (every period and
aggregation, UTC and DST zones, week starts, widened or not, null filters, group_by device, empty windows)."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.test_query_properties import (
    DEVICES,
    INVOCATIONS,
    rows_around,
    subset_filter,
    window_lengths,
    window_starts,
)
from tests.support.metric_rows import Row, define, insert
from tests.unit.test_periods import ref_bounds

S = 1_000_000_000
H = 3600 * S
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_names = itertools.count()


def reference(rows: list[Row], q: dict) -> list[tuple]:
    zone = ZoneInfo(q["time_zone"])
    ws = WEEKDAYS.index(q["week_start"])
    period = q["period"]
    lo, hi = q["start_time_ns"], q["end_time_ns"]
    if hi <= lo:
        return []
    if q["widen_to_whole_periods"]:
        lo, hi = ref_bounds(lo, period, zone, ws)[0], ref_bounds(hi - 1, period, zone, ws)[1]
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        t = r.end_ns if q["time_filter"] == "end_time" else r.start_ns
        if not lo <= t < hi:
            continue
        if q["include_device_ids"] != {} and (
            r.device_id is not None if q["include_device_ids"] is None else r.device_id not in q["include_device_ids"]
        ):
            continue
        f = q["include_invocation_ids"]
        if f != {} and (r.invocation_id is not None if f is None else r.invocation_id not in f):
            continue
        start, end = ref_bounds(t, period, zone, ws)
        key = r.device_id if q["group_by"] else None
        groups[(start, end, key is None, key or "")].append(r.value)
    out = []
    for (start, end, _, key), values in sorted(groups.items()):
        fn = {
            "sum": sum,
            "mean": lambda v: sum(v) / len(v),
            "max": max,
            "min": min,
            "count": lambda v: float(len(v)),
        }[q["aggregation"]]
        out.append((start, end, len(values), fn(values), key or None))
    return out


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    period=st.sampled_from(["daily", "weekly", "monthly", "quarterly", "yearly"]),
    aggregation=st.sampled_from(["sum", "mean", "max", "min", "count"]),
    time_filter=st.sampled_from(["start_time", "end_time"]),
    start=window_starts,
    length=window_lengths,
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"]),
    week_start=st.sampled_from(WEEKDAYS),
    widen=st.booleans(),
    devices=subset_filter(DEVICES, True),
    invocations=subset_filter(INVOCATIONS, True),
    group_by=st.booleans(),
)
def test_aggregate_matches_reference(
    tenant,
    data,
    period,
    aggregation,
    time_filter,
    start,
    length,
    zone,
    week_start,
    widen,
    devices,
    invocations,
    group_by,
):
    name = f"prop.agg.{next(_names)}"
    raw_rows = data.draw(rows_around(start))
    metric_id = define(tenant, name)
    rows = [Row(f"ss_{i:03d}", v, s, s + dur, d, inv) for i, (s, dur, v, d, inv, _) in enumerate(raw_rows)]
    insert(tenant, metric_id, rows)
    q = {
        "name": name,
        "period": period,
        "aggregation": aggregation,
        "time_filter": time_filter,
        "start_time_ns": start,
        "end_time_ns": start + length,
        "include_device_ids": {} if devices == "ANY" else devices,
        "include_session_ids": {},
        "include_invocation_ids": {} if invocations == "ANY" else invocations,
        "condition": None,
        "group_by": "device.device_id" if group_by else None,
        "time_zone": zone,
        "week_start": week_start,
        "widen_to_whole_periods": widen,
    }
    with tenant.client() as c:
        resp = c.post("/v1/metrics/aggregate", json=q)
    assert resp.status_code == 200, resp.text
    got = [
        (r["start_time"], r["end_time"], r["total"], r["value"], r["group_key"]) for r in resp.json()["data"]["records"]
    ]
    expected = reference(rows, q)
    assert [g[:3] + g[4:] for g in got] == [e[:3] + e[4:] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert math.isclose(g[3], e[3], rel_tol=1e-12, abs_tol=1e-12), (g, e)
    event(f"buckets: {'0' if not got else '1-3' if len(got) <= 3 else '>3'}")
    in_window = sum(
        1 for r in rows if start <= (r.end_ns if time_filter == "end_time" else r.start_ns) < start + length
    )
    event(f"margin rows: {'yes' if sum(e[2] for e in expected) > in_window else 'no'}")
