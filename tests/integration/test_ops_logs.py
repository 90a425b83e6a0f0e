"""Secrets never reach the logs: a token used in requests of every kind is in no line the API or worker wrote."""

from __future__ import annotations

import json

import httpx

from ingest.logs import redact


def test_a_token_used_in_requests_is_in_no_log_line(stack, tenant):
    ss = tenant.session()
    headers = {"X-Roboto-Api-Version": "2026-05-20"}
    with tenant.client(**headers) as c:
        assert (
            c.post("/v1/metrics", json={"session_id": ss, "metrics": [{"name": "a", "value": 1.0}]}).status_code == 200
        )
        assert c.post("/v1/metrics", content=b"{not json").status_code == 400
        assert c.get("/v1/metrics/jobs/jb_nope").status_code == 404
        assert c.get("/no/such/route").status_code == 404
        assert (
            c.post(
                "/v1/metrics/jobs", json={"requests": [{"session_id": ss, "metrics": [{"name": "b", "value": 2.0}]}]}
            ).status_code
            == 202
        )
    # the same token used wrongly: other schemes, revoked-looking variants, in a request id
    httpx.get(stack.url + "/v1/metrics/definitions/", headers={"Authorization": f"Basic {tenant.token}"})
    httpx.get(stack.url + "/v1/metrics/definitions/", headers={"Authorization": f"Bearer {tenant.token}x"})
    httpx.get(stack.url + "/v1/metrics/definitions/", headers={"X-Request-Id": tenant.token})
    logs = stack.logs()
    assert logs  # the stack does log
    assert tenant.token not in logs
    secret_part = tenant.token.split("_", 1)[1]
    assert secret_part[:16] not in logs


def test_log_lines_are_json_with_the_required_keys(stack, tenant):
    with tenant.client() as c:
        c.get("/v1/metrics/jobs")
    lines = [json.loads(raw) for raw in stack.read_log("api").splitlines() if raw.startswith("{")]
    requests = [line for line in lines if line.get("event") == "http.request"]
    assert requests
    assert all({"timestamp", "level", "event", "request_id", "route", "status"} <= line.keys() for line in requests)


def test_redaction_covers_tokens_and_url_passwords():
    line = "Authorization: Bearer abc.def-123 postgresql://app:s3cr3t@db:5432/x mi_" + "A" * 30
    cleaned = redact(line)
    assert "abc.def-123" not in cleaned and "s3cr3t" not in cleaned and "A" * 30 not in cleaned
    assert "postgresql://app:***@db:5432/x" in cleaned
