"""Every documented limit (docs/limits.md) is answered with a clear Roboto envelope naming it: 400, or 413 for
size; a declared Content-Length over the limit is refused before the body is read; a stalled upload is cut off
and does not tie up the API."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest

from tests.support.servers import Servers
from tests.support.stack import Stack
from tests.support.tenant import Tenant, new_tenant

MAX_BODY = 2 * 1024 * 1024
MAX_NDJSON = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def limited(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        servers.new_database(),
        servers.new_broker(),
        tmp_path_factory.mktemp("limited"),
        extra_env={
            "METRICS_INGEST_MAX_BODY_BYTES": str(MAX_BODY),
            "METRICS_INGEST_MAX_NDJSON_BYTES": str(MAX_NDJSON),
            "METRICS_INGEST_BODY_READ_TIMEOUT_S": "2",
            "METRICS_INGEST_MAX_REQUESTS_PER_JOB": "50",
        },
    )
    stack.start_api()
    stack.start_worker()
    yield stack
    stack.stop()


@pytest.fixture
def org(limited: Stack) -> Tenant:
    return new_tenant(limited.database_url, limited.url)


def assert_envelope(resp: httpx.Response, status: int, code: str, *needles: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"error_code", "message"}, body
    assert body["error"]["error_code"] == code
    for needle in needles:
        assert needle in body["error"]["message"], body


def raw_request(stack: Stack, head: str, body_parts: list[bytes], token: str, read_timeout: float = 30) -> bytes:
    """Speak HTTP/1.1 by hand, to control exactly what is sent (and what is not)."""
    u = urlparse(stack.url)
    with socket.create_connection((u.hostname, u.port), timeout=read_timeout) as s:
        s.sendall((head + f"Host: {u.hostname}\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
        for part in body_parts:
            s.sendall(part)
        answer = b""
        while True:
            try:
                got = s.recv(65536)
            except ConnectionResetError:
                break
            if not got:
                break
            answer += got
    return answer


def parse_raw(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_ten_thousand_entries_in_one_publish_are_accepted(org: Tenant):
    session = org.session()
    metrics = [{"name": f"m{i}", "value": float(i)} for i in range(10_000)]
    with org.client() as client:
        resp = client.post("/v1/metrics", json={"session_id": session, "device_id": None, "metrics": metrics})
    assert resp.status_code == 200, resp.text[:500]
    assert len(resp.json()["data"]["succeeded"]) == 10_000 and resp.json()["data"]["failed"] == []


def test_entries_per_request_over_the_limit(org: Tenant):
    metrics = [{"name": "m", "value": 1.0}] * 25_001
    with org.client() as client:
        resp = client.post("/v1/metrics", json={"session_id": org.session(), "metrics": metrics})
    assert_envelope(resp, 400, "RobotoInvalidRequestException", "25001 entries", "25000 per request")


def test_requests_per_job_over_the_limit(org: Tenant):
    requests = [{"session_id": "s", "metrics": []}] * 51
    with org.client() as client:
        resp = client.post("/v1/metrics/jobs", json={"requests": requests})
    assert_envelope(resp, 400, "RobotoInvalidRequestException", "at most 50 requests")


def test_declared_length_over_the_limit_is_refused_before_the_body_is_read(limited: Stack, org: Tenant):
    # Headers only: the server must answer without waiting for a single byte of the 1 TB it was promised.
    head = "POST /v1/metrics HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n"
    status, body = parse_raw(raw_request(limited, head, [], org.token))
    assert status == 413
    assert body["error"]["error_code"] == "RobotoLimitExceededException"
    assert str(MAX_BODY) in body["error"]["message"] and "MAX_BODY_BYTES" in body["error"]["message"]


def test_ndjson_has_its_own_larger_limit(limited: Stack, org: Tenant):
    over_json = MAX_BODY + 1
    head = (
        f"POST /v1/metrics/jobs HTTP/1.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: {MAX_NDJSON + 1}\r\n"
    )
    status, body = parse_raw(raw_request(limited, head, [], org.token))
    assert status == 413 and "MAX_NDJSON_BYTES" in body["error"]["message"]
    # Between the two limits: an NDJSON upload is read (and here parsed: one valid line, padded with blanks).
    line = json.dumps({"session_id": org.session(), "metrics": [{"name": "n", "value": 1}]}).encode() + b"\n"
    payload = line + b"\n" * (over_json - len(line))
    with org.client(**{"Content-Type": "application/x-ndjson"}) as client:
        resp = client.post("/v1/metrics/jobs", content=payload)
    assert resp.status_code == 202, resp.text[:300]


def test_chunked_body_growing_past_the_limit(limited: Stack, org: Tenant):
    head = "POST /v1/metrics HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    piece = b" " * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    status, body = parse_raw(raw_request(limited, head, [chunk] * (MAX_BODY // len(piece) + 2), org.token))
    assert status == 413 and "MAX_BODY_BYTES" in body["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/metrics", "/v1/metrics/definition/"])
def test_stalled_upload_is_cut_off_and_does_not_tie_up_the_api(limited: Stack, org: Tenant, path: str):
    u = urlparse(limited.url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as stalled:
        stalled.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {org.token}\r\n"
                'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"session_id"'
            ).encode()
        )
        # Meanwhile the API serves others.
        with org.client() as client:
            assert client.get("/v1/metrics/jobs").status_code == 200
        answer = b""
        while chunk := stalled.recv(65536):
            answer += chunk
    status, body = parse_raw(answer)
    assert status == 400
    assert body["error"]["error_code"] == "RobotoInvalidRequestException"
    assert "stalled" in body["error"]["message"] and "BODY_READ_TIMEOUT_S" in body["error"]["message"]


def test_id_and_name_lengths(org: Tenant):
    session = org.session()
    with org.client() as client:
        resp = client.post("/v1/metrics", json={"session_id": "s" * 256, "metrics": []})
        assert_envelope(resp, 400, "RobotoInvalidRequestException", "session_id", "255")
        resp = client.post("/v1/metrics", json={"session_id": session, "device_id": "d" * 256, "metrics": []})
        assert_envelope(resp, 400, "RobotoInvalidRequestException", "device_id", "255")
        resp = client.post("/v1/metrics", json={"session_id": session, "metrics": [{"name": "n" * 1021, "value": 1}]})
        assert_envelope(resp, 400, "RobotoInvalidRequestException", "metrics[0].name", "255")
        # Just over the name limit: that entry alone fails, its neighbours are stored.
        metrics = [{"name": "n" * 256, "value": 1}, {"name": "ok", "value": 2}]
        resp = client.post("/v1/metrics", json={"session_id": session, "device_id": None, "metrics": metrics})
        assert resp.status_code == 200, resp.text
        assert [r["name"] for r in resp.json()["data"]["succeeded"]] == ["ok"]
        assert len(resp.json()["data"]["failed"]) == 1 and "255" in resp.json()["data"]["failed"][0]["error"]
        resp = client.post("/v1/metrics/definition/", json={"name": "n" * 1001})
        assert_envelope(resp, 400, "RobotoInvalidRequestException", "name")


@pytest.mark.parametrize("path", ["/v1/metrics", "/v1/metrics/jobs", "/v1/metrics/definition/"])
def test_nesting_depth(org: Tenant, path: str):
    deep = "[" * 100_000 + "]" * 100_000
    with org.client(**{"Content-Type": "application/json"}) as client:
        resp = client.post(path, content=deep)
        assert_envelope(resp, 400, "RobotoInvalidRequestException")
        nested = {"session_id": org.session(), "metrics": [{"name": "n", "value": {"a": [[[[1]]]]}}]}
        body = {"requests": [nested]} if path.endswith("jobs") else nested
        if not path.endswith("definition/"):
            resp = client.post(path, json=body)
            assert_envelope(resp, 400, "RobotoInvalidRequestException", "value must be a number")


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/v1/metrics/jobs", 1000), ("/v1/metrics/definitions/", 10_000), ("/v1/metrics/jobs/jb_x/results", 100_000)],
)
def test_max_results_over_the_limit(org: Tenant, path: str, limit: int):
    with org.client() as client:
        resp = client.get(path, params={"max_results": limit + 1})
    assert_envelope(resp, 400, "RobotoInvalidRequestException", "max_results", str(limit))


def test_numbers_beyond_the_float_range_fail_that_entry_alone(org: Tenant):
    body = (
        '{"session_id": "%s", "device_id": null, '
        '"metrics": [{"name": "big", "value": 1%s}, {"name": "ok", "value": 1}]}'
    )
    with org.client(**{"Content-Type": "application/json"}) as client:
        resp = client.post("/v1/metrics", content=body % (org.session(), "0" * 400))
    assert resp.status_code == 200, resp.text
    assert [r["name"] for r in resp.json()["data"]["succeeded"]] == ["ok"]
    assert [f["name"] for f in resp.json()["data"]["failed"]] == ["big"]
