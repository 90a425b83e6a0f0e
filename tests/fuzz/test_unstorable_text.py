"""Regressions found by the schema fuzzer: text PostgreSQL cannot store (NUL, lone surrogates) is a 400 or a
failed entry, never a 500 and never a job that fails as a whole."""

from __future__ import annotations

import json

import pytest

from tests.support.tenant import Tenant

BAD = ["a\u0000b", "a\ud877b"]


@pytest.mark.parametrize("bad", BAD)
def test_unstorable_ids_are_a_400(tenant: Tenant, bad: str):
    cases = [
        ("/v1/metrics", {"session_id": bad, "metrics": []}),
        ("/v1/metrics", {"session_id": "s", "device_id": bad, "metrics": []}),
        ("/v1/devices", {"device_id": bad}),
        ("/v1/sessions", {"session_id": "s1", "start_time_ns": 1, "end_time_ns": 2, "device_ids": [bad]}),
    ]
    with tenant.client(**{"Content-Type": "application/json"}) as client:
        for path, body in cases:
            resp = client.post(path, content=json.dumps(body))  # ensure_ascii: sent as \\u escapes
            assert resp.status_code == 400, (path, resp.status_code, resp.text)
            assert resp.json()["error"]["error_code"] == "RobotoInvalidRequestException"


def test_metric_name_with_a_nul_fails_that_entry_alone(tenant: Tenant):
    metrics = [{"name": BAD[0], "value": 1}, {"name": "ok", "value": 2}]
    body = {"session_id": tenant.session(), "device_id": None, "metrics": metrics}
    with tenant.client(**{"Content-Type": "application/json"}) as client:
        resp = client.post("/v1/metrics", content=json.dumps(body))
    assert resp.status_code == 200, resp.text
    assert [r["name"] for r in resp.json()["data"]["succeeded"]] == ["ok"]
    assert [f["name"] for f in resp.json()["data"]["failed"]] == [BAD[0]]


def test_metric_name_that_is_not_unicode_is_a_400(tenant: Tenant):
    body = {"session_id": "s", "metrics": [{"name": BAD[1], "value": 1}]}
    with tenant.client(**{"Content-Type": "application/json"}) as client:
        resp = client.post("/v1/metrics", content=json.dumps(body))
    assert resp.status_code == 400, resp.text
    assert "metrics[0].name" in resp.json()["error"]["message"]
