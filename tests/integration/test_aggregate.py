"""POST /v1/metrics/aggregate over HTTP against the live stack: periods, widening, zones, groups, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.metric_rows import Row, define, insert

S = 1_000_000_000
H = 3600 * S


def ns(*args) -> int:
    d = datetime(*args, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (d.days * 86400 + d.seconds) * S


def body(name: str, period: str, aggregation: str, start: int, end: int, **extra) -> dict:
    b = {
        "name": name,
        "period": period,
        "aggregation": aggregation,
        "time_filter": "end_time",
        "start_time_ns": start,
        "end_time_ns": end,
        "include_device_ids": {},
        "include_session_ids": {},
        "include_invocation_ids": {},
    }
    b.update(extra)
    return b


@pytest.fixture
def seeded(tenant):
    metric_id = define(tenant, "cpu.usage_max")
    rows = [
        Row("ss_1", 10.0, ns(2026, 1, 14), ns(2026, 1, 15), "robot01"),
        Row("ss_2", 20.0, ns(2026, 1, 30), ns(2026, 1, 31, 23, 59, 59), "robot02"),
        Row("ss_3", 30.0, ns(2026, 2, 1), ns(2026, 2, 1), None),
        Row("ss_4", 40.0, ns(2026, 3, 31), ns(2026, 4, 1, 0, 0, 1), "robot01"),
        Row("ss_5", 50.0, ns(2026, 12, 31), ns(2027, 1, 1), "robot01"),
    ]
    insert(tenant, metric_id, rows)
    return tenant, metric_id


def agg(tenant, b: dict):
    with tenant.client() as c:
        return c.post("/v1/metrics/aggregate", json=b)


def buckets(resp) -> list[tuple]:
    assert resp.status_code == 200, resp.text
    return [(r["start_time"], r["end_time"], r["total"], r["value"]) for r in resp.json()["data"]["records"]]


def test_monthly_sum_widens_to_whole_months(seeded):
    tenant, metric_id = seeded
    resp = agg(tenant, body("cpu.usage_max", "monthly", "sum", ns(2026, 1, 20), ns(2026, 2, 15)))
    assert buckets(resp) == [
        (ns(2026, 1, 1), ns(2026, 2, 1), 2, 30.0),  # ss_1 lies before the requested start: widened in
        (ns(2026, 2, 1), ns(2026, 3, 1), 1, 30.0),
    ]
    rec = resp.json()["data"]["records"][0]
    assert rec["metric_id"] == metric_id and rec["name"] == "cpu.usage_max"
    assert rec["period"] == "monthly" and rec["aggregation"] == "sum" and rec["group_key"] is None
    assert resp.json()["data"]["aggregation"] == "sum"


def test_widen_false_keeps_only_the_window_but_reports_whole_periods(seeded):
    tenant, _ = seeded
    resp = agg(
        tenant,
        body("cpu.usage_max", "monthly", "count", ns(2026, 1, 20), ns(2026, 2, 15), widen_to_whole_periods=False),
    )
    assert buckets(resp) == [(ns(2026, 1, 1), ns(2026, 2, 1), 1, 1.0), (ns(2026, 2, 1), ns(2026, 3, 1), 1, 1.0)]


@pytest.mark.parametrize(
    ("period", "aggregation", "expected"),
    [
        (
            "quarterly",
            "mean",
            [
                (ns(2026, 1, 1), ns(2026, 4, 1), 3, 20.0),
                (ns(2026, 4, 1), ns(2026, 7, 1), 1, 40.0),
                (ns(2027, 1, 1), ns(2027, 4, 1), 1, 50.0),
            ],
        ),
        ("yearly", "max", [(ns(2026, 1, 1), ns(2027, 1, 1), 4, 40.0), (ns(2027, 1, 1), ns(2028, 1, 1), 1, 50.0)]),
        (
            "weekly",
            "min",
            [
                (ns(2026, 1, 12), ns(2026, 1, 19), 1, 10.0),
                (ns(2026, 1, 26), ns(2026, 2, 2), 2, 20.0),  # Sat 31 Jan and Sun 1 Feb share the Monday week
                (ns(2026, 3, 30), ns(2026, 4, 6), 1, 40.0),
                (ns(2026, 12, 28), ns(2027, 1, 4), 1, 50.0),
            ],
        ),
        (
            "daily",
            "count",
            [
                (ns(2026, 1, 15), ns(2026, 1, 16), 1, 1.0),
                (ns(2026, 1, 31), ns(2026, 2, 1), 1, 1.0),
                (ns(2026, 2, 1), ns(2026, 2, 2), 1, 1.0),
                (ns(2026, 4, 1), ns(2026, 4, 2), 1, 1.0),
                (ns(2027, 1, 1), ns(2027, 1, 2), 1, 1.0),
            ],
        ),
    ],
)
def test_periods_and_aggregations(seeded, period, aggregation, expected):
    tenant, _ = seeded
    assert buckets(agg(tenant, body("cpu.usage_max", period, aggregation, ns(2026, 1, 1), ns(2027, 6, 1)))) == expected


def test_week_start_sunday_splits_the_weekend(seeded):
    tenant, _ = seeded
    resp = agg(tenant, body("cpu.usage_max", "weekly", "count", ns(2026, 1, 30), ns(2026, 2, 2), week_start="sunday"))
    assert buckets(resp) == [(ns(2026, 1, 25), ns(2026, 2, 1), 1, 1.0), (ns(2026, 2, 1), ns(2026, 2, 8), 1, 1.0)]


def test_time_zone_moves_the_midnights(seeded):
    tenant, _ = seeded
    # In New York (UTC-5 in January) 2026-01-31T23:59:59Z is still the 31st, and 2026-02-01T00:00Z is the 31st too.
    resp = agg(
        tenant,
        body("cpu.usage_max", "daily", "sum", ns(2026, 1, 31, 5), ns(2026, 2, 1, 5), time_zone="America/New_York"),
    )
    assert buckets(resp) == [(ns(2026, 1, 31, 5), ns(2026, 2, 1, 5), 2, 50.0)]


def test_dst_day_is_23_hours(tenant):
    metric_id = define(tenant, "dst.metric")
    spring_utc = ns(2026, 3, 28, 23)  # midnight in Berlin on the spring-forward day
    insert(
        tenant, metric_id, [Row("ss_x", 1.0, spring_utc, spring_utc + 22 * H), Row("ss_y", 2.0, 0, spring_utc + 23 * H)]
    )
    resp = agg(tenant, body("dst.metric", "daily", "sum", spring_utc, spring_utc + 1, time_zone="Europe/Berlin"))
    assert buckets(resp) == [(spring_utc, spring_utc + 23 * H, 1, 1.0)]


def test_filters_and_group_by(seeded):
    tenant, _ = seeded
    only_null = agg(
        tenant, body("cpu.usage_max", "yearly", "count", ns(2026, 1, 1), ns(2026, 2, 1), include_device_ids=None)
    )
    assert buckets(only_null) == [(ns(2026, 1, 1), ns(2027, 1, 1), 1, 1.0)]
    grouped = agg(
        tenant, body("cpu.usage_max", "yearly", "sum", ns(2026, 1, 1), ns(2026, 2, 1), group_by="device.device_id")
    )
    assert grouped.status_code == 200, grouped.text
    data = grouped.json()["data"]
    assert [(r["group_key"], r["total"], r["value"]) for r in data["records"]] == [
        ("robot01", 2, 50.0),
        ("robot02", 1, 20.0),
        (None, 1, 30.0),
    ]
    assert data["total_groups"] == 2 and data["groups_truncated"] is False
    cond = {"field": "device.device_id", "comparator": "EQUALS", "value": "robot02"}
    filtered = agg(tenant, body("cpu.usage_max", "monthly", "sum", ns(2026, 1, 1), ns(2026, 12, 1), condition=cond))
    assert buckets(filtered) == [(ns(2026, 1, 1), ns(2026, 2, 1), 1, 20.0)]


def test_group_cap_keeps_the_biggest_groups(tenant):
    metric_id = define(tenant, "many.groups")
    rows = []
    for g in range(105):
        for k in range(2 if g < 100 else 1):  # groups d000..d099 have 2 sessions, d100..d104 one
            rows.append(Row(f"ss_{g}_{k}", 1.0, ns(2026, 5, 1), ns(2026, 5, 1), f"d{g:03d}"))
    rows.append(Row("ss_none", 1.0, ns(2026, 5, 1), ns(2026, 5, 1), None))
    insert(tenant, metric_id, rows)
    resp = agg(
        tenant, body("many.groups", "yearly", "count", ns(2026, 1, 1), ns(2027, 1, 1), group_by="device.device_id")
    )
    data = resp.json()["data"]
    keys = [r["group_key"] for r in data["records"]]
    assert keys == [f"d{g:03d}" for g in range(100)] + [None]
    assert data["total_groups"] == 105 and data["groups_truncated"] is True


def test_empty_window_and_no_rows(seeded):
    tenant, _ = seeded
    assert buckets(agg(tenant, body("cpu.usage_max", "daily", "sum", ns(2026, 5, 1), ns(2026, 5, 1)))) == []
    assert buckets(agg(tenant, body("cpu.usage_max", "daily", "sum", ns(2030, 5, 1), ns(2030, 6, 1)))) == []


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"period": "hourly"}, "RobotoInvalidRequestException"),
        ({"aggregation": "median"}, "RobotoInvalidRequestException"),
        ({"start_time_ns": None}, "RobotoInvalidRequestException"),
        ({"end_time_ns": "later"}, "RobotoInvalidRequestException"),
        ({"include_session_ids": None}, "RobotoInvalidRequestException"),
        ({"widen_to_whole_periods": "no"}, "RobotoInvalidRequestException"),
        ({"time_zone": "CET"}, "RobotoIllegalArgumentException"),
        ({"time_zone": "WET"}, "RobotoIllegalArgumentException"),
        ({"time_zone": "Nowhere/City"}, "RobotoIllegalArgumentException"),
        ({"week_start": "funday"}, "RobotoIllegalArgumentException"),
        ({"group_by": "device.custom.site"}, "RobotoIllegalArgumentException"),
        (
            {"condition": {"field": "device.metadata.x", "comparator": "EQUALS", "value": 1}},
            "RobotoIllegalArgumentException",
        ),
    ],
)
def test_bad_requests(seeded, extra, code):
    tenant, _ = seeded
    b = body("cpu.usage_max", "daily", "sum", ns(2026, 1, 1), ns(2026, 2, 1))
    b.update(extra)
    resp = agg(tenant, b)
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"error": {"error_code": code, "message": resp.json()["error"]["message"]}}


def test_unknown_metric_is_404(seeded, other_tenant):
    tenant, _ = seeded
    assert agg(tenant, body("nope", "daily", "sum", 0, 1)).status_code == 404
    assert agg(other_tenant, body("cpu.usage_max", "daily", "sum", 0, 1)).status_code == 404


@pytest.mark.parametrize(("period", "start", "end"), [("daily", 0, 2**63 - 1), ("yearly", -(2**63), 2**63 - 1)])
def test_extreme_windows_answer(seeded, period, start, end):
    tenant, _ = seeded
    resp = agg(tenant, body("cpu.usage_max", period, "count", start, end))
    assert sum(b[2] for b in buckets(resp)) == 5


def test_out_of_range_bounds_are_400(seeded):
    tenant, _ = seeded
    assert agg(tenant, body("cpu.usage_max", "daily", "count", 0, 2**63)).status_code == 400
    with tenant.client() as c:
        resp = c.post("/v1/metrics/query", json={"name": "cpu.usage_max", "start_time_ns": -(2**64)})
    assert resp.status_code == 400
