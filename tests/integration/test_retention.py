"""Job retention: a done chunk's payload is dropped (its results still work), finished jobs are purged by the
workers' sweep after METRICS_INGEST_JOB_RETENTION and on demand by `metrics-ingest jobs purge`; a purged job is a
404 like an unknown one; running jobs, metric values and definitions are never touched."""

from __future__ import annotations

import re

import httpx

from ingest.db import transaction
from ingest.payload import PublishRequest
from tests.support.cli import run_cli
from tests.support.jobs import store_job, submit_job, wait_for_job
from tests.support.polling import wait_until
from tests.support.tenant import Tenant, new_tenant


def _requests(tenant: Tenant, sessions: int = 3) -> list[dict]:
    return [
        {
            "session_id": tenant.session(),
            "device_id": None,
            "metrics": [{"name": f"ret.m{j}", "value": float(j)} for j in range(4)]
            + [{"name": "bad name", "value": 1}],
        }
        for _ in range(sessions)
    ]


def _finished_job(tenant: Tenant) -> dict:
    with tenant.client() as c:
        return wait_for_job(c, submit_job(c, _requests(tenant)))


def _age(tenant: Tenant, job_id: str, days: int) -> None:
    """Make a job look as if it finished `days` ago (the clock is the database's)."""
    tenant.sql(
        "UPDATE jobs SET created = created - make_interval(days => %s), "
        "finished = finished - make_interval(days => %s) WHERE job_id = %s",
        days,
        days,
        job_id,
    )


def _purge(stack, *args: str) -> tuple[int, int]:
    done = run_cli("jobs", "purge", *args, env=stack.env())
    assert done.returncode == 0, done.stderr
    found = re.search(r"purged (\d+) job\(s\) and (\d+) chunk\(s\)", done.stdout)
    assert found, done.stdout
    return int(found.group(1)), int(found.group(2))


def _not_found(client: httpx.Client, job_id: str) -> dict:
    response = client.get(f"/v1/metrics/jobs/{job_id}")
    assert response.status_code == 404
    body = response.json()
    body["error"]["message"] = body["error"]["message"].replace(job_id, "<id>")
    return body


def test_done_chunks_drop_their_payload_and_keep_their_results(tenant):
    job = _finished_job(tenant)
    assert job["counts"] == {"total": 15, "succeeded": 12, "failed": 3, "pending": 0}
    kept = tenant.sql("SELECT payload IS NULL, item_keys IS NOT NULL FROM job_chunks WHERE job_id = %s", job["job_id"])
    assert kept == [(True, True)]
    with tenant.client() as c:
        items = c.get(f"/v1/metrics/jobs/{job['job_id']}/results").json()["data"]["items"]
        failed = c.get(f"/v1/metrics/jobs/{job['job_id']}/results", params={"status": "failed"}).json()["data"]
    assert len(items) == 15
    assert [(i["request_index"], i["entry_index"], i["name"]) for i in failed["items"]] == [
        (r, 4, "bad name") for r in range(3)
    ]
    ok = [i for i in items if i["status"] == "succeeded"]
    assert {i["name"] for i in ok} == {f"ret.m{j}" for j in range(4)}
    assert all(i["record"]["value"] == float(i["entry_index"]) for i in ok)


