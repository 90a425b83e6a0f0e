"""Calendar bucket maths (ingest.periods) against a date-based reference: edges at year, quarter, month and week
boundaries, DST days of 23 and 25 hours, week starts, time zone validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import periods
from ingest.errors import IllegalArgument
from tests.support.calendar import BOUNDARY_KINDS, snap_to_boundary

H = 3600 * 10**9
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo"]


def ns_of(dt: datetime) -> int:
    d = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000


def local_date(ns: int, zone: ZoneInfo) -> date:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)).astimezone(zone).date()


def midnight(d: date, zone: ZoneInfo) -> int:
    return ns_of(datetime.combine(d, time(0), tzinfo=zone))


def ref_bounds(ns: int, period: str, zone: ZoneInfo, week_start: int) -> tuple[int, int]:
    """Reference: pick the period's first and next-first calendar date, then take midnight in the zone."""
    d = local_date(ns, zone)
    if period == "daily":
        first, nxt = d, d + timedelta(days=1)
    elif period == "weekly":
        iso_monday = date.fromisocalendar(*d.isocalendar()[:2], 1)
        first = iso_monday + timedelta(days=week_start)
        if first > d:
            first -= timedelta(days=7)
        nxt = first + timedelta(days=7)
    else:
        step = {"monthly": 1, "quarterly": 3, "yearly": 12}[period]
        month0 = {"monthly": d.month - 1, "quarterly": (d.month - 1) // 3 * 3, "yearly": 0}[period]
        first = date(d.year, month0 + 1, 1)
        y, m = divmod(month0 + step, 12)
        nxt = date(d.year + y, m + 1, 1)
    return midnight(first, zone), midnight(nxt, zone)


@st.composite
def edge_instants(draw) -> tuple[int, str]:
    """Instants at or next to a calendar boundary (year, quarter, month, ISO week) in some zone."""
    zone_name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(zone_name)
    d = draw(st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31)))
    d = snap_to_boundary(d, draw(st.sampled_from(BOUNDARY_KINDS)))
    delta = draw(st.sampled_from([0, 1, -1, 1000, -1000, H, -H, 24 * H - 1, -24 * H + 1]))
    return midnight(d, zone) + delta, zone_name


@settings(max_examples=300, deadline=None)
@given(
    edge_instants(),
    st.sampled_from(periods.PERIODS),
    st.integers(min_value=0, max_value=6),
)
def test_period_bounds_match_reference(instant, period, week_start):
    ns, zone_name = instant
    zone = ZoneInfo(zone_name)
    start, end = ref_bounds(ns, period, zone, week_start)
    assert periods.period_start(ns, period, zone, week_start) == start
    assert periods.period_end(ns, period, zone, week_start) == end
    assert start <= ns < end


@settings(max_examples=100, deadline=None)
@given(
    edge_instants(),
    st.integers(min_value=1, max_value=400 * 24 * H),
    st.sampled_from(periods.PERIODS),
    st.integers(min_value=0, max_value=6),
)
def test_edges_cover_the_window_with_consecutive_periods(instant, length, period, week_start):
    lo, zone_name = instant
    zone = ZoneInfo(zone_name)
    edges = periods.period_edges(lo, lo + length, period, zone, week_start)
    assert edges[0] <= lo and edges[-1] >= lo + length
    assert edges[-2] < lo + length  # no empty trailing period
    for a, b in zip(edges, edges[1:], strict=False):
        assert ref_bounds(a, period, zone, week_start) == (a, b)


def test_dst_days_are_23_and_25_hours():
    berlin = ZoneInfo("Europe/Berlin")
    spring = midnight(date(2026, 3, 29), berlin)
    autumn = midnight(date(2026, 10, 25), berlin)
    assert periods.period_end(spring, "daily", berlin) - spring == 23 * H
    assert periods.period_end(autumn, "daily", berlin) - autumn == 25 * H
    # 01:30 UTC on the spring-forward day is 03:30 local: still that day, bucket starts 23:00 UTC the day before.
    instant = ns_of(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    assert periods.period_start(instant, "daily", berlin) == ns_of(datetime(2026, 3, 28, 23, 0, tzinfo=UTC))


def test_quarters_weeks_and_week_start():
    utc = ZoneInfo("UTC")
    may = ns_of(datetime(2026, 5, 14, 15, tzinfo=UTC))  # a Thursday
    assert periods.period_start(may, "quarterly", utc) == ns_of(datetime(2026, 4, 1, tzinfo=UTC))
    assert periods.period_end(may, "quarterly", utc) == ns_of(datetime(2026, 7, 1, tzinfo=UTC))
    assert periods.period_start(may, "weekly", utc) == ns_of(datetime(2026, 5, 11, tzinfo=UTC))  # Monday
    sunday = periods.weekday_index("sunday")
    assert periods.period_start(may, "weekly", utc, sunday) == ns_of(datetime(2026, 5, 10, tzinfo=UTC))
    assert periods.period_end(ns_of(datetime(2026, 12, 31, tzinfo=UTC)), "yearly", utc) == ns_of(
        datetime(2027, 1, 1, tzinfo=UTC)
    )


def test_empty_window_has_no_edges():
    assert periods.period_edges(10, 10, "daily", ZoneInfo("UTC")) == []
    assert periods.period_edges(10, 5, "daily", ZoneInfo("UTC")) == []


@pytest.mark.parametrize("name", ["CET", "EET", "MET", "WET", "Mars/Olympus", "", "../etc/passwd", None, 5])
def test_bad_or_ambiguous_zones_are_illegal(name):
    with pytest.raises(IllegalArgument):
        periods.resolve_zone(name)


def test_good_zones_and_week_starts():
    assert periods.resolve_zone("America/Los_Angeles").key == "America/Los_Angeles"
    assert periods.weekday_index("Monday") == 0 and periods.weekday_index("sunday") == 6
    with pytest.raises(IllegalArgument):
        periods.weekday_index("funday")
