"""The `metrics-ingest` command: run the service, its parts, and the admin tasks."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ingest.config import ConfigError, Settings, get_settings
from runtime.messages import fail, message_console

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Roboto-compatible metrics ingestion service.")
org_app = typer.Typer(no_args_is_help=True, help="Organizations.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
device_app = typer.Typer(no_args_is_help=True, help="Devices.")
session_app = typer.Typer(no_args_is_help=True, help="Sessions.")
app.add_typer(org_app, name="org")
app.add_typer(token_app, name="token")
app.add_typer(device_app, name="device")
app.add_typer(session_app, name="session")
sessions_app = typer.Typer(no_args_is_help=True, help="Sessions in bulk, over the API.")
app.add_typer(sessions_app, name="sessions")
job_app = typer.Typer(no_args_is_help=True, help="Publish jobs (follow one, list its failures).")
app.add_typer(job_app, name="job")
jobs_app = typer.Typer(no_args_is_help=True, help="Stored jobs (retention: purge finished ones).")
app.add_typer(jobs_app, name="jobs")
rollups_app = typer.Typer(no_args_is_help=True, help="Rollups of aggregates (recomputed in the background).")
app.add_typer(rollups_app, name="rollups")

err_console = message_console()


def _settings() -> Settings:
    from ingest.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return settings


@contextmanager
def database() -> Iterator[None]:
    """Point the process at the configured database; with the embedded default, at the embedded server,
    starting it for the duration of the command when `up` is not running."""
    from runtime.embedded import EmbeddedPostgres

    settings = _settings()
    if not settings.uses_embedded_database:
        yield
        return
    pg = EmbeddedPostgres(settings.data_dir.resolve())
    if pg.running():  # the server of this data dir, through its own socket: never another instance's
        yield
        return
    pg.start()
    try:
        from ingest.db import migrate

        migrate(pg.url)
        yield
    finally:
        from ingest.db import dispose_engine

        dispose_engine()
        pg.stop()


def require_servers(settings: Settings) -> None:
    """A part run on its own (`api`, `worker`) on the embedded default needs the servers of a running `up`."""
    from runtime.embedded import socket_accepts

    if settings.uses_embedded_database and not socket_accepts(settings.embedded.pg_socket):
        raise ConfigError(
            "METRICS_INGEST_DATABASE_URL is not set and the embedded PostgreSQL is not running "
            "(run `metrics-ingest up`, or set the URL)"
        )
    if settings.uses_embedded_broker and not socket_accepts(settings.embedded.redis_socket):
        raise ConfigError(
            "METRICS_INGEST_BROKER_URL is not set and the embedded Redis is not running "
            "(run `metrics-ingest up`, or set the URL)"
        )


# -- service -------------------------------------------------------------------------------------------------
@app.command()
def up(
    servers_only: bool = typer.Option(
        False,
        "--servers-only",
        help="Only the embedded PostgreSQL and Redis (migrated), and print their URLs: run the API and the workers "
        "yourself (`metrics-ingest api`, `metrics-ingest worker`), e.g. under a debugger.",
    ),
) -> None:
    """Run the whole service: embedded PostgreSQL + Redis (unless URLs are set), migrations, API and workers."""
    from runtime.supervisor import Supervisor

    settings = _settings()
    supervisor = Supervisor(
        settings,
        servers_only=servers_only,
        max_restarts=settings.up_max_restarts,
        restart_window_s=settings.up_restart_window_s,
    )
    raise typer.Exit(supervisor.run())


@app.command()
def api(
    host: str | None = typer.Option(None, help="Bind address (default: METRICS_INGEST_API_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: METRICS_INGEST_API_PORT)."),
    workers: int | None = typer.Option(None, help="uvicorn worker processes."),
) -> None:
    """Run the HTTP API alone (uvicorn)."""
    settings = _settings()
    require_servers(settings)
    _become(
        "api_shim",
        "--host",
        host or settings.api_host,
        "--port",
        str(port or settings.api_port),
        "--workers",
        str(workers or settings.api_workers),
    )


@app.command()
def worker(
    lanes: str = typer.Option("bulk,interactive", help="Comma-separated lanes (queues) to consume."),
    concurrency: int | None = typer.Option(None, help="Worker processes (default METRICS_INGEST_WORKER_CONCURRENCY)."),
    name: str | None = typer.Option(None, help="Celery node name (default: lanes@hostname)."),
) -> None:
    """Run a Celery worker process. Start as many as you like, on as many machines as you like."""
    settings = _settings()
    require_servers(settings)
    args = ["--lanes", lanes, "--concurrency", str(concurrency or settings.worker_concurrency)]
    _become("worker", *args, *(["--name", name] if name else []))


def _become(package: str, *args: str) -> None:
    """Replace this process with `python -m PACKAGE ARGS` (same PID): the API and the worker run without the CLI's
    modules loaded."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", package, *args])


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from ingest.db import migrate as run_migrations

    settings = _settings()
    with database():
        run_migrations(settings.effective_database_url)
    typer.echo("database is at the newest schema")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    endpoint: str | None = typer.Option(None, help="Ask a remote API (its /ops/status), e.g. http://host:8000."),
    token: str | None = typer.Option(
        None, help="Bearer token for --endpoint when the API sets METRICS_INGEST_METRICS_TOKEN (default: that setting)."
    ),
) -> None:
    """Services up, backlog per lane, workers and their last heartbeat, jobs in progress, failures in the last hour.
    Exits 1 when the service is not ready."""
    import json

    from broker import CeleryBroker
    from ingest import status as status_mod
    from ingest.logs import configure_logging, redact
    from runtime.status_screen import render

    settings = _settings()
    configure_logging(settings.log_format, "ERROR")  # keep stdout for the report (and clean JSON)
    if endpoint:
        found = _remote_status(endpoint.rstrip("/"), token or settings.metrics_token)
    else:
        found = status_mod.collect(settings, CeleryBroker.from_settings(settings))
        # Which instance answered (local only: never served over HTTP); passwords masked.
        found["servers"] = {
            "database": redact(settings.effective_database_url),
            "broker": redact(settings.effective_broker_url),
        }
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
    else:
        render(found, Console())
    raise typer.Exit(0 if found.get("ready") else 1)


