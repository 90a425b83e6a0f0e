"""The embedded servers of `metrics-ingest up` are the service's alone (issue 14, section 1), and `up`'s log is one
structured line per event (no Celery banner, no root warning block, no Alembic plugin lines; pickle refused).

Every `up` here gets only its data dir and an API port: no server port, no URL. They run on the embedded default,
whatever URLs the session's shared stack left in os.environ."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from sqlalchemy import create_engine

from ingest import catalog
from ingest.config import EmbeddedSockets, Settings, to_sqlalchemy_url
from ingest.db import migrate
from runtime.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    _pg_account,
    _pg_bin,
    _run_as,
    free_port,
    grant_traverse,
    port_open,
    prepare_data_dir,
)
from tests.chaos.test_up_supervision import Up
from tests.support.cli import run_cli, start_cli
from tests.support.polling import wait_until
from tests.support.stack import stop_process


def _start(data_dir: Path) -> Up:
    u = Up(data_dir)
    u.start()
    return u


def _stop(u: Up) -> None:
    if u.process is not None:
        stop_process(u.process, signal.SIGTERM, timeout=60)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, Up]]:
    """Two `up`s side by side on one host, each with nothing but its own data dir (and an API port)."""
    base = tmp_path_factory.mktemp("pair")
    ups = (_start(base / "a"), _start(base / "b"))
    try:
        for u in ups:
            u.wait_healthy(180)
        yield ups
    finally:
        for u in ups:
            _stop(u)


def cli(u: Up, *args: str) -> subprocess.CompletedProcess:
    """An admin command as a user types it in a shell of the same account: only the data dir is set."""
    env = {"METRICS_INGEST_DATA_DIR": str(u.data_dir), "METRICS_INGEST_LOG_FORMAT": "json"}
    return run_cli(*args, env=env, own_settings=True)


def tcp_listeners(pid: int) -> list:
    return [c.laddr for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]


def test_two_instances_side_by_side_each_command_on_its_own(pair):
    a, b = pair
    for u in pair:  # no TCP port at all: nothing to collide on, nothing to set
        assert tcp_listeners(u.server_pid("postgres")) == []
        assert tcp_listeners(u.server_pid("redis-server")) == []
    org = f"og_{secrets.token_hex(4)}"
    created = cli(a, "org", "create", org)
    assert created.returncode == 0, created.stderr
    assert org in cli(a, "org", "list").stdout.split()
    listed_b = cli(b, "org", "list")
    assert listed_b.returncode == 0, listed_b.stderr
    assert org not in listed_b.stdout.split()  # the other instance's database never sees it
    status = cli(a, "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["ready"] is True
    # status names the instance that answered: a's own servers, never b's
    assert json.loads(status.stdout)["servers"] == {"database": a.database_url, "broker": a.broker_url}
    assert json.loads(cli(b, "status", "--json").stdout)["servers"]["database"] == b.database_url != a.database_url
    for args in (
        ("migrate",),
        ("token", "create", "--org", org, "--principal", "a@example.com"),
        ("jobs", "purge", "--older-than", "7d"),
    ):
        done = cli(a, *args)
        assert done.returncode == 0, done.stderr
    assert cli(b, "token", "create", "--org", org, "--principal", "b@example.com").returncode != 0  # no such org in b


def test_servers_only_runs_the_migrated_servers_and_prints_their_urls(tmp_path: Path):
    """`up --servers-only`: the embedded servers of the data dir, migrated, their URLs on stdout; no API, no worker."""
    env = {"METRICS_INGEST_DATA_DIR": str(tmp_path / "data"), "METRICS_INGEST_LOG_FORMAT": "json"}
    proc = start_cli(
        "up", "--servers-only", env=env, own_settings=True, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        urls: dict[str, str] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            key, _, value = line.strip().partition(": ")
            if key in ("database", "broker"):
                urls[key] = value
            if len(urls) == 2:
                break
        sockets = EmbeddedSockets.of(tmp_path / "data")
        assert urls == {"database": sockets.database_url(), "broker": sockets.broker_url()}
        with psycopg.connect(urls["database"]) as conn:  # migrated
            assert conn.execute("SELECT to_regclass('metric_values') IS NOT NULL").fetchone() == (True,)
        children = [c.cmdline() for c in psutil.Process(proc.pid).children(recursive=True)]
        assert not [c for c in children if "api_shim" in c or "worker" in c], children
    finally:
        stop_process(proc, signal.SIGTERM, timeout=60)
    assert proc.returncode == 0


# -- other OS accounts ---------------------------------------------------------------------------------------------
PROBE = r"""
import json, os, socket, sys
todo = json.loads(sys.argv[1])
seen = {}
def attempt(key, fn):
    try:
        seen[key] = fn()
    except OSError as err:
        seen[key] = type(err).__name__
