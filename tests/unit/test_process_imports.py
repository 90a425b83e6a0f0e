"""What each process loads, checked in a fresh interpreter: the worker process loads no web framework and no CLI,
the API process no CLI, no runtime module and no worker (import-linter checks the static imports; this checks what
actually gets loaded, lazy imports included)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
{load}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""

WORKER = "import worker.__main__, worker.app, worker.tasks, worker.sweeper"
API = "import api_shim.__main__, api_shim.app; api_shim.app.create_app().openapi()"


def loaded(load: str) -> set[str]:
    env = {"METRICS_INGEST_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "PATH": "/usr/bin:/bin"}
    env["METRICS_INGEST_BROKER_URL"] = "redis://127.0.0.1:1/0"
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(load=load)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_worker_process_loads_no_web_framework_and_no_cli():
    found = loaded(WORKER)
    assert {"celery", "ingest", "worker"} <= found
    assert not found & {"fastapi", "starlette", "uvicorn", "typer", "api_shim", "runtime", "jinja2"}


def test_the_api_process_loads_no_cli_runtime_or_worker():
    found = loaded(API)
    assert {"fastapi", "ingest", "api_shim", "jinja2"} <= found  # the web console is served by the API
    assert not found & {"typer", "runtime", "worker"}


@pytest.mark.parametrize("package", ["worker", "api_shim"])
def test_each_process_has_its_own_entry_point(package):
    out = subprocess.run([sys.executable, "-m", package, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and f"python -m {package}" in out.stdout
