"""Status at a glance, the data behind `metrics-ingest status` and `GET /ops/status`: services up, backlog per
lane, workers with their last heartbeat, jobs in progress, failures in the last hour. Every query is over small or
indexed sets (active jobs, heartbeats, jobs finished in the last hour), never over the whole history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest import heartbeats, jobs, readiness, rollups
from ingest.broker_port import Broker
from ingest.config import Settings
from ingest.db import transaction
from ingest.jobs import LANES

RUNNING_JOBS_SHOWN = 20
WORKERS_SHOWN = 50
RECENT_FAILURES_SHOWN = 10


def collect(settings: Settings, broker: Broker) -> dict[str, Any]:
    checks = readiness.run_checks(settings, broker)
    status: dict[str, Any] = {
        "ready": all(checks.values()),
        "services": readiness.report(checks)["checks"],
        "lanes": [],
        "workers": [],
        "running_jobs": [],
        "failures_last_hour": {"jobs": 0, "items": 0, "recent": []},
        "rollups": {"dirty_rows": None},
    }
    queued = queue_lengths(broker) if checks["broker"] else {}
    if checks["database"] and checks["schema"]:
        with transaction() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 5000"))
            status.update(read_database(conn, settings.worker_alive_s))
    else:
        status["lanes"] = [{"lane": lane, "backlog_items": None, "active_jobs": None} for lane in LANES]
    for lane in status["lanes"]:
        lane["broker_messages"] = queued.get(lane["lane"])
    return status


def queue_lengths(broker: Broker) -> dict[str, int]:
    try:
        return broker.queue_lengths()
    except Exception:
        return {}


def read_database(conn: Connection, worker_alive_s: float) -> dict[str, Any]:
    backlog = jobs.backlog_by_lane(conn)
    idle = jobs.Backlog(0, 0)
    lanes = [
        {"lane": lane, "backlog_items": backlog.get(lane, idle).items, "active_jobs": backlog.get(lane, idle).jobs}
        for lane in sorted(set(LANES) | set(backlog))
    ]
    workers = heartbeats.recent(conn, worker_alive_s, WORKERS_SHOWN)
    running = []
    for r in conn.execute(
        text(
            "SELECT job_id, org_id, lane, state, total, succeeded, failed, chunks_total, chunks_done, created, "
            "EXTRACT(EPOCH FROM now() - created) AS age FROM jobs WHERE state IN ('queued', 'running') "
            "ORDER BY created LIMIT :n"
        ),
        {"n": RUNNING_JOBS_SHOWN},
    ):
        done = r.succeeded + r.failed
        running.append(
            {
                "job_id": r.job_id,
                "org_id": r.org_id,
                "lane": r.lane,
                "state": r.state,
                "total": r.total,
                "processed": done,
                "succeeded": r.succeeded,
                "failed": r.failed,
                "percent": round(100.0 * done / r.total, 1) if r.total else 0.0,
                "chunks": f"{r.chunks_done}/{r.chunks_total}",
                "age_s": round(float(r.age), 1),
            }
        )
    failed = conn.execute(
        text(
            "SELECT count(*) FILTER (WHERE state <> 'succeeded') AS jobs, COALESCE(sum(failed), 0) AS items "
            "FROM jobs WHERE finished > now() - interval '1 hour'"
        )
    ).one()
    recent = [
        {
            "job_id": r.job_id,
            "org_id": r.org_id,
            "lane": r.lane,
            "state": r.state,
            "failed": r.failed,
            "total": r.total,
            "error_code": r.error_code,
            "finished": r.finished.isoformat(),
        }
        for r in conn.execute(
            text(
                "SELECT job_id, org_id, lane, state, failed, total, error_code, finished FROM jobs "
                "WHERE finished > now() - interval '1 hour' AND state <> 'succeeded' "
                "ORDER BY finished DESC LIMIT :n"
            ),
            {"n": RECENT_FAILURES_SHOWN},
        )
    ]
    return {
        "lanes": lanes,
        "workers": workers,
        "running_jobs": running,
        "failures_last_hour": {"jobs": int(failed.jobs), "items": int(failed.items), "recent": recent},
        # Aggregates read these days raw until the workers' sweep recomputes them (ingest/rollups.py).
        "rollups": {"dirty_rows": rollups.backlog(conn)},
    }


def unreachable(endpoint: str) -> dict[str, Any]:
    """What `status --endpoint` reports when the API does not answer."""
    return {
        "ready": False,
        "endpoint": endpoint,
        "services": {"api": "failed", **dict.fromkeys(readiness.CHECKS, "unknown")},
        "lanes": [],
        "workers": [],
        "running_jobs": [],
        "failures_last_hour": {"jobs": None, "items": None, "recent": []},
    }
