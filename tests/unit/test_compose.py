"""docker-compose.yml, Dockerfile and deploy/ cannot run here (no Docker engine): check by reading that they name
real commands, options, settings, routes and series, and that the files they mount exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
import yaml

from api_shim.app import create_app
from ingest.config import Settings
from ingest.telemetry import SERIES
from runtime.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def cli():
    """The click-style group behind the typer app (typer may vendor its own click)."""
    group = typer.main.get_command(cli_app)
    assert "worker" in group.commands
    return group


@pytest.fixture(scope="module")
def routes() -> set[str]:
    return set(create_app().openapi()["paths"])


def test_compose_has_the_services_and_their_order(compose):
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "rabbitmq", "migrate", "api", "worker", "prometheus", "grafana"}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        # RabbitMQ only when its profile is on: then the service waits for it
        assert deps["rabbitmq"] == {"condition": "service_healthy", "required": False}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    for name in APP_SERVICES:
        assert services[name]["build"] == "." and services[name]["image"] == services["api"]["image"]


def _options(command) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("-")}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_service_command_is_a_real_subcommand_with_real_options(compose, cli, service):
    command = compose["services"][service]["command"]
    assert isinstance(command, list) and command
    sub = cli.commands.get(command[0])
    assert sub is not None, f"{service}: `metrics-ingest {command[0]}` does not exist"
    given = [arg.split("=", 1)[0] for arg in command[1:] if arg.startswith("-")]
    assert set(given) <= _options(sub), f"{service}: unknown options {set(given) - _options(sub)}"
    # and click accepts the whole argument list
    sub.make_context(command[0], list(command[1:]), resilient_parsing=False)


def test_environment_names_real_settings(compose):
    fields = set(Settings.model_fields)
    seen = 0
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        keys = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        for key in keys:
            if key.startswith("METRICS_INGEST_"):
                seen += 1
                assert key.removeprefix("METRICS_INGEST_").lower() in fields, f"{name}: {key} is not a setting"
    assert seen >= 3
    # the database URL (unless overridden from the shell) points at the postgres service with its own credentials
    given = compose["services"]["api"]["environment"]["METRICS_INGEST_DATABASE_URL"]
    url = re.fullmatch(r"\$\{METRICS_INGEST_DATABASE_URL:-(.*)\}", given).group(1)
    pg = compose["services"]["postgres"]["environment"]
    assert url.startswith(f"postgresql://{pg['POSTGRES_USER']}:") and url.endswith(
        f"@postgres:5432/{pg['POSTGRES_DB']}"
    )
    assert pg["POSTGRES_PASSWORD"] in url
    broker = compose["services"]["api"]["environment"]["METRICS_INGEST_BROKER_URL"]
    assert re.fullmatch(r"\$\{METRICS_INGEST_BROKER_URL:-redis://redis:6379/0\}", broker), broker


def test_rabbitmq_profile_matches_the_documented_broker_url(compose):
    """The header says how to run on RabbitMQ: its URL names the service, its user, password and virtual host."""
    rabbit = compose["services"]["rabbitmq"]
    assert rabbit["profiles"] == ["rabbitmq"]
    assert rabbit["healthcheck"]["test"][:2] == ["CMD", "rabbitmq-diagnostics"]
    assert any(v.endswith(":/var/lib/rabbitmq") for v in rabbit["volumes"])
    header = (ROOT / "docker-compose.yml").read_text().split("name:", 1)[0]
    (url,) = re.findall(r"METRICS_INGEST_BROKER_URL=(amqp://\S+)", header)
    env = rabbit["environment"]
    password = re.fullmatch(r"\$\{RABBITMQ_PASSWORD:-(\w+)\}", env["RABBITMQ_DEFAULT_PASS"]).group(1)
    expected = f"amqp://{env['RABBITMQ_DEFAULT_USER']}:{password}@rabbitmq:5672/{env['RABBITMQ_DEFAULT_VHOST']}"
    assert url == expected
    assert Settings(broker_url=url).effective_broker_url == url  # a URL the service accepts


def _urls(text: str) -> list[str]:
    return re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", text)


def test_health_checks_use_real_routes(compose, cli, routes):
    api = compose["services"]["api"]
    probe = " ".join(api["healthcheck"]["test"])
    ((port, path),) = _urls(probe)
    assert path == "/readyz" and path in routes
    assert f"--port {port}" in " ".join(api["command"])
    assert any(p.endswith(f":{port}") for p in api["ports"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    ((port, path),) = _urls(dockerfile.split("HEALTHCHECK", 1)[1])
    assert path == "/healthz" and path in routes
    # the worker pings its own Celery node, named in its command
    worker = compose["services"]["worker"]
    command = worker["command"]
    node = command[command.index("--name") + 1]
    assert node == "worker@%h"
    assert "--destination worker@$$HOSTNAME" in worker["healthcheck"]["test"][1]
    assert "-A worker.app" in worker["healthcheck"]["test"][1]


def test_dockerfile_builds_the_package_and_runs_the_cli(repo_root=ROOT):
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["metrics-ingest"]' in text
    for folder in re.findall(r"^COPY (\w+) \w+$", text, re.M):
        assert (ROOT / folder).is_dir(), folder
    assert {"ingest", "api_shim", "worker", "migrations"} <= set(re.findall(r"^COPY (\w+) \w+$", text, re.M))
    for env in re.findall(r"(METRICS_INGEST_\w+)=", text):
        assert env.removeprefix("METRICS_INGEST_").lower() in Settings.model_fields
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".env" in ignored and "tests" in ignored


def test_monitoring_profile_mounts_existing_files(compose, routes):
    for name in ("prometheus", "grafana"):
        service = compose["services"][name]
        assert service["profiles"] == ["monitoring"]
        for volume in service["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    prom = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and "/metrics" in routes
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    mounted = {v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"] if v.startswith("./")}
    assert set(prom["rule_files"]) <= mounted


def _names_a_series(expr: str) -> bool:
    names = set(re.findall(r"metrics_ingest_\w+", expr))
    allowed = {s for base in SERIES for s in (base, base + "_bucket", base + "_count", base + "_sum")}
    return bool(names) and names <= allowed


def test_grafana_dashboard_is_valid_and_queries_only_our_series():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/metrics-ingest.json").read_text())
    assert dashboard["title"] and dashboard["uid"]
    panels = dashboard["panels"]
    assert len(panels) >= 5
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    seen = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert _names_a_series(target["expr"]), (panel["title"], target["expr"])
            seen |= set(re.findall(r"metrics_ingest_\w+", target["expr"]))
    # throughput, backlog, latency, failures, workers
    for needed in (
        "metrics_ingest_items_total",
        "metrics_ingest_backlog_items",
        "metrics_ingest_job_duration_seconds_bucket",
        "metrics_ingest_http_request_duration_seconds_bucket",
        "metrics_ingest_jobs_total",
        "metrics_ingest_workers_alive",
    ):
        assert needed in seen, needed
    provisioning = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/metrics-ingest.yml").read_text())
    assert provisioning["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_alert_rules_query_only_our_series():
    rules = yaml.safe_load((ROOT / "deploy/alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs and all(_names_a_series(e) for e in exprs)
