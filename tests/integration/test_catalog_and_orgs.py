"""Native session/device routes, and org context from the Roboto headers for a token of several orgs."""

from __future__ import annotations

from tests.support.tenant import new_tenant


def test_sessions_and_devices_over_http(tenant, other_tenant):
    with tenant.client() as c:
        assert c.post("/v1/devices", json={"device_id": "dv_http"}).status_code == 201
        assert c.post("/v1/devices", json={"device_id": "dv_http"}).status_code == 409
        r = c.post(
            "/v1/sessions",
            json={"session_id": "ss_http", "start_time_ns": 100, "end_time_ns": 200, "device_ids": ["dv_http"]},
        )
        assert r.status_code == 201, r.text
        assert r.json()["data"]["device_ids"] == ["dv_http"]
        assert (
            c.post("/v1/sessions", json={"session_id": "ss_bad", "start_time_ns": 5, "end_time_ns": 1}).status_code
            == 400
        )
        assert (
            c.post(
                "/v1/sessions",
                json={"session_id": "ss_x", "start_time_ns": 1, "end_time_ns": 2, "device_ids": ["dv_nope"]},
            ).status_code
            == 404
        )
        assert c.post("/v1/sessions", json={"session_id": "ss_y"}).status_code == 400
        got = c.get("/v1/sessions/ss_http").json()["data"]
        assert (got["start_time_ns"], got["end_time_ns"]) == (100, 200)
        r = c.put("/v1/sessions/ss_http", json={"device_ids": []})
        assert r.json()["data"]["device_ids"] == []
    with other_tenant.client() as c:
        assert c.get("/v1/sessions/ss_http").status_code == 404
        assert c.get("/v1/devices/dv_http").status_code == 404


def test_token_for_two_orgs_uses_the_headers(stack):
    a = new_tenant(stack.database_url, stack.url)
    b = new_tenant(stack.database_url, stack.url)
    both = a.token_for("multi@example.com", orgs=(b.org_id,))
    ss_b = b.session()
    headers = {"Authorization": f"Bearer {both}", "X-Roboto-Api-Version": "2026-05-20"}
    body = {"session_id": ss_b, "device_id": None, "metrics": [{"name": "m", "value": 1.0}]}
    with a.client(**headers) as c:
        assert c.post("/v1/metrics", json=body).status_code == 404  # default org is a: no such session there
        r = c.post("/v1/metrics", json=body, headers={"X-Roboto-Org-Id": b.org_id})
        assert r.status_code == 200 and r.json()["data"]["succeeded"][0]["org_id"] == b.org_id
        assert c.get("/v1/metrics/definition/m").status_code == 404
        assert c.get("/v1/metrics/definition/m", headers={"X-Roboto-Resource-Owner-Id": b.org_id}).status_code == 200
        assert (
            c.get("/v1/metrics/definition/m", headers={"X-Roboto-Resource-Owner-Id": "og_elsewhere"}).status_code == 404
        )
