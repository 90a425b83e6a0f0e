"""The `metrics-ingest status` screen: the status report (`ingest.status.collect`) as rich tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def render(status: dict[str, Any], console: Console) -> None:
    services = Table(title="Services", title_justify="left")
    services.add_column("check")
    services.add_column("state")
    for name, state in status["services"].items():
        colour = "green" if state == "ok" else "red"
        services.add_row(name, f"[{colour}]{state}[/{colour}]")

    lanes = Table("lane", "backlog items", "active jobs", "broker messages", title="Lanes", title_justify="left")
    for lane in status["lanes"]:
        lanes.add_row(
            lane["lane"], _cell(lane["backlog_items"]), _cell(lane["active_jobs"]), _cell(lane.get("broker_messages"))
        )

    workers = Table("worker", "lanes", "last heartbeat", "alive", title="Workers", title_justify="left")
    for w in status["workers"]:
        workers.add_row(
            w["worker_id"],
            ",".join(w["lanes"]),
            f"{w['seconds_since_heartbeat']} s ago",
            "[green]yes[/green]" if w["alive"] else "[red]no[/red]",
        )

    jobs = Table(
        "job",
        "org",
        "lane",
        "state",
        "progress",
        "failed",
        "chunks",
        "age",
        title="Jobs in progress",
        title_justify="left",
    )
    for j in status["running_jobs"]:
        jobs.add_row(
            j["job_id"],
            j["org_id"],
            j["lane"],
            j["state"],
            f"{j['processed']}/{j['total']} ({j['percent']}%)",
            str(j["failed"]),
            j["chunks"],
            f"{j['age_s']} s",
        )

    fails = status["failures_last_hour"]
    failures = Table(
        "job",
        "org",
        "lane",
        "state",
        "failed items",
        "error",
        "finished",
        title=f"Failures in the last hour: {_cell(fails['jobs'])} jobs, {_cell(fails['items'])} items",
        title_justify="left",
    )
    for f in fails["recent"]:
        failures.add_row(
            f["job_id"],
            f["org_id"],
            f["lane"],
            f["state"],
            f"{f['failed']}/{f['total']}",
            f["error_code"] or "",
            f["finished"],
        )
    console.print(Group(services, lanes, workers, jobs, failures))
