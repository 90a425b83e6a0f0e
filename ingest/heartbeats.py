"""Worker heartbeats: each worker process's sweeper writes one row every few seconds; readiness, Prometheus and the
status report count the workers alive from them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_ALIVE = "NOT stopped AND last_seen > now() - make_interval(secs => :alive)"


def beat(conn: Connection, worker_id: str, hostname: str, pid: int, lanes: list[str]) -> None:
    conn.execute(
        text(
            "INSERT INTO worker_heartbeats (worker_id, hostname, pid, lanes) VALUES (:w, :h, :p, :l) "
            "ON CONFLICT (worker_id) DO UPDATE SET last_seen = now(), stopped = false"
        ),
        {"w": worker_id, "h": hostname, "p": pid, "l": lanes},
    )
    conn.execute(text("DELETE FROM worker_heartbeats WHERE last_seen < now() - interval '1 day'"))


def mark_stopped(conn: Connection, worker_id: str) -> None:
    conn.execute(text("UPDATE worker_heartbeats SET stopped = true WHERE worker_id = :w"), {"w": worker_id})


def alive_count(conn: Connection, alive_s: float) -> int:
    """Workers whose last heartbeat is newer than `alive_s` seconds."""
    found = conn.execute(text(f"SELECT count(*) FROM worker_heartbeats WHERE {_ALIVE}"), {"alive": alive_s})
    return int(found.scalar() or 0)


def recent(conn: Connection, alive_s: float, limit: int) -> list[dict]:
    """Workers seen in the last hour, newest heartbeat first, each with its age and whether it counts as alive."""
    rows = conn.execute(
        text(
            "SELECT worker_id, hostname, pid, lanes, started, last_seen, "
            "EXTRACT(EPOCH FROM now() - last_seen) AS age FROM worker_heartbeats WHERE NOT stopped "
            "AND last_seen > now() - interval '1 hour' ORDER BY last_seen DESC LIMIT :n"
        ),
        {"n": limit},
    )
    return [
        {
            "worker_id": r.worker_id,
            "hostname": r.hostname,
            "pid": r.pid,
            "lanes": list(r.lanes),
            "started": r.started.isoformat(),
            "last_seen": r.last_seen.isoformat(),
            "seconds_since_heartbeat": round(float(r.age), 1),
            "alive": float(r.age) <= alive_s,
        }
        for r in rows
    ]