def _remote_status(endpoint: str, token: str | None) -> dict:
    import httpx

    from ingest import status as status_mod

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(endpoint + "/ops/status", headers=headers, timeout=15)
    except httpx.HTTPError:
        return status_mod.unreachable(endpoint)
    if response.status_code == 401:
        raise ConfigError(f"{endpoint} refused the metrics token (set --token or METRICS_INGEST_METRICS_TOKEN)")
    if response.status_code != 200:
        return status_mod.unreachable(endpoint)
    found = response.json()
    found["endpoint"] = endpoint
    found["services"] = {"api": "ok", **found.get("services", {})}
    return found


# -- admin ---------------------------------------------------------------------------------------------------
@contextmanager
def admin_transaction():
    with database():
        from ingest.db import transaction

        with transaction() as conn:
            yield conn


@org_app.command("create")
def org_create(org_id: str) -> None:
    """Create an organization."""
    from ingest import catalog

    with admin_transaction() as conn:
        catalog.create_org(conn, org_id)
    typer.echo(org_id)


@org_app.command("list")
def org_list() -> None:
    from ingest import catalog

    with admin_transaction() as conn:
        for row in catalog.list_orgs(conn):
            typer.echo(row["org_id"])


@token_app.command("create")
def token_create(
    org: list[str] = typer.Option(..., "--org", help="Org the token may act for; repeat for more (first = default)."),
    principal: str = typer.Option(..., help="Who uses the token, e.g. user@example.com."),
    invocation: str | None = typer.Option(None, help="Action invocation the token stands for."),
    expires_days: float | None = typer.Option(None, help="Expire after this many days."),
) -> None:
    """Create a token. Prints the secret alone on stdout, once; only its hash is stored."""
    from ingest import auth

    with admin_transaction() as conn:
        token_id, secret = auth.create_token(
            conn, org_ids=org, principal=principal, invocation_id=invocation, expires_in_days=expires_days
        )
    err_console.print(f"created token {token_id} for {principal}; store the secret now, it is not shown again")
    typer.echo(secret)


