"""Property test: POST /v1/metrics/query, paged with small max_results, equals a plain-Python filter-and-sort of the
same rows (windows at calendar edges, null filters, every sort key, both directions)."""

from __future__ import annotations

import itertools
import time
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.metric_rows import PUBLISHED, Row, define, insert

S = 1_000_000_000
H = 3600 * S
DEVICES = [None, "d1", "d2", "d3"]
INVOCATIONS = [None, "i1", "i2"]
_names = itertools.count()


def instant_near_boundary():
    """Midnight UTC of a year/quarter/month/ISO-week start, or a random day, nudged by a little or a lot."""

    def build(d: date, kind: str, delta: int) -> int:
        if kind == "year":
            d = date(d.year, 1, 1)
        elif kind == "quarter":
            d = date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
        elif kind == "month":
            d = date(d.year, d.month, 1)
        elif kind == "week":
            d = date.fromisocalendar(*d.isocalendar()[:2], 1)
        return (d - date(1970, 1, 1)).days * 86400 * S + delta

    return st.builds(
        build,
        st.dates(min_value=date(2019, 1, 1), max_value=date(2025, 12, 31)),
        st.sampled_from(["year", "quarter", "month", "week", "day"]),
        st.sampled_from([0, 1, -1, H, -H, 13 * H, 5 * 24 * H]),
    )


rows_strategy = st.lists(
    st.tuples(
        instant_near_boundary(),
        st.integers(min_value=0, max_value=72 * H),
        st.integers(min_value=-400, max_value=400).map(lambda q: q / 4),
        st.sampled_from(DEVICES),
        st.sampled_from(INVOCATIONS),
        st.integers(min_value=0, max_value=3),
    ),
    max_size=30,
)


def subset_filter(pool: list, allow_null: bool):
    options = [st.just("ANY"), st.lists(st.sampled_from([p for p in pool if p is not None] + ["zz"]), unique=True)]
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
    raw_rows=rows_strategy,
    time_filter=st.sampled_from(["start_time", "end_time"]),
    start=st.one_of(st.none(), instant_near_boundary()),
    end=st.one_of(st.none(), instant_near_boundary()),
    devices=subset_filter(DEVICES, True),
    invocations=subset_filter(INVOCATIONS, True),
    session_pick=st.one_of(st.just("ANY"), st.lists(st.integers(0, 40), unique=True, max_size=8)),
    max_results=st.integers(min_value=1, max_value=7),
    sort_by=st.sampled_from([None, "time", "value", "published", "device_id", "session_id", "invocation_id"]),
    descending=st.booleans(),
)
def test_query_pages_match_reference(
    tenant, raw_rows, time_filter, start, end, devices, invocations, session_pick, max_results, sort_by, descending
):
    name = f"prop.query.{next(_names)}"
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
        "end_time_ns": end,
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
