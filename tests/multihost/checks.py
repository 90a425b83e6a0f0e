"""What every multihost scenario asserts at its end: each accepted job terminal with exact per-item outcomes, one row
per (metric, session) with the value sent, every chunk committed once, and the work counters adding up."""

from __future__ import annotations

from tests.chaos.checks import assert_all_stored
from tests.support.tenant import Tenant

FULL_RESULTS_UP_TO = 20_000  # items; a larger job's results are read as its failures and a first page


def all_results(tenant: Tenant, job_id: str, status: str | None = None, pages: int | None = None) -> list[dict]:
    items: list[dict] = []
    token = None
    with tenant.client() as client:
        for _ in range(pages or 1_000_000):
            params: dict = {"max_results": 10_000}
            if status:
                params["status"] = status
            if token:
                params["page_token"] = token
            page = client.get(f"/v1/metrics/jobs/{job_id}/results", params=params)
            assert page.status_code == 200, page.text
            items += page.json()["data"]["items"]
            token = page.json()["data"]["next_token"]
            if not token:
                break
    return items


def assert_job_exact(tenant: Tenant, job_id: str, requests: list[dict]) -> None:
    """The job succeeded item by item: stored rows (one per key, the values sent), its per-item results (each
    (request, entry) once, succeeded, with the value sent), and its chunks (each done and committed exactly once,
    their counts adding up to the job's). The results of a job over `FULL_RESULTS_UP_TO` items are read as its
    failures (none) and its first page of successes (reading 200,000 results costs the API half a minute)."""
    assert_all_stored(tenant, job_id, requests)
    expected = {(r, e): m["value"] for r, req in enumerate(requests) for e, m in enumerate(req["metrics"])}
    if len(expected) <= FULL_RESULTS_UP_TO:
        items = all_results(tenant, job_id)
        positions = [(i["request_index"], i["entry_index"]) for i in items]
        assert len(positions) == len(set(positions)) == len(expected), "an outcome missing or written twice"
    else:
        assert all_results(tenant, job_id, status="failed") == []
        items = all_results(tenant, job_id, pages=1)
        positions = [(i["request_index"], i["entry_index"]) for i in items]
        assert len(positions) == len(set(positions)) == 10_000
    assert {i["status"] for i in items} == {"succeeded"}
    assert {p: i["record"]["value"] for p, i in zip(positions, items, strict=True)} == {
        p: expected[p] for p in positions
    }
    ((chunks, done, committed_once, items_counted, total),) = tenant.sql(
        "SELECT count(*), count(*) FILTER (WHERE c.state = 'done'), count(*) FILTER (WHERE c.attempts = 1), "
        "sum(c.succeeded + c.failed), max(j.total) FROM job_chunks c JOIN jobs j USING (job_id) WHERE job_id = %s",
        job_id,
    )
    assert chunks == done == committed_once, f"{chunks} chunks, {done} done, {committed_once} committed once"
    assert items_counted == total == len(expected)
    ((chunks_total, chunks_done),) = tenant.sql("SELECT chunks_total, chunks_done FROM jobs WHERE job_id = %s", job_id)
    assert chunks_total == chunks_done == chunks


def items_counted(tenant: Tenant) -> int:
    """Items the workers' telemetry counted as processed, over the whole database (every lane and outcome)."""
    ((counted,),) = tenant.sql("SELECT COALESCE(sum(value), 0) FROM telemetry_counters WHERE series = 'items'")
    return int(counted)
