"""A RabbitMQ server of the test's own, from the machine's RabbitMQ installation (the `rabbitmq-server` script and
Erlang), never the machine's running node: its own node name, data and log folders, Erlang cookie (HOME), port,
distribution port and epmd (started by us, in the foreground, so that stopping it is ours to do), its own user with
a password and a set of virtual hosts made at boot from a definitions file (no `rabbitmqctl` needed). Optionally
inside a network namespace (`ip netns exec`), where the default ports are free."""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.support.polling import wait_until

# Debian's /usr/sbin/rabbitmq-server re-runs itself as the `rabbitmq` user with that user's HOME; the script under
# /usr/lib/rabbitmq/bin is the server itself. A generic (tarball) installation puts that one on PATH.
SERVER_SCRIPTS = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/local/sbin/rabbitmq-server")


def rabbitmq_server_script() -> str | None:
    for candidate in SERVER_SCRIPTS:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("rabbitmq-server")
    return found if found and not found.startswith("/usr/sbin/") else None


def missing_reason() -> str | None:
    """Why a RabbitMQ server cannot be started here, or None when it can."""
    if rabbitmq_server_script() is None:
        return "RabbitMQ is not installed (no rabbitmq-server script; `apt-get install rabbitmq-server`)"
    if shutil.which("epmd") is None:
        return "Erlang's epmd is not on PATH (install erlang-base)"
    return None


@dataclass
class RabbitServer:
    base: Path
    host: str = "127.0.0.1"
    port: int = 5672
    dist_port: int = 25672
    epmd_port: int = 4369
    netns: str | None = None  # run inside this network namespace
    vhosts: tuple[str, ...] = ("mi",)
    user: str = "mi"
    password: str = field(default_factory=lambda: secrets.token_hex(8))
    node: str = field(default_factory=lambda: f"mi{secrets.token_hex(3)}@localhost")
    process: subprocess.Popen | None = field(default=None, repr=False)
    epmd: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, vhost: str) -> str:
        return f"amqp://{self.user}:{self.password}@{self.host}:{self.port}/{quote(vhost, safe='')}"

    @property
    def data_dir(self) -> Path:
        return self.base / "mnesia"

    def _prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def _write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        definitions = {
            "users": [{"name": self.user, "password": self.password, "tags": "administrator"}],
            "vhosts": [{"name": v} for v in self.vhosts],
            "permissions": [
                {"user": self.user, "vhost": v, "configure": ".*", "write": ".*", "read": ".*"} for v in self.vhosts
            ],
        }
        (self.base / "definitions.json").write_text(json.dumps(definitions))
        (self.base / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = {self.host}:{self.port}",
                    f"load_definitions = {self.base / 'definitions.json'}",
                    "loopback_users = none",
                    "log.console = true",
                    "log.console.level = warning",
                    "log.file = false",
                    "",
                ]
            )
        )
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")  # not the machine's /etc/rabbitmq/rabbitmq-env.conf

    def env(self) -> dict[str, str]:
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.base),  # the Erlang cookie is made here
            RABBITMQ_CONF_ENV_FILE=str(self.base / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_MNESIA_BASE=str(self.data_dir),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_PORT=str(self.epmd_port),
        )
        return env

    def start(self, timeout: float = 60) -> None:
        script = rabbitmq_server_script()
        if script is None:
            raise RuntimeError(missing_reason())
        self._write_config()
        log = open(self.base / "server.log", "ab")  # noqa: SIM115 - handed to the children
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = subprocess.Popen(
                [*self._prefix(), "epmd", "-port", str(self.epmd_port)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.process = subprocess.Popen(
            [*self._prefix(), script],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        from kombu import Connection

        def accepts() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {self.log_tail()}")
            try:
                with Connection(self.url(self.vhosts[0]), connect_timeout=1) as conn:
                    conn.connect()
                    return True
            except Exception:  # kombu and amqp raise several kinds while the node boots: not up yet
                return False

        try:
            wait_until(accepts, timeout, "RabbitMQ to accept a connection", interval=0.3)
        except AssertionError as err:
            raise RuntimeError(f"{err}: {self.log_tail()}") from None

    def log_tail(self) -> str:
        path = self.base / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the node (SIGTERM: a clean shutdown; SIGKILL: a crash); epmd stays for a restart."""
        from tests.support.stack import stop_process

        if self.process is not None:
            stop_process(self.process, sig, timeout=30)
            self.process = None

    def wipe(self) -> None:
        """Forget everything: queues, messages, users (the definitions file makes the user again at boot)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def close(self) -> None:
        from tests.support.stack import stop_process

        self.stop()
        if self.epmd is not None:
            stop_process(self.epmd, signal.SIGTERM, timeout=5)
            self.epmd = None
