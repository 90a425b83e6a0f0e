"""Waiting for the system under test: poll a condition a bounded number of times (a time-out, not a speed check)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `predicate` until it returns a truthy value; fail naming `what` after about `timeout` seconds."""
    for _ in range(max(1, int(timeout / interval))):
        try:
            found = predicate()
        except (psycopg.Error, OSError):
            found = None
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
