"""Running the real `metrics-ingest` command in a subprocess, the one way tests and benches do it."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

COMMAND = (sys.executable, "-m", "runtime.cli")


def cli_env(env: dict[str, str] | None = None, *, own_settings: bool = False) -> dict[str, str]:
    """The test process's environment plus `env` (wide columns, so rich tables and messages are never wrapped). With
    `own_settings`, no METRICS_INGEST_* variable of the test process is inherited (the session's `stack` fixture sets
    the database and broker URLs there): the command gets only the settings in `env`."""
    inherited = {k: v for k, v in os.environ.items() if not (own_settings and k.startswith("METRICS_INGEST_"))}
    return {**inherited, "COLUMNS": "250", **(env or {})}


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, own_settings: bool = False
) -> subprocess.CompletedProcess:
    """Run one command to its end; stdout and stderr captured as text."""
    return subprocess.run(
        [*COMMAND, *args], env=cli_env(env, own_settings=own_settings), capture_output=True, text=True, timeout=timeout
    )


def start_cli(
    *args: str, env: dict[str, str] | None = None, own_settings: bool = False, **popen: Any
) -> subprocess.Popen:
    """Start a long-running command (`up`, a backfill to interrupt); the caller stops it."""
    return subprocess.Popen([*COMMAND, *args], env=cli_env(env, own_settings=own_settings), **popen)


def client_env(tenant: Any, endpoint: str | None = None) -> dict[str, str]:
    """What a client command (`backfill`, `job ...`) needs to reach the service as `tenant`, as the SDK would."""
    return {
        "ROBOTO_API_KEY": tenant.token,
        "ROBOTO_SERVICE_ENDPOINT": endpoint or tenant.api_url,
        "METRICS_INGEST_LOG_FORMAT": "json",
    }
