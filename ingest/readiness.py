"""Readiness checks shared by `GET /readyz` and `metrics-ingest status`: PostgreSQL answers, the schema is at the
newest migration, the broker answers, and a worker sent a heartbeat recently. Results name the check and say ok or
failed, nothing more (no hosts, no error text): the answer is served without auth."""

from __future__ import annotations

from functools import lru_cache

import structlog
from sqlalchemy import text

from ingest import heartbeats
from ingest.broker_port import Broker
from ingest.config import Settings
from ingest.db import schema_current, schema_head, transaction

log = structlog.get_logger(__name__)

CHECKS = ("database", "schema", "broker", "workers")


@lru_cache(maxsize=1)
def newest_schema() -> str:
    return schema_head()


def run_checks(settings: Settings, broker: Broker) -> dict[str, bool]:
    results = dict.fromkeys(CHECKS, False)
    try:
        with transaction() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 2000"))
            conn.execute(text("SELECT 1"))
            results["database"] = True
            results["schema"] = schema_current(conn) == newest_schema()
            results["workers"] = heartbeats.alive_count(conn, settings.worker_alive_s) > 0
    except Exception as err:
        log.warning("readiness.database_failed", error=str(err).splitlines()[0] if str(err) else repr(err))
    results["broker"] = broker.ping()
    return results


def report(results: dict[str, bool]) -> dict:
    ready = all(results.values())
    body: dict = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: "ok" if ok else "failed" for name, ok in results.items()},
    }
    if not ready:
        body["failed"] = [name for name, ok in results.items() if not ok]
    return body
