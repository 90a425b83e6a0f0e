"""Every command with bad input prints one line naming what is wrong and exits non-zero, never a traceback; messages
are never wrapped at the terminal's width."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.cli import run_cli


def cli(stack, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env={**stack.env(), **env})


def one_line_error(done: subprocess.CompletedProcess, *expected: str, code: int = 1) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    line = done.stderr.strip()
    assert line.startswith("metrics-ingest: ")
    for text in expected:
        assert text in line, line
    return line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("device", "create", "--org", "og_nope", "dv_1"), "Organization 'og_nope' not found"),
        (
            ("session", "create", "--org", "og_nope", "ss_1", "--start-ns", "1", "--end-ns", "2"),
            "Organization 'og_nope' not found",
        ),
        (("token", "create", "--org", "og_nope", "--principal", "a@example.com"), "Organization 'og_nope' not found"),
        (("token", "revoke", "tk_nope"), "Token 'tk_nope' not found"),
    ],
)
def test_unknown_things_are_named_in_one_line(stack, args, expected):
    one_line_error(cli(stack, *args), expected)


def test_bad_values_of_known_orgs_are_one_line(stack):
    org = "og_err_" + os.urandom(3).hex()
    assert cli(stack, "org", "create", org).returncode == 0
    one_line_error(cli(stack, "org", "create", org), f"Organization '{org}' already exists")
    window = ("--start-ns", "9", "--end-ns", "5")
    one_line_error(cli(stack, "session", "create", "--org", org, "ss_1", *window), "end time must not be before")
    one_line_error(
        cli(stack, "session", "create", "--org", org, "ss_2", "--start-ns", "1", "--end-ns", "2", "--device", "dv_x"),
        "Device 'dv_x' not found",
    )
    assert cli(stack, "device", "create", "--org", org, "dv_1").returncode == 0
    one_line_error(cli(stack, "device", "create", "--org", org, "dv_1"), "Device 'dv_1' already exists")


def test_usage_errors_are_one_line(stack):
    one_line_error(cli(stack, "session", "create", "--org", "og_x", "ss_1"), "--start-ns", code=2)
    one_line_error(cli(stack, "session", "create", "ss_1", "--org", "o", "--start-ns", "x", "--end-ns", "1"), code=2)
    one_line_error(cli(stack, "jobs", "purge", "--older-than", "1w"), "--older-than", "7d", code=2)
    one_line_error(cli(stack, "nosuchcommand"), "nosuchcommand", code=2)


def test_an_unreachable_database_is_one_line(stack):
    down = "postgresql://nobody@127.0.0.1:9/nowhere"
    commands = (("org", "list"), ("device", "create", "--org", "og_x", "dv_1"), ("jobs", "purge", "--older-than", "1d"))
    for args in commands:
        one_line_error(cli(stack, *args, METRICS_INGEST_DATABASE_URL=down), "cannot reach the database")


def test_messages_are_not_wrapped_at_80_columns(stack):
    org = "og_wrap_" + os.urandom(3).hex()
    assert cli(stack, "org", "create", org).returncode == 0
    principal = "someone.with.a.long.address@example.com"
    made = cli(stack, "token", "create", "--org", org, "--principal", principal, COLUMNS="80")
    assert made.returncode == 0, made.stderr
    lines = made.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) > 80, lines
    assert lines[0].endswith("store the secret now, it is not shown again")
