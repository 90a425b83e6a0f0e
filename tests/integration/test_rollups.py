"""Rollups end to end: migration 0007 both ways (an upgraded database marks its stored values dirty, so aggregates
are exact at once), `metrics-ingest rollups refresh --wait` drains the marks, the backlog shows in `status --json`
and /metrics, and aggregates over the API are served from cells after a refresh (same answer as before it)."""

from __future__ import annotations

import json

import httpx
import psycopg
from alembic import command

from ingest.config import to_libpq_url, to_sqlalchemy_url
from ingest.db import alembic_config, migrate
from tests.support.cli import run_cli
from tests.support.metric_rows import Row, define, insert

S = 1_000_000_000
H = 3600 * S
DAY = 24 * H
T0 = 1_717_200_000 * S  # 2024-06-01T00:00Z


def _values(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO orgs (org_id) VALUES ('og_r')")
    conn.execute(
        "INSERT INTO metric_definitions (metric_id, org_id, name, created_by, modified_by) "
        "VALUES ('mt_r', 'og_r', 'r', 'p', 'p')"
    )
    for i in range(6):
        conn.execute(
            "INSERT INTO metric_values (metric_id, session_id, org_id, value, session_start_ns, session_end_ns, "
            "published_by, published) VALUES ('mt_r', %s, 'og_r', %s, %s, %s, 'p', now())",
            (f"ss_{i}", float(i), T0 + i * DAY, T0 + i * DAY + H),
        )


def test_migration_0007_both_ways(servers):
    url = servers.new_database()
    cfg = alembic_config(to_sqlalchemy_url(url))
    command.downgrade(cfg, "0006")
    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('metric_rollups'), to_regclass('rollup_dirty')").fetchone() == (
            None,
            None,
        )
        _values(conn)
        conn.execute("UPDATE metric_values SET value = value + 1")  # no trigger left behind
        conn.execute("DELETE FROM metric_values WHERE session_id = 'ss_5'")
    migrate(url)
    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        days = conn.execute("SELECT DISTINCT metric_id, day FROM rollup_dirty ORDER BY day").fetchall()
        assert days == [("mt_r", T0 // DAY + i) for i in range(5)]  # every stored day, marked by the upgrade
        assert conn.execute("SELECT count(*) FROM metric_rollups").fetchone() == (0,)
        conn.execute("DELETE FROM metric_definitions WHERE metric_id = 'mt_r'")  # cascades; marks, never fails
    command.downgrade(cfg, "0006")
    migrate(url)


def test_refresh_drains_and_aggregates_stay_the_same(tenant):
    name = "roll.e2e"
    metric_id = define(tenant, name)
    insert(
        tenant,
        metric_id,
        [Row(f"ss_{i}", float(i % 7), T0 + i * H // 3, T0 + i * H // 3 + 600 * S, f"d{i % 3}") for i in range(300)],
    )
    body = {
        "name": name,
        "period": "daily",
        "aggregation": "mean",
        "start_time_ns": T0,
        "end_time_ns": T0 + 5 * DAY,
        "time_zone": "Asia/Kolkata",
        "group_by": "device.device_id",
    }
    with tenant.client() as c:
        before = c.post("/v1/metrics/aggregate", json=body).json()["data"]
        count_before = c.post(
            "/v1/metrics/query", json={"name": name, "start_time_ns": T0, "end_time_ns": T0 + 5 * DAY}
        ).json()["data"]["total_count"]
    assert tenant.sql("SELECT count(*) FROM rollup_dirty WHERE metric_id = %s", metric_id)[0][0] > 0
    done = run_cli("rollups", "refresh", "--wait")
    assert done.returncode == 0, done.stderr
    assert "dirty rows left: 0" in done.stdout
    assert tenant.sql("SELECT count(*) FROM rollup_dirty WHERE metric_id = %s", metric_id)[0][0] == 0
    assert tenant.sql("SELECT count(*) FROM metric_rollups WHERE metric_id = %s", metric_id)[0][0] > 0
    with tenant.client() as c:
        after = c.post("/v1/metrics/aggregate", json=body).json()["data"]
        count_after = c.post(
            "/v1/metrics/query", json={"name": name, "start_time_ns": T0, "end_time_ns": T0 + 5 * DAY}
        ).json()["data"]["total_count"]
    assert count_after == count_before == 300
    assert [(r["start_time"], r["group_key"], r["total"]) for r in after["records"]] == [
        (r["start_time"], r["group_key"], r["total"]) for r in before["records"]
    ]
    for a, b in zip(after["records"], before["records"], strict=True):
        assert abs(a["value"] - b["value"]) <= 1e-9 * max(1.0, abs(b["value"]))
    status = run_cli("status", "--json")
    assert json.loads(status.stdout)["rollups"]["dirty_rows"] is not None
    scraped = httpx.get(tenant.api_url + "/metrics", timeout=10)
    assert "metrics_ingest_rollup_dirty_rows " in scraped.text
