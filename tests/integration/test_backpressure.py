"""No worker in time: 503 and the job still completes; backlog over its limit: 429 with Retry-After; lanes. The
backpressure and lane tests run on Redis and on RabbitMQ."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.jobs import wait_for_job
from tests.support.polling import wait_until
from tests.support.tenant import new_tenant


@pytest.fixture
def workerless_stack(make_stack, broker_kind):
    return make_stack(broker_kind, PUBLISH_WAIT_S=1.5, MAX_BACKLOG_ITEMS=10)


def test_publish_without_worker_is_503_then_completes(workerless_stack):
    tenant = new_tenant(workerless_stack.database_url, workerless_stack.url)
    ss = tenant.session()
    with tenant.client() as c:
        r = c.post("/v1/metrics", json={"session_id": ss, "device_id": None, "metrics": [{"name": "m", "value": 4.0}]})
        assert r.status_code == 503
        assert r.json()["error"]["error_code"] == "RobotoServiceUnavailableException"
        assert r.headers["Retry-After"]
        job_id = r.json()["error"]["message"].split()[2]
        # the backlog is now 1 item; a job of 10 more goes over the limit of 10
        big = {"requests": [{"session_id": ss, "metrics": [{"name": f"x{i}", "value": 1.0} for i in range(10)]}]}
        r = c.post("/v1/metrics/jobs", json=big)
        assert r.status_code == 429 and r.headers["Retry-After"]
        assert r.json()["error"]["error_code"] == "RobotoLimitExceededException"
        workerless_stack.start_worker()
        job = wait_for_job(c, job_id)
        assert job["state"] == "succeeded"
    assert tenant.sql("SELECT value FROM metric_values WHERE session_id = %s", ss) == [(4.0,)]


def test_oversized_body_is_413_before_reading(tenant, stack):
    """Only the headers are sent: the API must answer from the declared Content-Length alone."""
    with socket.create_connection(("127.0.0.1", stack.api_port), timeout=10) as sock:
        sock.sendall(
            f"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tenant.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {10**10}\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _length(reply):
            part = sock.recv(65536)
            if not part:
                break
            reply += part
    head, _, body = reply.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert json.loads(body)["error"]["error_code"] == "RobotoLimitExceededException"


def _length(reply: bytes) -> int:
    for line in reply.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1


@pytest.mark.slow
def test_interactive_publish_is_not_starved_by_a_bulk_job(make_stack, broker_kind):
    stack = make_stack(broker_kind, CHUNK_ITEMS=500)
    stack.start_worker("bulk,interactive", concurrency=1)
    try:
        tenant = new_tenant(stack.database_url, stack.url)
        sessions = [tenant.session() for _ in range(100)]
        bulk = {
            "requests": [
                {"session_id": s, "device_id": None, "metrics": [{"name": f"b{j}", "value": 1.0} for j in range(200)]}
                for s in sessions
            ]
        }
        with tenant.client() as c:
            job_id = c.post("/v1/metrics/jobs", json=bulk, params={"lane": "bulk"}).json()["data"]["job_id"]
            wait_until(
                lambda: tenant.sql("SELECT chunks_done FROM jobs WHERE job_id = %s", job_id)[0][0] >= 1,
                60,
                "the bulk job's first chunk",
                interval=0.02,
            )
            r = c.post(
                "/v1/metrics",
                json={"session_id": sessions[0], "device_id": None, "metrics": [{"name": "interactive", "value": 1.0}]},
            )
            assert r.status_code == 200
            done, total = tenant.sql("SELECT chunks_done, chunks_total FROM jobs WHERE job_id = %s", job_id)[0]
            assert done < total, "the interactive publish waited for the whole bulk job"
            assert wait_for_job(c, job_id)["state"] == "succeeded"
    finally:
        stack.stop()
