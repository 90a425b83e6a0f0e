"""Slow clients: a connection that trickles its request head, or its body, is cut off by the server after the
documented timeouts (`HEADER_READ_TIMEOUT_S`, `BODY_READ_TIMEOUT_S` + `BODY_MIN_RATE_BYTES_S`, docs/limits.md),
and 200 of them open at once do not keep the API from serving everyone else. (The latency comparison lives in
`python -m bench slowclients`; here only the behaviour is asserted.)"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest

from tests.support.polling import wait_until
from tests.support.servers import Servers
from tests.support.stack import Stack
from tests.support.tenant import Tenant, new_tenant

TIMEOUT_S = 3
SLOW = 100  # connections of each kind (head trickle, body trickle)


@pytest.fixture(scope="module")
def guarded(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        servers.new_database(),
        servers.new_broker(),
        tmp_path_factory.mktemp("slowclients"),
        extra_env={
            "METRICS_INGEST_HEADER_READ_TIMEOUT_S": str(TIMEOUT_S),
            "METRICS_INGEST_BODY_READ_TIMEOUT_S": str(TIMEOUT_S),
        },
    )
    stack.start_api()
    stack.start_worker()
    yield stack
    stack.stop()


@pytest.fixture
def org(guarded: Stack) -> Tenant:
    return new_tenant(guarded.database_url, guarded.url)


@dataclass
class Slow:
    sock: socket.socket
    answer: bytes = b""
    closed_by_server: bool = False


def parse(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


class Trickler:
    """Sends one byte to every open slow connection every half second; notes what the server answers and when it
    closes the connection."""

    def __init__(self, conns: list[Slow]):
        self.conns = conns
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            for c in self.conns:
                if c.closed_by_server:
                    continue
                try:
                    while True:
                        got = c.sock.recv(65536)
                        if not got:
                            c.closed_by_server = True
                            break
                        c.answer += got
                except BlockingIOError:
                    pass
                except OSError:
                    c.closed_by_server = True
                if not c.closed_by_server and not c.answer:
                    try:
                        c.sock.send(b"a")
                    except BlockingIOError:
                        pass
                    except OSError:
                        c.closed_by_server = True
            self.stop.wait(0.5)


def open_slow(url: str, first: bytes, count: int) -> list[Slow]:
    u = urlparse(url)
    conns = []
    for _ in range(count):
        sock = socket.create_connection((u.hostname, u.port), timeout=10)
        sock.sendall(first)
        sock.setblocking(False)
        conns.append(Slow(sock))
    return conns


def test_slow_clients_are_cut_off_and_others_are_served(guarded: Stack, org: Tenant):
    session = org.session()
    heads = open_slow(guarded.url, b"GET /v1/metrics/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ", SLOW)
    bodies = open_slow(
        guarded.url,
        (
            f"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {org.token}\r\n"
            'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"session_id":"'
        ).encode(),
        SLOW,
    )
    silent = open_slow(guarded.url, b"", 10)  # connect and say nothing
    trickler = Trickler(heads + bodies)
    trickler.thread.start()
    try:
        # While every slow connection is still open, the API serves others.
        with org.client() as client:
            for i in range(10):
                assert client.get("/v1/metrics/jobs").status_code == 200
                body = {"session_id": session, "device_id": None, "metrics": [{"name": f"slow.m{i}", "value": i}]}
                published = client.post("/v1/metrics", json=body)
                assert published.status_code == 200, published.text

        wait_until(lambda: all(c.closed_by_server for c in heads + bodies), 120, "the server to close slow clients")
    finally:
        trickler.stop.set()
        trickler.thread.join(10)

    for c in heads:
        status, answer = parse(c.answer)
        assert status == 408, c.answer[:300]
        assert answer["error"]["error_code"] == "RobotoRequestTimeoutException"
        assert "HEADER_READ_TIMEOUT_S" in answer["error"]["message"]
    for c in bodies:
        status, answer = parse(c.answer)
        assert status == 400, c.answer[:300]
        assert answer["error"]["error_code"] == "RobotoInvalidRequestException"
        assert "too slow" in answer["error"]["message"] and "BODY_MIN_RATE_BYTES_S" in answer["error"]["message"]

    # A connection that sends nothing at all is closed too, without an answer.
    def silent_closed() -> bool:
        for c in silent:
            try:
                got = c.sock.recv(1024)
            except BlockingIOError:
                return False
            except OSError:
                got = b""
            assert got == b"", got
        return True

    wait_until(silent_closed, 60, "the server to close silent connections")
    for c in heads + bodies + silent:
        c.sock.close()
    assert '"status_code": 500' not in guarded.logs()
