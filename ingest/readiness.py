"""Readiness checks shared by `GET /readyz` and `metrics-ingest status`: PostgreSQL answers, the schema is at the
newest migration, Redis answers, and a worker sent a heartbeat recently. Results name the check and say ok or
failed, nothing more (no hosts, no error text): the answer is served without auth."""

from __future__ import annotations

from functools import lru_cache

import structlog
from sqlalchemy import text

from ingest.config import Settings
from ingest.db import schema_current, schema_head, transaction

log = structlog.get_logger(__name__)

CHECKS = ("database", "schema", "broker", "workers")


@lru_cache(maxsize=1)
def newest_schema() -> str:
    return schema_head()


@lru_cache(maxsize=4)
def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def broker_answers(url: str | None) -> bool:
    if not url:
        return False
    try:
        return bool(redis_client(url).ping())
    except Exception as err:
        log.warning("readiness.broker_failed", error=str(err).splitlines()[0] if str(err) else repr(err))
        return False


def workers_alive(conn, alive_s: float) -> int:
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM worker_heartbeats WHERE NOT stopped "
                "AND last_seen > now() - make_interval(secs => :s)"
            ),
            {"s": alive_s},
        ).scalar()
    )


def run_checks(settings: Settings) -> dict[str, bool]:
    results = dict.fromkeys(CHECKS, False)
    try:
        with transaction() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 2000"))
            conn.execute(text("SELECT 1"))
            results["database"] = True
            results["schema"] = schema_current(conn) == newest_schema()
            results["workers"] = workers_alive(conn, settings.worker_alive_s) > 0
    except Exception as err:
        log.warning("readiness.database_failed", error=str(err).splitlines()[0] if str(err) else repr(err))
    results["broker"] = broker_answers(settings.broker_url)
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
