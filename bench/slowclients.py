"""`python -m bench.slowclients`: do 200 slow clients slow everyone else down?

Starts the service on embedded servers (or the env's), measures the median latency of authenticated reads and
interactive publishes while idle, then again while 200 connections trickle their request heads (100) or bodies
(100) a byte every half second, and prints both with the target: median under attack <= 2 x idle + 20 ms. The
slow connections stay open for the whole measurement (the default 30 s timeouts, `HEADER_READ_TIMEOUT_S` and
`BODY_READ_TIMEOUT_S`); at the end the script waits for the server to close them all."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.stack import Servers, Service, new_org

SLOW = 200


class Trickle:
    def __init__(self, url: str, token: str, count: int):
        host, port = url.removeprefix("http://").split(":")
        self.socks: list[socket.socket] = []
        for i in range(count):
            s = socket.create_connection((host, int(port)), timeout=10)
            if i % 2:
                s.sendall(b"GET /v1/metrics/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:
                s.sendall(
                    (
                        f"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"session_id":"'
                    ).encode()
                )
            s.setblocking(False)
            self.socks.append(s)
        self.closed: set[int] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            for i, s in enumerate(self.socks):
                if i in self.closed:
                    continue
                try:
                    while got := s.recv(65536):
                        pass
                    if got == b"":
                        self.closed.add(i)
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed.add(i)
                    continue
                try:
                    s.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed.add(i)
            self.stop.wait(0.5)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def latencies(client: httpx.Client, session: str, calls: int) -> dict:
    reads, publishes = [], []
    for i in range(calls):
        t = time.perf_counter()
        assert client.get("/v1/metrics/jobs", params={"max_results": 10}).status_code == 200
        reads.append((time.perf_counter() - t) * 1000)
        body = {"session_id": session, "device_id": None, "metrics": [{"name": f"slow.m{i % 20}", "value": i}]}
        t = time.perf_counter()
        assert client.post("/v1/metrics", json=body).status_code == 200
        publishes.append((time.perf_counter() - t) * 1000)
    return {"read_p50_ms": round(statistics.median(reads), 2), "publish_p50_ms": round(statistics.median(publishes), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.slowclients")
    parser.add_argument("--calls", type=int, default=100, help="reads and publishes per measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mi-bench-slow-"))
    servers = Servers.start()
    service = Service(servers, work)
    try:
        service.start_api()
        service.start_up_layout()
        org = new_org(service, 1, "slow")
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {org.token}"}, timeout=60) as c:
            latencies(c, org.sessions[0], 10)  # warm-up
            idle = latencies(c, org.sessions[0], args.calls)
            attack = Trickle(service.url, org.token, SLOW)
            time.sleep(1)
            during = latencies(c, org.sessions[0], args.calls)
            open_during = SLOW - len(attack.closed)
            deadline = time.monotonic() + 180
            while len(attack.closed) < SLOW and time.monotonic() < deadline:
                time.sleep(1)
            closed_at_end = len(attack.closed)
            attack.close()
        result = {
            "slow_connections": SLOW,
            "still_open_during_measurement": open_during,
            "closed_by_server_at_end": closed_at_end,
            "idle": idle,
            "during": during,
        }
        for kind in ("read_p50_ms", "publish_p50_ms"):
            limit = 2 * idle[kind] + 20
            result[f"{kind}_limit"] = round(limit, 2)
            result[f"{kind}_ok"] = during[kind] <= limit
        print(json.dumps(result, indent=2))
    finally:
        service.stop()
        servers.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
