"""Downloads: every failure of a job (CSV or NDJSON), and the metric values a metrics page shows (CSV).
Written as they are read, so a job with a million failures streams instead of filling memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple

from api_shim.console.views import FailureRow
from ingest import results
from ingest.db import transaction

BATCH = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str | None) -> str:
    """A text cell that a spreadsheet will not run as a formula (`=cmd|...` is written `'=cmd|...`)."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_lines(header: list[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow(row)
        if count % BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


FAILURE_COLUMNS = ["request_index", "entry_index", "session_id", "name", "error_code", "message"]


def failure_fields(item: results.Item) -> list:
    """A failed item's FAILURE_COLUMNS, the same in both downloads (CSV cells are then made formula-safe)."""
    return list(astuple(FailureRow.of(item)))


def _failures(job_id: str) -> Iterator[results.Item]:
    with transaction() as conn:
        yield from results.failed_items(conn, job_id)


def failures_csv(job_id: str) -> Iterator[str]:
    rows = ([c if isinstance(c, int) else csv_text(c) for c in failure_fields(item)] for item in _failures(job_id))
    return csv_lines(FAILURE_COLUMNS, rows)


def failures_ndjson(job_id: str) -> Iterator[str]:
    """One JSON object per failed item, with the CSV's column names as keys."""
    lines: list[str] = []
    for item in _failures(job_id):
        lines.append(json.dumps(dict(zip(FAILURE_COLUMNS, failure_fields(item), strict=True))) + "\n")
        if len(lines) == BATCH:
            yield "".join(lines)
            lines = []
    yield "".join(lines)
