"""Publish through the queue: per-entry validation, dedupe, device inference, invocations, both answer shapes."""

from __future__ import annotations

import threading

from tests.support.jobs import wait_for_job

OLD = {"X-Roboto-Api-Version": "2026-05-20"}
NEW = {"X-Roboto-Api-Version": "2026-10-06"}


def publish(tenant, body: dict, headers: dict | None = None, token: str | None = None):
    h = dict(headers or OLD)
    if token:
        h["Authorization"] = f"Bearer {token}"
    with tenant.client(**h) as c:
        return c.post("/v1/metrics", json=body)


def test_repeated_names_last_value_wins(tenant):
    ss = tenant.session()
    body = {
        "session_id": ss,
        "device_id": None,
        "metrics": [{"name": "a", "value": 1.0}, {"name": "b", "value": 2.0}, {"name": "a", "value": 3.0}],
    }
    old = publish(tenant, body).json()["data"]
    assert [(m["name"], m["value"]) for m in old["succeeded"]] == [("a", 3.0), ("b", 2.0)]
    new = publish(tenant, body, NEW).json()["data"]
    assert [r["data"]["value"] for r in new["responses"]] == [3.0, 2.0, 3.0]
    assert all(r["error"] is None for r in new["responses"])
    rows = tenant.sql(
        "SELECT d.name, v.value FROM metric_values v JOIN metric_definitions d USING (metric_id) "
        "WHERE v.org_id = %s ORDER BY 1",
        tenant.org_id,
    )
    assert rows == [("a", 3.0), ("b", 2.0)]


def test_new_shape_errors_are_envelopes_in_request_order(tenant):
    ss = tenant.session()
    r = publish(
        tenant,
        {
            "session_id": ss,
            "device_id": None,
            "metrics": [
                {"name": "bad/name", "value": 1.0},
                {"name": "ok", "value": 5.0},
                {"name": "n", "value": None},
                {"name": "x" * 300, "value": 1.0},
            ],
        },
        NEW,
    )
    responses = r.json()["data"]["responses"]
    assert [x["data"] is not None for x in responses] == [False, True, False, False]
    assert responses[0]["error"] == {
        "error": {
            "error_code": "RobotoInvalidRequestException",
            "message": "Metric name 'bad/name' contains characters outside [A-Za-z0-9-._~]",
        }
    }
    assert responses[2]["error"]["error"]["message"] == "Value for metric 'n' is not finite"
    assert "longer than 255" in responses[3]["error"]["error"]["message"]


def test_device_inference_zero_one_two(tenant):
    none_attached = tenant.session()
    one = tenant.session(devices=(tenant.device("dv_one"),))
    two = tenant.session(devices=(tenant.device("dv_x"), tenant.device("dv_y")))
    entry = [{"name": "m", "value": 1.0}]
    assert (
        publish(tenant, {"session_id": none_attached, "device_id": {}, "metrics": entry}).json()["data"]["succeeded"][
            0
        ]["device_id"]
        is None
    )
    assert (
        publish(tenant, {"session_id": one, "metrics": entry}).json()["data"]["succeeded"][0]["device_id"] == "dv_one"
    )
    r = publish(tenant, {"session_id": two, "device_id": {}, "metrics": entry})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "error_code": "RobotoInvalidRequestException",
            "message": f"Session '{two}' has 2 attached devices; device_id must be given explicitly",
        }
    }
    r = publish(tenant, {"session_id": two, "device_id": "dv_y", "metrics": entry})
    assert r.json()["data"]["succeeded"][0]["device_id"] == "dv_y"
    r = publish(tenant, {"session_id": two, "device_id": "dv_unknown", "metrics": entry})
    assert r.status_code == 404 and r.json()["error"]["error_code"] == "RobotoNotFoundException"
    # nothing was written by the refused requests
    assert tenant.sql("SELECT count(*) FROM metric_values WHERE session_id = %s", two) == [(1,)]


