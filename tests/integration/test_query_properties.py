"""Property test: POST /v1/metrics/query, paged with small max_results, equals a plain-Python filter-and-sort of the
same rows (windows at calendar edges, null filters, every sort key, both directions)."""

from __future__ import annotations

import itertools
import time
from datetime import date, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support.calendar import snap_to_boundary
from tests.support.metric_rows import PUBLISHED, Row, define, insert

S = 1_000_000_000
H = 3600 * S
DEVICES = [None, "d1", "d2", "d3"]
INVOCATIONS = [None, "i1", "i2"]
_names = itertools.count()


def instant_near_boundary(first: date = date(2024, 1, 1), last: date = date(2025, 6, 30)):
    """Midnight UTC of a year/quarter/month/ISO-week start, or a random day, nudged by a little or a lot."""

    def build(d: date, kind: str, delta: int) -> int:
        return (snap_to_boundary(d, kind) - date(1970, 1, 1)).days * 86400 * S + delta

    return st.builds(
        build,
        st.dates(min_value=first, max_value=last),
        st.sampled_from(["year", "quarter", "month", "week", "day", "day", "day", "day"]),
        st.sampled_from([0, 1, -1, H, -H, 13 * H, 5 * 24 * H]),
    )


def rows_around(anchor_ns: int):
    """Rows whose session times lie near calendar boundaries from ~4 months before the anchor to ~2 years after."""
    anchor = date(1970, 1, 1) + timedelta(days=anchor_ns // (86400 * S))
    return st.lists(
        st.tuples(
            instant_near_boundary(anchor - timedelta(days=120), anchor + timedelta(days=700)),
            st.integers(min_value=0, max_value=72 * H),
            st.integers(min_value=-400, max_value=400).map(lambda q: q / 4),
            st.sampled_from(DEVICES),
            st.sampled_from(INVOCATIONS),
            st.integers(min_value=0, max_value=3),
        ),
        min_size=8,
        max_size=30,
    )


window_starts = instant_near_boundary(date(2023, 11, 1), date(2025, 6, 30))
# Whole days plus a nudge: st.integers over nanoseconds would mostly draw windows a few ns long.
window_lengths = st.builds(
    lambda days, nudge: days * 24 * H + nudge,
    st.sampled_from([0, 1, 7, 45, 92, 200, 400, 600, 800]),
    st.sampled_from([0, 1, -1, H, -H]),
)


def subset_filter(pool: list, allow_null: bool):
    """Mostly no filter (so that answers are rarely empty), else a list of values (maybe unknown ones) or null."""
    values = [p for p in pool if p is not None]
    options = [st.just("ANY")] * 4 + [st.lists(st.sampled_from([*values, "zz"]), unique=True, min_size=1)]
    if allow_null:
        options.append(st.none())
    return st.one_of(*options)


def sort_key(name: str, time_column: str):
    def key(r: Row):
        if name == "time":
            return (0, r.end_ns if time_column == "end_time" else r.start_ns)
        v = {
            "value": r.value,
            "published": r.published,
            "device_id": r.device_id,
            "invocation_id": r.invocation_id,
            "session_id": r.session_id,
        }[name]
        return (1, 0) if v is None else (0, v)  # nulls last

    return key


def reference(rows: list[Row], q: dict, now_ns: int) -> list[str]:
    col = q["time_filter"]
    lo = q["start_time_ns"] if q["start_time_ns"] is not None else 0
    hi = q["end_time_ns"] if q["end_time_ns"] is not None else now_ns
    out = []
    for r in rows:
        t = r.end_ns if col == "end_time" else r.start_ns
        if not lo <= t < hi:
            continue
        ok = True
        for field, attr in (
            ("include_device_ids", "device_id"),
            ("include_invocation_ids", "invocation_id"),
            ("include_session_ids", "session_id"),
        ):
            f = q[field]
            if f == {}:
                continue
            ok = ok and (getattr(r, attr) is None if f is None else getattr(r, attr) in f)
        if ok:
            out.append(r)
    key = sort_key(q["sort_by"] or "time", col)
    desc = q["descending"]
    # nulls last in both directions: sort the non-null part by (key, session_id) in the asked direction
    present = [r for r in out if key(r)[0] == 0]
    missing = [r for r in out if key(r)[0] == 1]
    present.sort(key=lambda r: (key(r)[1], r.session_id), reverse=desc)
    missing.sort(key=lambda r: r.session_id, reverse=desc)
    return [r.session_id for r in present + missing]


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    anchor=window_starts,
    time_filter=st.sampled_from(["start_time", "end_time"]),
    open_start=st.booleans(),
    length=st.one_of(st.none(), window_lengths),
    devices=subset_filter(DEVICES, True),
    invocations=subset_filter(INVOCATIONS, True),
    session_pick=st.one_of(*[st.just("ANY")] * 4, st.lists(st.integers(0, 30), unique=True, min_size=1, max_size=15)),
    max_results=st.sampled_from([1, 2, 3]),
    sort_by=st.sampled_from([None, "time", "value", "published", "device_id", "session_id", "invocation_id"]),
    descending=st.booleans(),
)
def test_query_pages_match_reference(
    tenant,
    data,
    anchor,
    time_filter,
    open_start,
    length,
    devices,
    invocations,
    session_pick,
    max_results,
    sort_by,
    descending,
):
    name = f"prop.query.{next(_names)}"
    raw_rows = data.draw(rows_around(anchor))
    start = None if open_start else anchor
    metric_id = define(tenant, name)
    rows = [
        Row(f"ss_{i:03d}", v, s, s + dur, d, inv, PUBLISHED + timedelta(seconds=p))
        for i, (s, dur, v, d, inv, p) in enumerate(raw_rows)
    ]
    insert(tenant, metric_id, rows)
    q = {
        "name": name,
        "time_filter": time_filter,
        "start_time_ns": start,
        "end_time_ns": None if length is None else anchor + length,
        "max_results": max_results,
        "include_device_ids": {} if devices == "ANY" else devices,
        "include_session_ids": {} if session_pick == "ANY" else [f"ss_{i:03d}" for i in session_pick],
        "include_invocation_ids": {} if invocations == "ANY" else invocations,
        "sort_by": sort_by,
        "descending": descending,
        "condition": None,
        "group_by": None,
    }
    now_ns = time.time_ns()
    expected = reference(rows, q, now_ns)
    seen, token, pages = [], None, 0
    with tenant.client() as c:
        while True:
            resp = c.post("/v1/metrics/query", json=q, params={"page_token": token} if token else None)
            assert resp.status_code == 200, resp.text
            data = resp.json()["data"]
            assert len(data["items"]) <= max_results
            assert data["total_count"] == len(expected)
            seen += [i["session_id"] for i in data["items"]]
            token = data["next_token"]
            pages += 1
            if token is None:
                break
            assert pages <= len(expected) + 1
    assert seen == expected
    event(f"pages: {min(pages, 4)}")
    event(f"rows in answer: {'0' if not expected else '1-5' if len(expected) <= 5 else '>5'}")
