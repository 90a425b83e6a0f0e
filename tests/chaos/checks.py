"""Assertions shared by the chaos scenarios: a job reached a terminal state with exactly the expected outcomes."""

from __future__ import annotations

import secrets

from tests.support.tenant import Tenant


def job_requests(session_id: str, requests: int, entries: int, prefix: str = "m") -> list[dict]:
    """`requests` publish requests of `entries` entries each, on distinct metric names (valid values)."""
    tag = secrets.token_hex(2)
    return [
        {
            "session_id": session_id,
            "device_id": None,
            "metrics": [{"name": f"{prefix}{tag}.r{r}.e{e}", "value": float(r * entries + e)} for e in range(entries)],
        }
        for r in range(requests)
    ]


def job_row(tenant: Tenant, job_id: str) -> dict:
    rows = tenant.sql(
        "SELECT state, total, succeeded, failed, chunks_total FROM jobs WHERE job_id = %s AND org_id = %s",
        job_id,
        tenant.org_id,
    )
    state, total, succeeded, failed, chunks = rows[0]
    return {"state": state, "total": total, "succeeded": succeeded, "failed": failed, "chunks": chunks}


def assert_all_stored(tenant: Tenant, job_id: str, requests: list[dict]) -> None:
    """Every item succeeded, the counts add up, and there is exactly one row per (metric, session)."""
    row = job_row(tenant, job_id)
    expected = sum(len(r["metrics"]) for r in requests)
    assert row["total"] == expected, row
    assert (row["succeeded"], row["failed"]) == (expected, 0), row
    names = {m["name"] for r in requests for m in r["metrics"]}
    session_ids = {r["session_id"] for r in requests}
    stored = tenant.sql(
        "SELECT d.name, v.session_id, v.value FROM metric_values v JOIN metric_definitions d "
        "ON d.metric_id = v.metric_id WHERE v.org_id = %s AND v.session_id = ANY(%s) AND d.name = ANY(%s)",
        tenant.org_id,
        list(session_ids),
        list(names),
    )
    keys = [(n, s) for n, s, _ in stored]
    assert len(keys) == len(set(keys)), "more than one row for a (metric, session)"
    assert len(keys) == expected
    want = {(m["name"], r["session_id"]): m["value"] for r in requests for m in r["metrics"]}
    assert {(n, s): v for n, s, v in stored} == want
