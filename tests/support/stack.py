"""A running service for tests: API and worker processes started with the real CLI, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runtime.embedded import free_port

FAST_SETTINGS = {
    "METRICS_INGEST_REQUEUE_AFTER_S": "3",
    "METRICS_INGEST_SWEEP_INTERVAL_S": "1",
    "METRICS_INGEST_HEARTBEAT_INTERVAL_S": "1",
    "METRICS_INGEST_LOG_FORMAT": "json",
    "METRICS_INGEST_TASK_MAX_RETRIES": "10",
    # Browser tests sign in many times from 127.0.0.1; the limit's own test sets a small one.
    "METRICS_INGEST_CONSOLE_SIGNIN_PER_MINUTE": "1000",
}


@dataclass
class Stack:
    database_url: str
    broker_url: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    api_port: int = 0
    api: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(FAST_SETTINGS)
        env.update(
            METRICS_INGEST_DATABASE_URL=self.database_url,
            METRICS_INGEST_BROKER_URL=self.broker_url,
            METRICS_INGEST_API_PORT=str(self.api_port),
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        return subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", *args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_api(self) -> None:
        if not self.api_port:
            self.api_port = free_port()
        self.api = self._spawn("api", "api")
        for _ in range(600):  # up to about a minute
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.api.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"API did not start: {self.read_log('api')[-3000:]}")

    def start_worker(self, lanes: str = "bulk,interactive", concurrency: int = 2) -> subprocess.Popen:
        name = f"worker{len(self.workers)}"
        proc = self._spawn(
            name,
            "worker",
            "--lanes",
            lanes,
            "--concurrency",
            str(concurrency),
            "--name",
            f"{name}-{os.getpid()}-{time.monotonic_ns()}@test",
        )
        self.workers.append(proc)
        return proc

    def read_log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def stop_workers(self, sig: int = signal.SIGTERM) -> None:
        for proc in self.workers:
            stop_process(proc, sig)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.api is not None:
            stop_process(self.api, signal.SIGTERM)
            self.api = None


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Stop a process and everything it started (its session)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # leftover children of a killed parent
        os.killpg(proc.pid, signal.SIGKILL)
