"""Exponential backoff with jitter, the one formula behind every retry and restart delay of the service."""

from __future__ import annotations

import random


def exponential(attempt: int, *, base_s: float, cap_s: float = 30.0) -> float:
    """`base_s * 2**attempt`, capped at `cap_s` (attempt 0 waits `base_s`)."""
    return min(cap_s, base_s * 2**attempt)


def jittered(attempt: int, *, base_s: float, floor_s: float, cap_s: float = 30.0) -> float:
    """Full jitter: a uniform draw between `floor_s` and the exponential delay, so that many clients retrying after
    one outage spread out instead of arriving together."""
    return random.uniform(floor_s, max(floor_s, exponential(attempt, base_s=base_s, cap_s=cap_s)))
