"""The console's pure parts: instants in URLs, positions, the sign-in redirect target, CSV cells, job figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api_shim.console.exports import csv_text
from api_shim.console.instants import ceil_second, floor_second, format_instant, parse_instant
from api_shim.console.params import jobs_cursor, parse_jobs_cursor, parse_position
from api_shim.console.routes.signin import safe_next
from api_shim.console.views import JobView
from ingest.errors import InvalidRequest
from runtime.supervisor import console_url

MAY_1 = 1_777_593_600 * 10**9


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-05-01T00:00:00Z", MAY_1),
        ("2026-05-01", MAY_1),
        ("2026-05-01T02:00:00+02:00", MAY_1),
        ("2026-05-01T00:00:00.000000001Z", MAY_1 + 1),
        ("2026-05-01 00:00:00.5", MAY_1 + 500_000_000),
        ("1969-12-31T23:59:59.999999999Z", -1),
    ],
)
def test_instants_are_read_to_the_nanosecond(text, ns):
    assert parse_instant(text, "start") == ns


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_instants_round_trip(ns):
    assert parse_instant(format_instant(ns), "start") == ns
    assert floor_second(ns) <= ns <= ceil_second(ns) and ceil_second(ns) - floor_second(ns) in (0, 10**9)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-05-01T00:00:00.1234567891Z", "3000-01-01", ""])
def test_bad_instants_are_a_400(text):
    with pytest.raises(InvalidRequest):
        parse_instant(text, "start")


def test_positions_and_cursors():
    assert parse_position("3-120") == (3, 120)
    row = {"created": datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), "job_id": "jb_abc"}
    assert parse_jobs_cursor(jobs_cursor(row)) == ("2026-05-01T12:00:00.123456+00:00", "jb_abc")
    for bad in ("3", "-1-2", "a-b"):
        with pytest.raises(InvalidRequest):
            parse_position(bad)
    for bad in ("jb_abc", "2026-05-01T12:00:00~jb_abc", "2026-05-01T12:00:00+00:00~jb'x"):
        with pytest.raises(InvalidRequest):
            parse_jobs_cursor(bad)


def test_sign_in_only_returns_to_console_pages():
    assert safe_next("/console/metrics?name=x") == "/console/metrics?name=x"
    for elsewhere in (None, "", "https://evil.example/", "//evil.example/console/", "/v1/metrics", "/console\\x"):
        assert safe_next(elsewhere) == "/console/jobs"


def test_csv_cells_never_start_a_formula():
    assert [csv_text(v) for v in ("=1+1", "+1", "-x", "@A1", "\tx", "ok", "", None)] == [
        "'=1+1",
        "'+1",
        "'-x",
        "'@A1",
        "'\tx",
        "ok",
        "",
        "",
    ]


def test_console_url_is_reachable_from_this_machine():
    assert console_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/console"
    assert console_url("::", 8000) == "http://127.0.0.1:8000/console"
    assert console_url("::1", 9000) == "http://[::1]:9000/console"
    assert console_url("metrics.internal", 80) == "http://metrics.internal:80/console"


def test_job_figures():
    created = datetime(2026, 5, 1, tzinfo=UTC)
    row = {
        "job_id": "jb_x",
        "state": "running",
        "lane": "bulk",
        "source": "jobs",
        "principal": "p",
        "total": 1000,
        "succeeded": 300,
        "failed": 100,
        "created": created,
        "started": created + timedelta(seconds=2),
        "finished": None,
    }
    job = JobView.of(row, now=created + timedelta(seconds=12))
    assert (job.done, job.pending, job.percent, job.terminal) == (400, 600, 40, False)
    assert (job.age_s, job.queued_s, job.running_s, job.items_per_s) == (12.0, 2.0, 10.0, 400 / 12)
    empty = JobView.of(dict(row, state="succeeded", total=0, succeeded=0, failed=0), now=created)
    assert (empty.percent, empty.items_per_s) == (100, None)