def test_purge_removes_old_finished_jobs_only(stack, tenant):
    other = new_tenant(stack.database_url, stack.url)
    old, recent, others = _finished_job(tenant), _finished_job(tenant), _finished_job(other)
    for job in (old, others):
        _age(tenant, job["job_id"], 3)
    # a job accepted long ago and not finished (no worker took it yet) is never touched, however old
    with transaction() as conn:
        waiting = store_job(conn, tenant, [PublishRequest(tenant.session(), None, [("ret.waiting", 1.0)])], 5000)
    tenant.sql("UPDATE jobs SET created = now() - interval '30 days' WHERE job_id = %s", waiting)
    # no message was sent: keep the sweeper from sending one while the test runs
    tenant.sql("UPDATE job_chunks SET enqueued_at = now() + interval '1 hour' WHERE job_id = %s", waiting)
    values_before = tenant.sql("SELECT count(*) FROM metric_values WHERE org_id = %s", tenant.org_id)

    assert _purge(stack, "--older-than", "2d", "--org", tenant.org_id) == (1, 1)
    assert _purge(stack, "--older-than", "2d", "--org", tenant.org_id) == (0, 0)  # nothing left: still exit 0

    with tenant.client() as c:
        assert _not_found(c, old["job_id"]) == _not_found(c, "jb_doesnotexist")
        assert c.get(f"/v1/metrics/jobs/{old['job_id']}/results").status_code == 404
        assert c.get(f"/v1/metrics/jobs/{recent['job_id']}").status_code == 200
        assert c.get(f"/v1/metrics/jobs/{waiting}").status_code == 200
        listed = {j["job_id"] for j in c.get("/v1/metrics/jobs").json()["data"]["items"]}
    assert old["job_id"] not in listed and recent["job_id"] in listed
    with other.client() as c:
        assert c.get(f"/v1/metrics/jobs/{others['job_id']}").status_code == 200  # another org's (--org)
    assert tenant.sql("SELECT count(*) FROM metric_values WHERE org_id = %s", tenant.org_id) == values_before
    assert tenant.sql("SELECT count(*) FROM metric_definitions WHERE org_id = %s", tenant.org_id) == [(4,)]
    assert tenant.sql("SELECT count(*) FROM job_chunks WHERE job_id = %s", old["job_id"]) == [(0,)]
    tenant.sql("DELETE FROM jobs WHERE job_id = %s", waiting)  # not left in the shared stack's backlog


def test_purge_of_an_unknown_org_and_bad_duration_are_one_line(stack):
    unknown = run_cli("jobs", "purge", "--older-than", "1d", "--org", "og_nope_purge", env=stack.env())
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "metrics-ingest: Organization 'og_nope_purge' not found"
    bad = run_cli("jobs", "purge", "--older-than", "7 days", env=stack.env())
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--older-than" in bad.stderr
    assert "45s, 30m, 12h or 7d" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_retention_setting_fails_at_start_with_one_line(stack):
    bad = run_cli("migrate", env={**stack.env(), "METRICS_INGEST_JOB_RETENTION": "a week"})
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "METRICS_INGEST_JOB_RETENTION" in bad.stderr and "7d" in bad.stderr and "Traceback" not in bad.stderr


def test_the_workers_sweep_purges_expired_jobs(make_stack):
    stack = make_stack(JOB_RETENTION="2s", PURGE_INTERVAL_S="1")
    stack.start_worker(concurrency=1)
    tenant = new_tenant(stack.database_url, stack.url)
    job = _finished_job(tenant)
    with tenant.client() as c:
        wait_until(
            lambda: c.get(f"/v1/metrics/jobs/{job['job_id']}").status_code == 404, 60, "the sweep to purge the job"
        )
    assert tenant.sql("SELECT count(*) FROM job_chunks") == [(0,)]
    assert tenant.sql("SELECT count(*) FROM metric_values WHERE org_id = %s", tenant.org_id) == [(12,)]
    assert '"retention.purged"' in stack.logs()


def test_purge_works_in_bounded_batches(stack, monkeypatch):
    from ingest import retention

    tenant = new_tenant(stack.database_url, stack.url)
    for n in range(5):
        tenant.sql(
            "INSERT INTO jobs (job_id, org_id, lane, state, source, principal, total, chunks_total, finished) "
            "VALUES (%s, %s, 'bulk', 'succeeded', 'jobs', 'p', 0, 3, now() - interval '2 days')",
            f"jb_batch{n}_{tenant.org_id}",
            tenant.org_id,
        )
        for seq in range(3):
            tenant.sql(
                "INSERT INTO job_chunks (job_id, seq, lane, state, first_request, request_count, item_count) "
                "VALUES (%s, %s, 'bulk', 'done', 0, 0, 0)",
                f"jb_batch{n}_{tenant.org_id}",
                seq,
            )
    monkeypatch.setattr(retention, "BATCH_CHUNKS", 7)  # two jobs of three chunks per transaction
    purged, more = retention.purge(86400, tenant.org_id, max_batches=1)
    assert (purged.jobs, purged.chunks, more) == (2, 6, True)
    purged, more = retention.purge(86400, tenant.org_id)
    assert (purged.jobs, purged.chunks, more) == (3, 9, False)
