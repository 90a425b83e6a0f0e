"""The native job API: JSON and NDJSON jobs, idempotency keys, polling, paginated per-item results."""

from __future__ import annotations

import json

from tests.support.jobs import wait_for_job


def many_sessions(tenant, n: int) -> list[str]:
    return [tenant.session() for _ in range(n)]


def test_job_with_many_sessions_and_results(tenant):
    sessions = many_sessions(tenant, 30)
    requests = [
        {
            "session_id": s,
            "device_id": None,
            "metrics": [{"name": f"m{j}", "value": float(i * 10 + j)} for j in range(5)]
            + [{"name": "bad name", "value": 1.0}],
        }
        for i, s in enumerate(sessions)
    ]
    requests.append({"session_id": "ss_nope", "metrics": [{"name": "m0", "value": 1.0}, {"name": "m1", "value": 2.0}]})
    with tenant.client() as c:
        r = c.post("/v1/metrics/jobs", json={"requests": requests})
        assert r.status_code == 202, r.text
        job = wait_for_job(c, r.json()["data"]["job_id"])
        assert job["state"] == "completed_with_errors"
        assert job["counts"] == {"total": 182, "succeeded": 150, "failed": 32, "pending": 0}
        assert job["started"] and job["finished"] and job["error"] is None

        failed = c.get(f"/v1/metrics/jobs/{job['job_id']}/results", params={"status": "failed"}).json()["data"]
        assert failed["next_token"] is None and len(failed["items"]) == 32
        missing = [i for i in failed["items"] if i["session_id"] == "ss_nope"]
        assert [(i["request_index"], i["entry_index"]) for i in missing] == [(30, 0), (30, 1)]
        assert missing[0]["error"] == {
            "error_code": "RobotoNotFoundException",
            "message": "Session 'ss_nope' not found",
        }
        assert {i["name"] for i in failed["items"] if i["session_id"] != "ss_nope"} == {"bad name"}

        # page through the successes, 40 at a time
        seen, token = [], None
        while True:
            params = {"status": "succeeded", "max_results": 40}
            if token:
                params["page_token"] = token
            page = c.get(f"/v1/metrics/jobs/{job['job_id']}/results", params=params).json()["data"]
            seen += page["items"]
            token = page["next_token"]
            if not token:
                break
        assert len(seen) == 150
        assert len({(i["request_index"], i["entry_index"]) for i in seen}) == 150
        first = seen[0]
        assert first["record"]["session_id"] == sessions[0] and first["record"]["value"] == 0.0

        # a token from another listing is refused with a 400
        r = c.get(f"/v1/metrics/jobs/{job['job_id']}/results", params={"status": "failed", "page_token": token or "x"})
        assert r.status_code == 400


def test_idempotency_key(tenant):
    ss = tenant.session()
    body = {"requests": [{"session_id": ss, "device_id": None, "metrics": [{"name": "m", "value": 1.0}]}]}
    with tenant.client(**{"Idempotency-Key": "backfill-1"}) as c:
        first = c.post("/v1/metrics/jobs", json=body)
        again = c.post("/v1/metrics/jobs", json=body)
        other = c.post("/v1/metrics/jobs", json={"requests": []})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["data"]["job_id"] == first.json()["data"]["job_id"]
    assert other.status_code == 409 and other.json()["error"]["error_code"] == "RobotoConflictException"


def test_ndjson_job_and_listing(tenant, other_tenant):
    sessions = many_sessions(tenant, 5)
    lines = "\n".join(json.dumps({"session_id": s, "metrics": [{"name": "x", "value": 1.5}]}) for s in sessions)
    with tenant.client() as c:
        r = c.post("/v1/metrics/jobs", content=lines.encode(), headers={"Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text
        job = wait_for_job(c, r.json()["data"]["job_id"])
        assert job["lane"] == "bulk" and job["state"] == "succeeded" and job["counts"]["succeeded"] == 5
        bad = c.post(
            "/v1/metrics/jobs",
            content=b'{"session_id": "a", "metrics": []}\n{oops\n',
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert bad.status_code == 400 and "line 2" in bad.json()["error"]["message"]
        # the refused upload stored nothing: the org has exactly one job
        listed = c.get("/v1/metrics/jobs", params={"max_results": 1}).json()["data"]
        assert [j["job_id"] for j in listed["items"]] == [job["job_id"]] and listed["next_token"] is None
        second = c.post("/v1/metrics/jobs", json={"requests": []}).json()["data"]
        page1 = c.get("/v1/metrics/jobs", params={"max_results": 1}).json()["data"]
        page2 = c.get("/v1/metrics/jobs", params={"max_results": 1, "page_token": page1["next_token"]}).json()["data"]
        assert [j["job_id"] for j in page1["items"] + page2["items"]] == [second["job_id"], job["job_id"]]
    with other_tenant.client() as c:
        assert c.get(f"/v1/metrics/jobs/{job['job_id']}").status_code == 404
        assert c.get(f"/v1/metrics/jobs/{job['job_id']}/results").status_code == 404
        assert all(j["job_id"] != job["job_id"] for j in c.get("/v1/metrics/jobs").json()["data"]["items"])
