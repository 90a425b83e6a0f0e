"""Stored metric values written straight into PostgreSQL, for read-path tests that need many or exact rows."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from ingest.config import to_libpq_url
from ingest.reads import DAY_NS

PUBLISHED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Row:
    session_id: str
    value: float
    start_ns: int
    end_ns: int
    device_id: str | None = None
    invocation_id: str | None = None
    published: datetime = PUBLISHED


def define(tenant, name: str) -> str:
    metric_id = "mt_" + secrets.token_hex(8)
    tenant.sql(
        "INSERT INTO metric_definitions (metric_id, org_id, name, created_by, modified_by) VALUES (%s, %s, %s, %s, %s)",
        metric_id,
        tenant.org_id,
        name,
        tenant.principal,
        tenant.principal,
    )
    return metric_id


def insert(tenant, metric_id: str, rows: list[Row]) -> None:
    """COPY the rows, and mark their (metric, UTC day) pairs for the rollups as every writer of metric_values must
    (the worker's upsert does it in ingest.rollups.mark_written)."""
    sql = (
        "COPY metric_values (metric_id, session_id, org_id, value, device_id, invocation_id, session_start_ns, "
        "session_end_ns, published_by, published) FROM STDIN"
    )
    days = sorted({t // DAY_NS for r in rows for t in (r.start_ns, r.end_ns)})
    with psycopg.connect(to_libpq_url(tenant.database_url)) as conn, conn.cursor() as cur:  # one transaction
        with cur.copy(sql) as copy:
            for r in rows:
                copy.write_row(
                    (
                        metric_id,
                        r.session_id,
                        tenant.org_id,
                        r.value,
                        r.device_id,
                        r.invocation_id,
                        r.start_ns,
                        r.end_ns,
                        tenant.principal,
                        r.published,
                    )
                )
        cur.execute("INSERT INTO rollup_dirty (metric_id, day) SELECT %s, unnest(%s::bigint[])", (metric_id, days))
