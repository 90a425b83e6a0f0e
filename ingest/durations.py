"""Durations as people write them in settings and on the command line: `45s`, `30m`, `12h`, `7d`."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd])\s*$")
HINT = "a duration like 45s, 30m, 12h or 7d"


def parse_duration(value: str) -> int:
    """Whole seconds; ValueError (naming the expected form) for anything else."""
    found = _DURATION.match(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"must be {HINT} (got {value!r})")
    return int(found.group(1)) * _UNITS[found.group(2)]


def format_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"