def test_invocation_bound_token_links_rows_and_latest_publish_wins_entirely(tenant):
    ss = tenant.session()
    action_token = tenant.token_for("action@example.com", invocation_id="iv_123")
    r = publish(
        tenant, {"session_id": ss, "device_id": None, "metrics": [{"name": "m", "value": 1.0}]}, token=action_token
    )
    rec = r.json()["data"]["succeeded"][0]
    assert (rec["invocation_id"], rec["published_by"]) == ("iv_123", "action@example.com")
    r = publish(tenant, {"session_id": ss, "device_id": None, "metrics": [{"name": "m", "value": 2.0}]})
    rec = r.json()["data"]["succeeded"][0]
    assert (rec["value"], rec["invocation_id"], rec["published_by"]) == (2.0, None, tenant.principal)


def test_shape_errors_are_400_envelopes(tenant):
    ss = tenant.session()
    for body in (
        {"session_id": ss, "metrics": [{"name": "a", "value": "1"}]},
        {"session_id": ss, "metrics": [{"name": "a", "value": True}]},
        {"session_id": ss, "metrics": "nope"},
        {"session_id": ss, "device_id": {"x": 1}, "metrics": []},
        {"metrics": []},
        [1, 2],
    ):
        r = publish(tenant, body)
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()["error"]) == {"error_code", "message"}
    with tenant.client() as c:
        r = c.post("/v1/metrics", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "Request body is not valid JSON"


def test_unauthorized_and_other_org(tenant, other_tenant):
    ss = tenant.session()
    with tenant.client(Authorization="Bearer nope") as c:
        r = c.post("/v1/metrics", json={"session_id": ss, "metrics": []})
    assert r.status_code == 401 and r.json()["error"]["error_code"] == "RobotoUnauthorizedException"
    # the other org cannot see, or write to, this org's session
    r = publish(other_tenant, {"session_id": ss, "metrics": [{"name": "m", "value": 1.0}]})
    assert r.status_code == 404
    r = publish(other_tenant, {"session_id": ss, "metrics": []}, {**OLD, "X-Roboto-Org-Id": tenant.org_id})
    assert r.status_code == 404
    with other_tenant.client() as c:
        assert c.get(f"/v1/metrics/session/{ss}/").status_code == 404


def test_prefer_respond_async_returns_the_job(tenant):
    ss = tenant.session()
    with tenant.client(Prefer="respond-async") as c:
        r = c.post("/v1/metrics", json={"session_id": ss, "device_id": None, "metrics": [{"name": "m", "value": 1}]})
        assert r.status_code == 202
        job = r.json()["data"]
        assert job["lane"] == "interactive" and job["counts"]["total"] == 1
        job = wait_for_job(c, job["job_id"])
    assert job["state"] == "succeeded" and job["counts"] == {"total": 1, "succeeded": 1, "failed": 0, "pending": 0}


def test_concurrent_publishes_to_one_key_leave_one_row(tenant):
    ss = tenant.session()
    errors: list[str] = []

    def worker(i: int) -> None:
        r = publish(
            tenant,
            {
                "session_id": ss,
                "device_id": None,
                "metrics": [{"name": "shared", "value": float(i)}, {"name": f"new.{i % 3}", "value": 1.0}],
            },
        )
        if r.status_code != 200:
            errors.append(r.text)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert tenant.sql(
        "SELECT count(*) FROM metric_values v JOIN metric_definitions d USING (metric_id) "
        "WHERE d.org_id = %s AND d.name = 'shared'",
        tenant.org_id,
    ) == [(1,)]
    assert tenant.sql("SELECT count(*) FROM metric_definitions WHERE org_id = %s", tenant.org_id) == [(4,)]


def test_session_time_change_updates_metric_rows(tenant):
    ss = tenant.session()
    publish(tenant, {"session_id": ss, "device_id": None, "metrics": [{"name": "m", "value": 1.0}]})
    with tenant.client() as c:
        r = c.put(f"/v1/sessions/{ss}", json={"start_time_ns": 10, "end_time_ns": 20})
        assert r.status_code == 200, r.text
        recs = c.get(f"/v1/metrics/session/{ss}/").json()["data"]
    assert [(m["min_timestamp_ns"], m["max_timestamp_ns"]) for m in recs] == [(10, 20)]
