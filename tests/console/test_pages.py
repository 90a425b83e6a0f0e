"""The session page and the metrics page: what they list equals what the API answers, their charts are drawn, the
CSV export holds exactly the values shown, and no page weighs 300 KB or more."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from playwright.sync_api import expect

from api_shim.console.instants import format_instant
from api_shim.console.render import iso, value_text
from tests.console.jobs_data import finish
from tests.support.metric_rows import Row, define, insert

DAY_NS = 86_400 * 10**9
MAY_1 = 1_777_593_600 * 10**9  # 2026-05-01T00:00:00Z
MAX_WEIGHT = 300_000
BY_START = {"time_filter": "start_time"}


def chart_size(tab, chart_id: str) -> tuple[float, float]:
    canvas = tab.page.locator(f"#{chart_id} canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    return box["width"], box["height"]


def table_rows(tab, table_id: str) -> list[list[str]]:
    return tab.page.locator(f"#{table_id} tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.innerText))"
    )


def download_csv(tab, link_id: str) -> list[list[str]]:
    with tab.page.expect_download() as started:
        tab.page.click(f"#{link_id}")
    return list(csv.reader(io.StringIO(open(started.value.path(), encoding="utf-8").read())))


def test_session_page_lists_its_metrics_with_a_chart(tab, tenant):
    a, b = tenant.device("dv_" + secrets.token_hex(3)), tenant.device("dv_" + secrets.token_hex(3))
    session = tenant.session(devices=(a, b))
    metrics = {"cpu.usage_max": 87.2, "mem.peak_mb": 512.5, "run.duration_s": 3600.0, "temp.min_c": -4.25}
    entries = [{"name": n, "value": v} for n, v in metrics.items()]
    finish(tenant, [{"session_id": session, "device_id": a, "metrics": entries}])
    with tenant.client() as client:
        records = client.get(f"/v1/metrics/session/{session}/").json()["data"]

    tab.sign_in(tenant.token)
    tab.goto(f"/console/sessions/{session}")
    assert tab.page.locator("#session-start").inner_text().startswith("2024-05-01T00:00:00Z")
    assert tab.page.locator("#session-end").inner_text().startswith("2024-05-01T01:00:00Z")
    assert tab.page.locator("#session-devices").inner_text() == ", ".join(sorted((a, b)))
    assert table_rows(tab, "session-metrics") == [
        [r["name"], value_text(r["value"]), "", r["device_id"], r["published"], r["published_by"]]
        for r in sorted(records, key=lambda r: r["name"])
    ]
    width, height = chart_size(tab, "session-chart")
    assert width >= 300 and height >= 150
    expect(tab.page.locator("#session-chart")).to_have_attribute("data-drawn", "4")
    assert tab.weight() < MAX_WEIGHT
    tab.screenshot("session")


def value_rows(tenant, name: str, count: int) -> tuple[str, list[Row]]:
    """`count` rows of a new metric, one a day from 2026-05-01 at 10:00 UTC (sessions end then), some negative,
    every other one with a device."""
    metric_id = define(tenant, name)
    rows = [
        Row(
            f"ss_{i:03d}_{secrets.token_hex(5)}",
            (i - 10) * 1.5 + 0.1,
            MAY_1 + i * DAY_NS + 9 * 3600 * 10**9,
            MAY_1 + i * DAY_NS + 10 * 3600 * 10**9,
            device_id="dv_even" if i % 2 == 0 else None,
            published=datetime(2026, 6, 1, tzinfo=UTC) + timedelta(microseconds=i),
        )
        for i in range(count)
    ]
    insert(tenant, metric_id, rows)
    return metric_id, rows


def test_metric_page_values_chart_and_csv_export(tab, tenant):
    _, rows = value_rows(tenant, "console.temp", 30)
    tab.sign_in(tenant.token)

    start, end = "2026-05-05T00:00:00Z", "2026-05-25T00:00:00Z"
    tab.goto("/console/metrics?" + urlencode({"name": "console.temp", "start": start, "end": end}))
    shown = [r for r in rows if MAY_1 + 4 * DAY_NS <= r.end_ns < MAY_1 + 24 * DAY_NS]
    expected = [
        [format_instant(r.end_ns), r.session_id, r.device_id or "", value_text(r.value), iso(r.published)]
        for r in sorted(shown, key=lambda r: (r.end_ns, r.session_id))
    ]
    assert table_rows(tab, "metric-values") == expected
    assert "20 values" in tab.page.locator("#metric-summary").inner_text()
    width, height = chart_size(tab, "metric-chart")
    assert width >= 300 and height >= 150
    expect(tab.page.locator("#metric-chart")).to_have_attribute("data-drawn", "20")
    assert tab.weight() < MAX_WEIGHT
    tab.screenshot("metrics")

    exported = download_csv(tab, "export-csv")
    assert exported[0] == ["time", "time_ns", "session_id", "device_id", "value", "published"]
    assert [[t, s, d, v, p] for t, _, s, d, v, p in exported[1:]] == expected  # exactly the values shown
    assert [int(r[1]) for r in exported[1:]] == sorted(r.end_ns for r in shown)

    # By session start instead of end: the same window selects and shows the start times.
    tab.goto("/console/metrics?" + urlencode({"name": "console.temp", "start": start, "end": end} | BY_START))
    by_start = sorted(
        (r for r in rows if MAY_1 + 4 * DAY_NS <= r.start_ns < MAY_1 + 24 * DAY_NS), key=lambda r: r.start_ns
    )
    assert [row[0] for row in table_rows(tab, "metric-values")] == [format_instant(r.start_ns) for r in by_start]
    assert "sessions whose start is in" in tab.page.locator("#metric-summary").inner_text()

    # Without a window the page shows the metric's whole range, and its links name that range.
    tab.goto("/console/metrics?name=console.temp")
    assert len(table_rows(tab, "metric-values")) == 30
    link = tab.page.locator("#deep-link").get_attribute("href")
    assert link == "/console/metrics?" + urlencode(
        {"name": "console.temp", "start": "2026-05-01T10:00:00Z", "end": "2026-05-30T10:00:01Z"}
    )
    tab.goto(link)
    assert len(table_rows(tab, "metric-values")) == 30


def test_metric_page_aggregates_like_the_sdk(tab, tenant):
    value_rows(tenant, "console.agg", 30)
    tab.sign_in(tenant.token)
    start, end = "2026-05-03T00:00:00Z", "2026-05-28T00:00:00Z"
    tab.goto("/console/metrics?" + urlencode({"name": "console.agg", "start": start, "end": end}))
    tab.page.select_option("select[name=period]", "weekly")
    tab.page.select_option("select[name=aggregation]", "max")
    tab.page.fill("input[name=time_zone]", "America/New_York")
    tab.page.select_option("select[name=week_start]", "sunday")
    tab.page.click("#metric-form button[type=submit]")
    expect(tab.page.locator("#metric-summary")).to_contain_text("max per weekly bucket (America/New_York")

    with tenant.client() as client:
        body = {
            "name": "console.agg",
            "period": "weekly",
            "aggregation": "max",
            "time_zone": "America/New_York",
            "week_start": "sunday",
            "start_time_ns": MAY_1 + 2 * DAY_NS,
            "end_time_ns": MAY_1 + 27 * DAY_NS,
        }
        records = client.post("/v1/metrics/aggregate", json=body).json()["data"]["records"]
    expected = [
        [format_instant(r["start_time"]), format_instant(r["end_time"]), str(r["total"]), value_text(r["value"])]
        for r in records
    ]
    assert len(expected) == 5
    assert table_rows(tab, "metric-values") == expected
    expect(tab.page.locator("#metric-chart")).to_have_attribute("data-drawn", "5")
    assert chart_size(tab, "metric-chart")[0] >= 300
    assert tab.weight() < MAX_WEIGHT
    tab.screenshot("metrics-aggregate")

    exported = download_csv(tab, "export-csv")
    assert exported[0] == ["bucket_start", "bucket_end", "start_ns", "end_ns", "count", "value"]
    assert [[a, b, c, v] for a, b, _, _, c, v in exported[1:]] == expected


def test_metric_page_input_errors_are_shown_with_the_apis_status_and_message(tab, tenant):
    value_rows(tenant, "console.err", 3)
    tab.sign_in(tenant.token)
    tab.expect_status(400)
    answer = tab.goto("/console/metrics?name=console.err&start=yesterday")
    assert answer.status == 400
    expect(tab.page.locator("#metric-error")).to_contain_text("start must be an ISO-8601 time")
    with tenant.client() as client:
        api = client.post(
            "/v1/metrics/aggregate",
            json={"name": "console.err", "period": "daily", "aggregation": "mean", "time_zone": "Mars/Base"}
            | {"start_time_ns": 0, "end_time_ns": MAY_1},
        )
    answer = tab.goto("/console/metrics?name=console.err&period=daily&time_zone=Mars/Base")
    assert answer.status == api.status_code == 400
    expect(tab.page.locator("#metric-error")).to_have_text(
        f"{api.json()['error']['error_code']} {api.json()['error']['message']}"
    )
    expect(tab.page.locator("input[name=time_zone]")).to_have_value("Mars/Base")


def test_the_largest_metric_page_stays_under_300_kb_and_exports_what_it_shows(tab, tenant):
    _, rows = value_rows(tenant, "console.many", 520)
    tab.sign_in(tenant.token)
    tab.goto("/console/metrics?name=console.many")
    assert "the first 500 of 520 values" in tab.page.locator("#metric-summary").inner_text()
    shown = table_rows(tab, "metric-values")
    assert len(shown) == 500
    expect(tab.page.locator("#metric-chart")).to_have_attribute("data-drawn", "500")
    assert tab.weight() < MAX_WEIGHT
    exported = download_csv(tab, "export-csv")
    assert [[t, s, d, v, p] for t, _, s, d, v, p in exported[1:]] == shown

    tab.goto("/console/metrics")  # the org's metrics, listed
    expect(tab.page.locator("#metric-list a", has_text="console.many")).to_have_attribute(
        "href", "/console/metrics?name=console.many"
    )