@token_app.command("list")
def token_list(org: str = typer.Option(..., "--org")) -> None:
    """List an org's tokens (never the secrets)."""
    from ingest import auth

    with admin_transaction() as conn:
        rows = auth.list_tokens(conn, org)
    columns = ("token_id", "principal", "org_ids", "invocation_id", "created", "last_used", "expires_at", "revoked_at")
    cells = [[",".join(r[c]) if c == "org_ids" else str(r[c] or "") for c in columns] for r in rows]
    if not sys.stdout.isatty():  # tab-separated lines for scripts
        for line in cells:
            typer.echo("\t".join(line))
        return
    table = Table(*columns)
    for line in cells:
        table.add_row(*line)
    Console().print(table)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token; every API process refuses it from the next request on."""
    from ingest import auth

    with admin_transaction() as conn:
        auth.revoke_token(conn, token_id)
    typer.echo(f"revoked {token_id}")


@device_app.command("create")
def device_create(device_id: str, org: str = typer.Option(..., "--org")) -> None:
    from ingest import catalog

    with admin_transaction() as conn:
        catalog.create_device(conn, org, device_id)
    typer.echo(device_id)


@session_app.command("create")
def session_create(
    session_id: str,
    org: str = typer.Option(..., "--org"),
    start_ns: int = typer.Option(..., "--start-ns"),
    end_ns: int = typer.Option(..., "--end-ns"),
    device: list[str] = typer.Option([], "--device", help="Attached device; repeat for more."),
) -> None:
    from ingest import catalog

    with admin_transaction() as conn:
        catalog.create_session(conn, org, session_id, start_ns, end_ns, device)
    typer.echo(session_id)


def _duration(value: str, option: str) -> int:
    from ingest.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint=option) from None


@jobs_app.command("purge")
def jobs_purge(
    older_than: str = typer.Option(
        ..., "--older-than", help="Delete jobs that finished longer ago than this: 45s, 30m, 12h, 7d."
    ),
    org: str | None = typer.Option(None, "--org", help="Only this org's jobs."),
) -> None:
    """Delete finished jobs (row, chunks, outcomes) now, in small batches; what the retention sweep does every
    minute with METRICS_INGEST_JOB_RETENTION. Jobs still running are never touched, metric values never."""
    from ingest import catalog, retention
    from ingest.db import transaction

    seconds = _duration(older_than, "--older-than")
    with database():
        if org is not None:
            with transaction() as conn:
                catalog.require_org(conn, org)
        purged, _more = retention.purge(seconds, org)
    typer.echo(f"purged {purged.jobs} job(s) and {purged.chunks} chunk(s) finished more than {older_than} ago")


@rollups_app.command("refresh")
def rollups_refresh(
    wait: bool = typer.Option(
        False, "--wait", help="Wait for a sweep running elsewhere, and go on until no dirty day is left."
    ),
    pairs: int = typer.Option(500, "--pairs", min=1, help="(metric, day) pairs per transaction."),
) -> None:
    """Recompute the rollups of every dirty day now (what the workers' sweep does in the background, without its
    quiet delay). Aggregates are exact either way; this makes them fast again at once, e.g. after a bulk load."""
    import time

    from ingest import rollups
    from ingest.db import transaction

    started = time.monotonic()
    total = rollups.Refreshed()
    busy = False
    with database():
        while True:
            done, _more = rollups.refresh(pairs=pairs)
            total += done
            busy = done.busy
            with transaction() as conn:
                left = rollups.backlog(conn)
            if not wait or left == 0:
                break
            if done.busy or done.pairs == 0:
                time.sleep(0.2)  # another sweeper holds the lock, or rows are being marked right now
    typer.echo(
        f"refreshed {total.pairs} day(s) into {total.cells} cell(s) in {time.monotonic() - started:.1f} s; "
        f"dirty rows left: {left}" + (" (another sweep is running)" if busy and left else "")
    )


# -- client commands (talk to a running service over HTTP, like the SDK) -------------------------------------
DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
EndpointOption = typer.Option(
    DEFAULT_ENDPOINT, "--endpoint", envvar="ROBOTO_SERVICE_ENDPOINT", help="Service URL (as the SDK's)."
)
OrgOption = typer.Option(None, "--org", help="Org to act for (X-Roboto-Org-Id); default: the token's first org.")
ApiKeyOption = typer.Option(
    ..., "--api-key", envvar="ROBOTO_API_KEY", show_default=False, help="API token (as the SDK's ROBOTO_API_KEY)."
)
PlainOption = typer.Option(False, "--plain", help="Log lines instead of a progress bar, even on a terminal.")


def _job_client(endpoint: str, api_key: str, org: str | None):
    from runtime.backfill.client import JobClient

    _settings()  # logging
    return JobClient(endpoint, api_key, org)


@app.command()
def backfill(
    files: list[Path] = typer.Argument(..., help="CSV (session_id,name,value[,device_id]) or NDJSON files."),
    format: str | None = typer.Option(None, "--format", help="csv or ndjson (default: from the file extension)."),
    endpoint: str = EndpointOption,
    org: str | None = OrgOption,
    api_key: str = ApiKeyOption,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the jobs to the end and collect failures."),
    failures: Path | None = typer.Option(
        None, "--failures", help="Where failed values go (default: FILE.failed.ndjson beside each input)."
    ),
    chunk_items: int = typer.Option(20_000, "--chunk-items", min=1, max=2_000_000, help="Values per submitted job."),
    parallel: int = typer.Option(2, "--parallel", min=1, max=32, help="Uploads in flight."),
    plain: bool = PlainOption,
) -> None:
    """Load historical metrics from files through the job API: streaming, resumable (run it again after an
    interruption), failures written to a file the same command accepts again. Exit code 1 when anything failed."""
    from runtime.backfill import command
    from runtime.backfill.runner import Options

    if format not in (None, "csv", "ndjson"):
        raise typer.BadParameter("must be csv or ndjson", param_hint="--format")
    client = _job_client(endpoint, api_key, org)
    options = Options(fmt=format, chunk_items=chunk_items, parallel=parallel, wait=wait, failures=failures)
    try:
        code = command.backfill(client, files, options, plain=plain)
    finally:
        client.close()
    raise typer.Exit(code)


@sessions_app.command("import")
def sessions_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or NDJSON sessions."),
    format: str | None = typer.Option(None, "--format", help="csv or ndjson (default: from the file extension)."),
    endpoint: str = EndpointOption,
    org: str | None = OrgOption,
    api_key: str = ApiKeyOption,
    batch_size: int = typer.Option(5000, "--batch-size", min=1, max=10_000, help="Sessions per call."),
    parallel: int = typer.Option(2, "--parallel", min=1, max=32, help="Calls in flight."),
    failures: Path | None = typer.Option(
        None, "--failures", help="Where failed lines go (default: FILE.failed.ndjson beside the input)."
    ),
) -> None:
    """Create sessions from a file (CSV header `session_id,start_time_ns,end_time_ns,device_ids`, devices separated
    by `;`; or NDJSON objects of the same fields) through `POST /v1/sessions/batch`, streamed, with progress on
    stderr. A session already stored identically counts as existing, so a re-run is harmless. Exit code 1 when any
    line failed (they are written to the failures file)."""
    from runtime.sessions_import import import_sessions

    if format not in (None, "csv", "ndjson"):
        raise typer.BadParameter("must be csv or ndjson", param_hint="--format")

    def run(client) -> int:
        return import_sessions(
            client,
            file,
            fmt=format,
            batch_size=batch_size,
            parallel=parallel,
            failures=failures,
            echo=lambda line: typer.echo(line, err=True),
        )

    _job_command(endpoint, api_key, org, run)


def _job_command(endpoint: str, api_key: str, org: str | None, run) -> None:
    """Run `run(client)` against the job API; an API error is one line on stderr and exit code 1."""
    from runtime.backfill.client import ApiError

    client = _job_client(endpoint, api_key, org)
    try:
        code = run(client)
    except ApiError as err:
        err_console.print(f"metrics-ingest: {err}")
        code = 1
    finally:
        client.close()
    raise typer.Exit(code)


@job_app.command("watch")
def job_watch(
    job_id: str,
    endpoint: str = EndpointOption,
    org: str | None = OrgOption,
    api_key: str = ApiKeyOption,
    plain: bool = PlainOption,
) -> None:
    """Follow one job's progress to its end. Exit code 1 when any of its values failed."""
    from runtime.backfill import command

    _job_command(endpoint, api_key, org, lambda client: command.watch(client, job_id, plain=plain))


@job_app.command("results")
def job_results(
    job_id: str,
    failed: bool = typer.Option(False, "--failed", help="Only the values that failed."),
    endpoint: str = EndpointOption,
    org: str | None = OrgOption,
    api_key: str = ApiKeyOption,
) -> None:
    """Print a job's per-value outcomes, one JSON object per line."""
    from runtime.backfill import command

    _job_command(endpoint, api_key, org, lambda client: command.results(client, job_id, failed_only=failed))


def main() -> None:
    """The one error handler of every command: bad input (a usage error, a bad setting, a domain error such as an
    unknown org, an unreachable database) is one line on stderr naming what is wrong and a non-zero exit code, never
    a traceback (runtime/messages.py)."""
    command = typer.main.get_command(app)
    try:
        code = command.main(standalone_mode=False)
    except typer.Abort:
        print(file=sys.stderr)
        code = 130
    except Exception as err:
        if type(err).__name__ != "NoArgsIsHelpError":
            fail(err)
        # `metrics-ingest token`: the group's help (typer's rich help is printed as the error is made)
        if help_text := err.format_message():  # type: ignore[attr-defined]
            print(help_text, file=sys.stderr)
        code = err.exit_code  # type: ignore[attr-defined]
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
