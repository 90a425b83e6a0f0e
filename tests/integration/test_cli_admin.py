"""The admin commands, run as a user would: create an org and a token, then use the token."""

from __future__ import annotations

import os
import subprocess

import httpx

from tests.support.cli import run_cli


def cli(stack, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, env={**stack.env(), **(env or {})})


def test_org_token_device_session_commands(stack):
    org = "og_cli_" + os.urandom(3).hex()
    assert cli(stack, "org", "create", org).returncode == 0
    dup = cli(stack, "org", "create", org)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    made = cli(stack, "token", "create", "--org", org, "--principal", "ops@example.com", "--invocation", "iv_cli")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("mi_") and "\n" not in secret  # the secret alone on stdout
    assert cli(stack, "device", "create", "--org", org, "dv_1").returncode == 0
    assert (
        cli(
            stack, "session", "create", "--org", org, "ss_1", "--start-ns", "5", "--end-ns", "9", "--device", "dv_1"
        ).returncode
        == 0
    )
    listed = cli(stack, "token", "list", "--org", org)
    assert "ops@example.com" in listed.stdout and secret not in listed.stdout

    headers = {"Authorization": f"Bearer {secret}", "X-Roboto-Api-Version": "2026-05-20"}
    r = httpx.post(
        stack.url + "/v1/metrics",
        headers=headers,
        json={"session_id": "ss_1", "metrics": [{"name": "m", "value": 1.0}]},
        timeout=60,
    )
    rec = r.json()["data"]["succeeded"][0]
    assert (rec["device_id"], rec["invocation_id"], rec["min_timestamp_ns"]) == ("dv_1", "iv_cli", 5)

    token_id = next(line.split("\t")[0] for line in listed.stdout.splitlines() if "ops@example.com" in line)
    assert cli(stack, "token", "revoke", token_id).returncode == 0
    r = httpx.get(stack.url + "/v1/metrics/definition/m", headers=headers, timeout=30)
    assert r.status_code == 401


def test_invalid_settings_fail_with_one_line(stack):
    bad = cli(stack, "migrate", env={"METRICS_INGEST_API_PORT": "notaport"})
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert "METRICS_INGEST_API_PORT" in bad.stderr and "Traceback" not in bad.stderr
