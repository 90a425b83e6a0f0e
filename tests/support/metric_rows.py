"""Stored metric values written straight into PostgreSQL, for read-path tests that need many or exact rows."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from ingest.config import to_libpq_url

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
    sql = (
        "COPY metric_values (metric_id, session_id, org_id, value, device_id, invocation_id, session_start_ns, "
        "session_end_ns, published_by, published) FROM STDIN"
    )
    with (
        psycopg.connect(to_libpq_url(tenant.database_url), autocommit=True) as conn,
        conn.cursor() as cur,
        cur.copy(sql) as copy,
    ):
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
