"""`metrics-ingest up`: start the embedded servers (unless URLs are configured), migrate, then run the API and
the workers as child processes; restart a child that dies (with backoff); stop everything on Ctrl-C/SIGTERM.

A child that keeps dying (more than `max_restarts` times within `restart_window_s`) makes `up` exit non-zero
with the reason, rather than flapping for ever.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ingest import backoff
from ingest.config import Settings
from runtime.embedded import EmbeddedPostgres, EmbeddedRedis, _stop

log = structlog.get_logger(__name__)


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen]
    stop: Callable[[subprocess.Popen], None]
    process: subprocess.Popen | None = None
    deaths: deque = field(default_factory=deque)
    restart_at: float | None = None


class GiveUp(Exception):
    pass


def console_url(host: str, port: int) -> str:
    """The web console's address for a browser on this machine (an any-address bind is reached on loopback)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/console"


class Supervisor:
    def __init__(
        self, settings: Settings, *, servers_only: bool = False, max_restarts: int = 5, restart_window_s: float = 60.0
    ):
        self.settings = settings
        self.servers_only = servers_only
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.children: list[Child] = []
        self.stopping = False
        self.pg: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None

    # -- children -------------------------------------------------------------------------------------------
    def _cli(self, *args: str) -> Callable[[], subprocess.Popen]:
        """A child running `metrics-ingest ARGS` with this process's environment: the same settings, so it finds
        the same servers (the embedded ones included) on its own."""

        def start() -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "runtime.cli", *args])

        return start

    def _add(self, name: str, start: Callable[[], subprocess.Popen], stop: Callable | None = None) -> Child:
        child = Child(name, start, stop or (lambda p: _stop(p, signal.SIGTERM, 30)))
        child.process = start()
        self.children.append(child)
        return child

    def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        if s.uses_embedded_database:
            self.pg = EmbeddedPostgres(s.data_dir.resolve())
            self._add("postgres", self.pg.start, lambda p: self.pg.stop())  # type: ignore[union-attr]
        if s.uses_embedded_broker:
            self.redis = EmbeddedRedis(s.data_dir.resolve())
            self._add("redis", self.redis.start, lambda p: self.redis.stop())  # type: ignore[union-attr]
        from ingest.db import migrate

        migrate(s.effective_database_url)
        log.info("up.migrated")
        if self.servers_only:
            # Plain lines on stdout, whatever the log format: what a person or a script connects to.
            print(f"database: {s.effective_database_url}", flush=True)
            print(f"broker: {s.effective_broker_url}", flush=True)
            return
        self._add("worker", self._cli("worker", "--lanes", "bulk,interactive"))
        if s.interactive_worker:
            self._add("worker-interactive", self._cli("worker", "--lanes", "interactive", "--concurrency", "1"))
        self._add("api", self._cli("api"))
        console = console_url(s.api_host, s.api_port)
        log.info(
            "up.started",
            api=f"http://{s.api_host}:{s.api_port}",
            console=console,
            embedded_postgres=self.pg is not None,
            embedded_redis=self.redis is not None,
            data_dir=str(s.data_dir.resolve()),
        )
        print(f"console: {console}", flush=True)  # one plain line to open in a browser, whatever the log format

    def _check(self, child: Child) -> None:
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart_at = None
                log.warning("up.child_restarting", child=child.name)
                child.process = child.start()
            return
        if child.process is None or child.process.poll() is None:
            return
        code = child.process.returncode
        child.deaths.append(now)
        while child.deaths and now - child.deaths[0] > self.restart_window_s:
            child.deaths.popleft()
        if len(child.deaths) > self.max_restarts:
            raise GiveUp(
                f"{child.name} died {len(child.deaths)} times within {self.restart_window_s:.0f} s "
                f"(last exit code {code}); giving up"
            )
        delay = backoff.exponential(len(child.deaths) - 1, base_s=0.5)
        child.restart_at = now + delay
        log.error(
            "up.child_died", child=child.name, exit_code=code, restart_in_s=delay, deaths_in_window=len(child.deaths)
        )

    def run(self) -> int:
        def on_signal(signum, _frame):
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        code = 0
        try:
            self.start()
            while not self.stopping:
                for child in self.children:
                    self._check(child)
                time.sleep(0.2)
        except GiveUp as err:
            log.error("up.giving_up", reason=str(err))
            print(f"metrics-ingest up: {err}", file=sys.stderr)
            code = 1
        except Exception as err:  # start-up failure: say why in one line, stop what did start
            log.error("up.failed", error=str(err))
            print(f"metrics-ingest up: {err}", file=sys.stderr)
            code = 1
        finally:
            self.shutdown()
        return code

    def shutdown(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(self.children):  # api first, servers last
            if child.process is not None:
                try:
                    child.stop(child.process)
                except Exception as err:  # keep stopping the rest
                    log.warning("up.stop_failed", child=child.name, error=str(err))
        log.info("up.stopped")
