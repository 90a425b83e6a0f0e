"""Calendar bucket maths for aggregations: period edges in an IANA time zone, DST-correct, with a chosen week start.

Edges are computed here (in Python, with zoneinfo) as Unix-epoch nanoseconds; PostgreSQL then assigns each row to a
bucket with `width_bucket(t, edges)`, so the aggregation itself stays in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.errors import IllegalArgument

PERIODS = ("daily", "weekly", "monthly", "quarterly", "yearly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Names the IANA database keeps as fixed-offset rules without daylight saving time.
AMBIGUOUS_ZONES = frozenset({"CET", "EET", "MET", "WET"})
NS_PER_S = 1_000_000_000
NS_PER_US = 1_000
MIN_NS = -(2**63)
MAX_NS = 2**63 - 1
MAX_EDGES = 250_000


def resolve_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise IllegalArgument("time_zone must be an IANA time zone name, such as 'Europe/Paris'")
    if name in AMBIGUOUS_ZONES:
        raise IllegalArgument(
            f"time_zone '{name}' is ambiguous (a fixed offset without daylight saving time); name the zone by "
            "area and location instead, such as 'Europe/Paris'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise IllegalArgument(f"time_zone '{name}' is not in the IANA time zone database") from None


def weekday_index(week_start: object) -> int:
    if not isinstance(week_start, str) or week_start.lower() not in WEEKDAYS:
        raise IllegalArgument(f"week_start must be one of {', '.join(WEEKDAYS)}")
    return WEEKDAYS.index(week_start.lower())


def _to_local(ns: int, zone: ZoneInfo) -> datetime:
    """The wall-clock time at `ns` (floored to the microsecond) in `zone`."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // NS_PER_US)).astimezone(zone)


def _to_ns(local: datetime) -> int:
    """A naive wall-clock midnight in a zone -> ns. A nonexistent local time (a gap) is read with the offset before
    the change (fold=0), i.e. the bucket starts when the clocks jump."""
    delta = local.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * NS_PER_US


def _floor_local(local: datetime, period: str, week_start: int) -> datetime:
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=(day.weekday() - week_start) % 7)
    if period == "monthly":
        return day.replace(day=1)
    if period == "quarterly":
        return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
    return day.replace(day=1, month=1)


def _next_local(start: datetime, period: str) -> datetime:
    if period == "daily":
        return start + timedelta(days=1)
    if period == "weekly":
        return start + timedelta(days=7)
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}[period]
    index = start.month - 1 + months
    return start.replace(year=start.year + index // 12, month=index % 12 + 1)


def _with_zone(naive: datetime, zone: ZoneInfo) -> datetime:
    return naive.replace(tzinfo=zone, fold=0)


def period_start(ns: int, period: str, zone: ZoneInfo, week_start: int = 0) -> int:
    """Start (ns) of the period holding `ns`."""
    local = _to_local(ns, zone).replace(tzinfo=None)
    return _to_ns(_with_zone(_floor_local(local, period, week_start), zone))


def period_end(ns: int, period: str, zone: ZoneInfo, week_start: int = 0) -> int:
    """End (ns, exclusive) of the period holding `ns`."""
    local = _to_local(ns, zone).replace(tzinfo=None)
    return _to_ns(_with_zone(_next_local(_floor_local(local, period, week_start), period), zone))


def period_edges(lo_ns: int, hi_ns: int, period: str, zone: ZoneInfo, week_start: int = 0) -> list[int]:
    """Ascending edges e0 < e1 < ... < en of the whole periods covering [lo_ns, hi_ns): e0 <= lo_ns, en >= hi_ns.
    Bucket i is [e_i, e_i+1)."""
    if hi_ns <= lo_ns:
        return []
    local = _floor_local(_to_local(lo_ns, zone).replace(tzinfo=None), period, week_start)
    edges = [_to_ns(_with_zone(local, zone))]
    while edges[-1] < hi_ns:
        if len(edges) > MAX_EDGES:
            raise IllegalArgument(
                f"The window spans more than {MAX_EDGES} {period} periods; narrow it or use a longer period"
            )
        try:
            local = _next_local(local, period)
        except (OverflowError, ValueError):
            break
        edge = _to_ns(_with_zone(local, zone))
        if edge <= edges[-1]:  # a zone whose midnight vanished twice in a row; never seen, but never loop
            continue
        edges.append(edge)
    return edges


def clamp_window(start_ns: int, end_ns: int) -> tuple[int, int]:
    """Keep a window inside what datetime can represent (years 1677..2262 bound int64 ns anyway)."""
    lo = max(start_ns, -(2**62))
    hi = min(end_ns, 2**63 - 1 - 400 * 86_400 * NS_PER_S)
    return lo, hi
