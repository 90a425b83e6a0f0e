"""Instants as the console shows and accepts them: ISO-8601 UTC text <-> Unix-epoch nanoseconds (the unit of
session times), exact to the nanosecond both ways."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ingest.errors import InvalidRequest

NS_PER_S = 1_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANT = re.compile(
    r"^(?P<head>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)"  # date, time to the second
    r"(?:\.(?P<frac>\d{1,9}))?"  # fraction, to the nanosecond
    r"(?P<zone>Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_instant(value: str, field: str) -> int:
    """`2026-05-01T00:00:00Z`, `2026-05-01T02:00:00.5+02:00` or `2026-05-01` (midnight UTC) -> ns since the epoch.
    A time without a zone is read as UTC."""
    match = _INSTANT.match(value.strip())
    if match is None:
        raise InvalidRequest(f"{field} must be an ISO-8601 time such as 2026-05-01T00:00:00Z, not '{value}'")
    head = match["head"].replace(" ", "T")
    if "T" not in head:
        head += "T00:00:00"
    zone = match["zone"] or "Z"
    try:
        when = datetime.fromisoformat(head + ("+00:00" if zone in "Zz" else zone))
    except ValueError:
        raise InvalidRequest(f"{field} is not a valid date and time: '{value}'") from None
    delta = when - EPOCH
    fraction = int((match["frac"] or "0").ljust(9, "0"))
    ns = (delta.days * 86_400 + delta.seconds) * NS_PER_S + fraction
    if not -(2**63) <= ns < 2**63:
        raise InvalidRequest(f"{field} is out of range (years 1678 to 2261): '{value}'")
    return ns


def format_instant(ns: int) -> str:
    """ns since the epoch -> `2026-05-01T00:00:00Z`, with as many fraction digits as needed (up to 9)."""
    seconds, fraction = divmod(ns, NS_PER_S)
    text = (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def floor_second(ns: int) -> int:
    return ns - ns % NS_PER_S


def ceil_second(ns: int) -> int:
    return -(-ns // NS_PER_S) * NS_PER_S
