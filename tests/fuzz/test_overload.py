"""Overload is shed, not crashed: schemathesis over the OpenAPI document (`schemathesis run`, valid and invalid
cases) while 4 interactive publishers and 5 bulk jobs of 20,000 items run against a service whose backlog limit
they exceed. Nothing answers 5xx, and the load sees only 2xx, or 429 with Retry-After (then waits and retries, as
the SDK and `metrics-ingest backfill` do)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.fuzz.config import schemathesis_config
from tests.support.stack import Stack
from tests.support.tenant import Tenant, new_tenant

pytestmark = pytest.mark.slow

PUBLISHERS = 4
BULK_JOBS = 5
BULK_ITEMS = 20_000
BACKLOG_LIMIT = 30_000  # under the bulk load (5 x 20,000): some submits must wait


class Load:
    """Publishers and bulk submitters in threads; every answer they get is kept."""

    def __init__(self, tenant: Tenant, session: str):
        self.tenant, self.session = tenant, session
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[tuple[str, int, str | None, str]] = []  # (kind, status, Retry-After, body start)
        self.accepted: list[str] = []
        self.threads = [threading.Thread(target=self.publisher, args=(i,), daemon=True) for i in range(PUBLISHERS)]
        self.threads += [threading.Thread(target=self.bulk, args=(i,), daemon=True) for i in range(BULK_JOBS)]

    def note(self, kind: str, response: httpx.Response) -> None:
        with self.lock:
            self.answers.append((kind, response.status_code, response.headers.get("Retry-After"), response.text[:200]))

    def backoff(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            self.stop.wait(min(float(response.headers.get("Retry-After") or 1), 2.0))

    def publisher(self, p: int) -> None:
        with self.tenant.client() as client:
            n = 0
            while not self.stop.is_set():
                metrics = [{"name": f"load.p{p}.m{k}", "value": float(n + k)} for k in range(20)]
                response = client.post("/v1/metrics", json={"session_id": self.session, "metrics": metrics})
                self.note("publish", response)
                self.backoff(response)
                n += 1

    def bulk(self, b: int) -> None:
        requests = [
            {
                "session_id": self.session,
                "device_id": None,
                "metrics": [{"name": f"load.b{b}.r{r}.e{e}", "value": float(e)} for e in range(1000)],
            }
            for r in range(BULK_ITEMS // 1000)
        ]
        with self.tenant.client() as client:
            while not self.stop.is_set():
                response = client.post("/v1/metrics/jobs", json={"requests": requests})
                self.note("bulk", response)
                if response.status_code == 202:
                    with self.lock:
                        self.accepted.append(response.json()["data"]["job_id"])
                    return
                self.backoff(response)


def test_overload_is_shed_with_429_never_5xx(make_stack, tmp_path: Path):
    stack: Stack = make_stack(MAX_BACKLOG_ITEMS=BACKLOG_LIMIT)
    stack.start_worker("bulk,interactive", 2)  # the worker layout of `metrics-ingest up`
    stack.start_worker("interactive", 1)
    tenant = new_tenant(stack.database_url, stack.url)
    tenant.device("dv_fuzz")
    tenant.session("ss_fuzz", devices=("dv_fuzz",))
    session = tenant.session()
    with tenant.client() as client:
        assert client.post("/v1/metrics/definition/", json={"name": "fuzz.a"}).status_code == 200

    ready_at = time.monotonic()
    load = Load(tenant, session)
    for thread in load.threads:
        thread.start()
    try:
        config = tmp_path / "schemathesis.toml"
        config.write_text(schemathesis_config(tenant.token, tenant.org_id, max_examples=2))
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run"]
            + ["--phases", "examples,fuzzing", "--mode", "all", "--checks", "not_a_server_error"]
            + ["--exclude-path", "/readyz", f"{stack.url}/openapi.json"],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        fuzz_s = time.monotonic() - ready_at
    finally:
        load.stop.set()
        for thread in load.threads:
            thread.join(120)

    report = out.stdout + out.stderr
    seen = Counter((kind, status) for kind, status, _, _ in load.answers)
    print(f"load answers: {dict(seen)}; bulk jobs accepted: {len(load.accepted)}; fuzz {fuzz_s:.0f} s")
    assert out.returncode == 0, report[-6000:]
    kinds = {kind for kind, *_ in load.answers}
    assert kinds == {"publish", "bulk"}, "the load did not run"
    wrong = [a for a in load.answers if not (200 <= a[1] < 300 or (a[1] == 429 and a[2]))]
    assert not wrong, wrong[:10]
    assert any(status == 429 for _, status, _, _ in load.answers), "the load never went over the backlog limit"
    assert '"status_code": 500' not in stack.logs() and "request.unhandled_error" not in stack.logs()
