"""Calendar boundaries for property tests of periods and windows."""

from __future__ import annotations

from datetime import date

BOUNDARY_KINDS = ("year", "quarter", "month", "week", "day")


def snap_to_boundary(d: date, kind: str) -> date:
    """The start of `d`'s year, calendar quarter, month or ISO week; `d` itself for "day"."""
    if kind == "year":
        return date(d.year, 1, 1)
    if kind == "quarter":
        return date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
    if kind == "month":
        return date(d.year, d.month, 1)
    if kind == "week":
        return date.fromisocalendar(*d.isocalendar()[:2], 1)
    return d
