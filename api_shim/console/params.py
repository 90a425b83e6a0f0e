"""Positions that travel in console URLs, checked on the way in (a garbled one is a 400, never a 500)."""

from __future__ import annotations

import re
from datetime import datetime

from ingest.errors import InvalidRequest

_POSITION = re.compile(r"^(\d{1,9})-(\d{1,9})$")
_JOB_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def parse_position(text: str) -> tuple[int, int]:
    """`3-120` -> (chunk seq 3, offset 120): where a page of a job's failures starts."""
    match = _POSITION.match(text)
    if match is None:
        raise InvalidRequest(f"from must look like 3-120 (a position in the job's items), not '{text}'")
    return int(match[1]), int(match[2])


def jobs_cursor(row: dict) -> str:
    """The listing position after `row` (jobs are listed newest first by (created, job_id))."""
    return f"{row['created'].isoformat()}~{row['job_id']}"


def parse_jobs_cursor(text: str) -> tuple[str, str]:
    created, _, job_id = text.rpartition("~")
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or not _JOB_ID.match(job_id):
        raise InvalidRequest(f"before is not a position in the jobs listing: '{text}'")
    return when.isoformat(), job_id