def unix(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(b"PING\r\n")
        return "answered " + s.recv(64).decode(errors="replace")
def tcp(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return "connected"
def read(path):
    with open(path, "rb") as f:
        return "read %d bytes" % len(f.read())
for path in todo["unix"]:
    attempt("connect " + path, lambda: unix(path))
for port in todo["tcp"]:
    attempt("tcp %d" % port, lambda: tcp(port))
for path in todo["read"]:
    attempt("read " + path, lambda: read(path))
for path in todo["list"]:
    attempt("list " + path, lambda: "listed %d" % len(os.listdir(path)))
for path in todo["stat"]:
    attempt("stat " + path, lambda: "ok" if os.stat(path) else "")
print(json.dumps(seen))
"""


@pytest.fixture
def other_account() -> Iterator[str]:
    """An unprivileged OS account made for the test (root only), removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create an unprivileged OS account (useradd, runuser); run as root to prove it")
    if not (shutil.which("useradd") and shutil.which("runuser")):
        pytest.skip("useradd/runuser not installed")
    name = f"mi-probe-{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def _system_python(account: str) -> str:
    """A Python the other account may run (the test's own may sit under root's home)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        probe = subprocess.run(["runuser", "-u", account, "--", candidate, "-c", "pass"], capture_output=True)
        if probe.returncode == 0:
            return candidate
    pytest.skip("no Python interpreter the unprivileged account may run")


def test_another_account_reaches_neither_server_nor_the_data_dir(pair, other_account):
    a, _ = pair
    data_dir = a.data_dir.resolve()
    sockets = EmbeddedSockets.of(data_dir)
    pg_pid, redis_pid = a.server_pid("postgres"), a.server_pid("redis-server")
    ports = [addr.port for pid in (pg_pid, redis_pid) for addr in tcp_listeners(pid)]
    assert ports == []  # no listening TCP socket at all (trying any of them as the other account below)
    todo = {
        "unix": [str(sockets.pg_socket), str(sockets.redis_socket)],
        "tcp": ports,
        "read": [str(data_dir / name) for name in ("postgres.log", "redis.log", "postgres/PG_VERSION")],
        "list": [str(data_dir), str(data_dir / "postgres"), str(data_dir / "redis")],
        "stat": [str(data_dir.parent)],  # the folder above is reachable: the data dir itself is what refuses
    }
    python = _system_python(other_account)
    # The folders above the data dir are open to traversal as `up` left them (o+x), so a refusal below is the data
    # dir's own. (Again here: another pytest session on this host may have made /tmp/pytest-of-root 0700 meanwhile.)
    grant_traverse(data_dir)
    done = subprocess.run(
        ["runuser", "-u", other_account, "--", python, "-c", PROBE, json.dumps(todo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen.pop(f"stat {data_dir.parent}") == "ok"
    assert seen and all(outcome == "PermissionError" for outcome in seen.values()), seen
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    assert mode & 0o007 == 0 and mode & 0o060 == 0, oct(mode)  # no one else; a group may only traverse (root case)


# -- a data dir made by an older version ----------------------------------------------------------------------------
def make_old_data_dir(data_dir: Path, org: str) -> int:
    """A data dir as the versions before this one made it: PostgreSQL with `trust` on a 127.0.0.1 TCP port, folders
    open to everyone; `org` written into it. Returns that port."""
    prepare_data_dir(data_dir)  # folders PostgreSQL's user can reach (as root), then opened up as before
    data_dir.chmod(0o755)
    (data_dir / "redis").chmod(0o755)
    pgdata = data_dir / "postgres"
    account = _pg_account()
    grant_traverse(data_dir)
    subprocess.run(
        [str(_pg_bin() / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres", "--encoding=UTF8"],
        check=True,
        capture_output=True,
        **_run_as(account),
    )
    port = free_port()
    grant_traverse(data_dir)
    server = subprocess.Popen(
        [str(_pg_bin() / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1", "-p", str(port), "-k", str(pgdata)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **_run_as(account),
    )
    try:
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"

        def answers() -> bool:
            assert server.poll() is None, server.communicate()[0]
            psycopg.connect(admin).close()
            return True

        wait_until(answers, 120, "the old-style PostgreSQL")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "metrics_ingest"')
        url = f"postgresql://postgres@127.0.0.1:{port}/metrics_ingest"
        migrate(url)
        engine = create_engine(to_sqlalchemy_url(url))
        with engine.begin() as conn:
            catalog.create_org(conn, org)
        engine.dispose()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
    (data_dir / "postgres.log").write_text("old log\n")
    (data_dir / "postgres.log").chmod(0o644)
    return port


def test_an_old_data_dir_is_tightened_in_place_keeping_its_rows(tmp_path):
    data_dir = tmp_path / "old"
    org = f"og_{secrets.token_hex(4)}"
    old_port = make_old_data_dir(data_dir, org)
    hba = data_dir / "postgres" / "pg_hba.conf"
    assert "trust" in hba.read_text()

    listed = run_cli(
        "org",
        "list",
        env={"METRICS_INGEST_DATA_DIR": str(data_dir), "METRICS_INGEST_LOG_FORMAT": "json"},
        own_settings=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert org in listed.stdout.split()  # the row survived the first start of this version

    rules = [line.split() for line in hba.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert rules == [["local", "all", "postgres", "peer", "map=service"]]  # trust and TCP lines gone
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o067 == 0
    assert stat.S_IMODE((data_dir / "redis").stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "postgres.log").stat().st_mode) == 0o600

    pg = EmbeddedPostgres(data_dir)
    pg.start()
    try:
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
            assert conn.execute("SELECT count(*) FROM orgs WHERE org_id = %s", (org,)).fetchone() == (1,)
        assert pg.process is not None and tcp_listeners(pg.process.pid) == []
        assert not port_open(old_port)
    finally:
        pg.stop()


def test_a_deep_data_dir_gets_a_short_private_socket_folder(tmp_path):
    """A unix socket path has at most 107 bytes: a data dir too deep for that gets a private folder under /tmp,
    recorded in the data dir, that every later start and every command of the same data dir finds."""
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    redis = EmbeddedRedis(data_dir)
    redis.start()
    try:
        root = EmbeddedSockets.of(data_dir).root
        assert root.parent == Path("/tmp") and (data_dir / "socket-dir").read_text().strip() == str(root)
        st = root.stat()
        assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o067 == 0
        import redis as redis_py

        assert redis_py.Redis.from_url(redis.url).ping()
    finally:
        redis.stop()
    again = EmbeddedRedis(data_dir)
    again.start()
    try:
        assert EmbeddedSockets.of(data_dir).root == root
    finally:
        again.stop()
    shutil.rmtree(root, ignore_errors=True)


# -- up's log ------------------------------------------------------------------------------------------------------
class Evil:
    """Unpickled, it would create a folder: it never is."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_up_log_is_one_json_line_per_event_and_pickle_is_refused(tmp_path):
    u = _start(tmp_path / "logs")
    try:
        u.wait_healthy(180)
        wait_until(lambda: httpx.get(u.url + "/readyz", timeout=5).status_code == 200, 120, "/readyz")

        from broker.celery_app import PROCESS_CHUNK, make_celery

        marker = tmp_path / "unpickled"
        sender = make_celery(Settings(broker_url=u.broker_url))
        sender.conf.accept_content = ["pickle", "json"]
        sender.send_task(PROCESS_CHUNK, args=[Evil(marker)], queue="bulk", routing_key="bulk", serializer="pickle")
        wait_until(lambda: "Refusing to deserialize untrusted content of type pickle" in u.text(), 60, "the refusal")
        assert not marker.exists()
    finally:
        _stop(u)
    assert u.process is not None and u.process.returncode == 0

    text = u.text()
    for noise in ("setup plugin", "SecurityWarning", "superuser privileges", "[tasks]", "[config]", ".> transport"):
        assert noise not in text, noise
    events = []
    for line in text.splitlines():
        if line.startswith("console: "):  # the one plain line: the address to open in a browser
            continue
        events.append(json.loads(line)["event"])  # every other line is a JSON object
    assert "up.started" in events and "up.stopped" in events
    assert events.count("worker.notice") >= 1  # Celery's "Warm shutdown" notice, as a log line
    if os.geteuid() == 0:
        assert events.count("worker.running_as_root") == 1  # one worker process (INTERACTIVE_WORKER=false)
