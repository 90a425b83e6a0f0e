"""The real roboto SDK against a live server: 0.53.0 in-process (installed with the test extras) and 0.62.0 in a
virtualenv of its own (created on first use at .venv-roboto-0.62.0, or METRICS_INGEST_SDK062_PYTHON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK062_VENV = ROOT / ".venv-roboto-0.62.0"


@pytest.fixture
def sdk(tenant):
    """A roboto 0.53.0 RobotoClient for the tenant (retries cut short so that a failure shows quickly)."""
    from roboto.http import BearerTokenDecorator, HttpClientOptions, HttpRetryOptions, RobotoClient

    return RobotoClient(
        endpoint=tenant.api_url,
        auth_decorator=BearerTokenDecorator(token=tenant.token),
        http_client_kwargs={
            "default_timeout": 60.0,
            "options": HttpClientOptions(retry=HttpRetryOptions(max_attempts=2)),
        },
    )


def _sdk062_python() -> str:
    explicit = os.environ.get("METRICS_INGEST_SDK062_PYTHON")
    if explicit:
        return explicit
    python = SDK062_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SDK062_VENV)], check=True)
    # Also when an earlier run was cut off between creating the venv and installing into it.
    if subprocess.run([str(python), "-c", "import roboto"], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "roboto==0.62.0"], check=True)
    return str(python)


@pytest.fixture(scope="session")
def sdk062_python() -> str:
    return _sdk062_python()


PRELUDE = """
import json, os, sys
from roboto.http import RobotoClient, BearerTokenDecorator
from roboto.http import HttpClientOptions, HttpRetryOptions
client = RobotoClient(
    endpoint=os.environ["MI_ENDPOINT"],
    auth_decorator=BearerTokenDecorator(token=os.environ["MI_TOKEN"]),
    http_client_kwargs={"default_timeout": 60.0, "options": HttpClientOptions(retry=HttpRetryOptions(max_attempts=2))})
def emit(obj):
    print("RESULT:" + json.dumps(obj, default=str))
"""


@pytest.fixture
def run062(sdk062_python, tenant) -> Callable[..., list]:
    """Run a snippet under roboto 0.62.0 with `client` bound to the tenant; returns what it `emit()`ted."""

    def run(code: str, token: str | None = None) -> list:
        env = dict(os.environ, MI_ENDPOINT=tenant.api_url, MI_TOKEN=token or tenant.token)
        proc = subprocess.run(
            [sdk062_python, "-c", PRELUDE + textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            raise AssertionError(f"roboto 0.62 snippet failed:\n{proc.stdout}\n{proc.stderr}")
        return [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT:")]

    return run
