"""`python -m bench [--items N]`: start the service on embedded servers (or the env's), run the four sections,
print a table and write bench/results/<timestamp>.json (and latest.json). Default 100,000 items; the issue's full
run is `python -m bench --items 1000000`. `python -m bench interactive` runs the interactive-publish targets
(bench/interactive.py) instead."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import retention, sections
from bench.stack import Servers, Service, new_org

RESULTS = Path(__file__).resolve().parent / "results"


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main() -> None:
    if sys.argv[1:2] == ["interactive"]:  # the interactive-publish targets (issue 15): bench/interactive.py
        from bench.interactive import main as interactive

        interactive(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--items", type=int, default=100_000, help="values per backfill (names x sessions)")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=100, help="SDK publishes for 1 client (8 clients: calls/8 each)")
    parser.add_argument(
        "--sections", default="1,2,3,4", help="which sections to run, e.g. 1,3 (5: retention, bytes per item)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="section 1 rounds (reports the median ratio)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (service and CLI logs)")
    args = parser.parse_args()
    wanted = {int(s) for s in args.sections.split(",")}
    console = Console(width=170)
    work = Path(tempfile.mkdtemp(prefix="mi-bench-work-"))
    results: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "items": args.items,
        "sessions": args.sessions,
        "machine": sections.env_note(),
    }
    console.print(f"[bold]bench[/]: {args.items:,} items, starting servers and service (logs in {work})")
    servers = Servers.start()
    service = Service(servers, work)
    try:
        service.start_api()
        service.start_up_layout()
        service.start_noop_worker()
        db = servers.database_url
        names = sections.names_for(args.items, args.sessions)
        items = len(names) * args.sessions

        if wanted & {1, 3}:
            console.print(f"1. backfill vs raw PostgreSQL ceiling ({args.repeat} round(s), interleaved)")
            rounds = []
            for r in range(args.repeat):
                raw_small = sections.raw_ceiling(db, new_org(service, args.sessions, f"r5x{r}"), names, batch=5_000)
                org = new_org(service, args.sessions, f"bf{r}")
                csv_path = work / f"backfill{r}.csv"
                sections.write_csv(csv_path, org, names)
                backfill = sections.run_backfill(service, org, csv_path, items, work / f"backfill{r}-cli.log")
                csv_path.unlink()
                raw_big = sections.raw_ceiling(db, new_org(service, args.sessions, f"r50x{r}"), names, batch=50_000)
                ceiling = max(raw_small["items_per_s"], raw_big["items_per_s"])
                rounds.append(
                    {
                        "backfill": backfill,
                        "raw_batch_5000": raw_small,
                        "raw_batch_50000": raw_big,
                        "ceiling_items_per_s": ceiling,
                        "ratio": ratio(backfill["items_per_s"], ceiling),
                    }
                )
            median = sorted(rounds, key=lambda x: x["ratio"] or 0)[len(rounds) // 2]
            results["backfill"] = {
                **median,  # the round with the median ratio
                "rounds": rounds,
                "ratios": [x["ratio"] for x in rounds],
                "all_correct": all(x["backfill"]["correct"] for x in rounds),
                "target_ratio": 0.5,
            }
            results["memory"] = {
                "peak_rss_api_mb": max(x["backfill"]["peak_rss_api_mb"] for x in rounds),
                "peak_rss_workers_mb": max(x["backfill"]["peak_rss_workers_mb"] for x in rounds),
                "items": items,
            }

        if 2 in wanted:
            console.print("2. interactive publish (roboto SDK) vs direct upsert + no-op Celery round trip")
            org = new_org(service, args.sessions, "ia")
            sections.sdk_publishes(service, org, 1, 5)  # warm-up: definitions, connections
            one = sections.sdk_publishes(service, org, 1, args.calls)
            eight = sections.sdk_publishes(service, org, 8, max(1, args.calls // 8))
            base_one = sections.baseline_publishes(service, org, 1, args.calls)
            base_eight = sections.baseline_publishes(service, org, 8, max(1, args.calls // 8))
            bulk_org = new_org(service, args.sessions, "bg")
            bulk_csv = work / "background.csv"
            sections.write_csv(bulk_csv, bulk_org, names)
            during = sections.publishes_during_backfill(service, org, bulk_org, bulk_csv, work / "background-cli.log")
            results["interactive"] = {
                "sdk_1_client": one,
                "sdk_8_clients": eight,
                "baseline_1_client": base_one,
                "baseline_8_clients": base_eight,
                "p50_ratio_1_client": ratio(one["p50_ms"], base_one["p50_ms"]),
                "p50_ratio_8_clients": ratio(eight["p50_ms"], base_eight["p50_ms"]),
                "target_p50_ratio": 1.5,
                "sdk_1_client_during_backfill": during,
                "p95_during_backfill_vs_idle": ratio(during["p95_ms"], one["p95_ms"]),
            }

        if 4 in wanted:
            console.print("4. scale-out: 1 and 2 worker processes (concurrency 1 each)")
            scale = {}
            for n in (1, 2):
                service.stop_workers()
                for _ in range(n):
                    service.start_worker("bulk,interactive", 1)
                service.wait_workers()
                org = new_org(service, args.sessions, f"so{n}")
                path = work / f"scale{n}.csv"
                sections.write_csv(path, org, names)
                scale[f"{n}_worker"] = sections.run_backfill(service, org, path, items, work / f"scale{n}-cli.log")
            scale["speedup"] = ratio(scale["2_worker"]["items_per_s"], scale["1_worker"]["items_per_s"])
            results["scale_out"] = scale

        if 5 in wanted:
            console.print("5. retention: bytes per item in the jobs tables after a backfill, then after its purge")
            results["retention"] = retention.run(service, new_org(service, args.sessions, "rt"), names, items, work)
    finally:
        service.stop()
        servers.close()
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{args.items}.json"
    out.write_text(json.dumps(results, indent=2))
    shutil.copyfile(out, RESULTS / "latest.json")
    console.print(render(results))
    console.print(f"results: {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def render(r: dict) -> Table:
    table = Table(
        "section", "measure", "figure", "baseline (same run)", "ratio", "target", title="metrics-ingest bench"
    )
    if "backfill" in r:
        b = r["backfill"]
        table.add_row(
            "1 backfill",
            f"{r['items']:,} items CSV -> all outcomes (items/s)",
            f"{b['backfill']['items_per_s']:,.0f}" + ("" if b["all_correct"] else " (INCORRECT)"),
            f"{b['ceiling_items_per_s']:,.0f} raw COPY+upsert",
            str(b["ratio"]) + (f" (median of {', '.join(map(str, b['ratios']))})" if len(b["ratios"]) > 1 else ""),
            ">= 0.5",
        )
    if "interactive" in r:
        i = r["interactive"]
        for key, base, rk in (
            ("sdk_1_client", "baseline_1_client", "p50_ratio_1_client"),
            ("sdk_8_clients", "baseline_8_clients", "p50_ratio_8_clients"),
        ):
            s, bl = i[key], i[base]
            table.add_row(
                "2 interactive",
                f"{s['clients']} client(s), 20 metrics/call: p50/p95/p99 ms, metrics/s",
                f"{s['p50_ms']}/{s['p95_ms']}/{s['p99_ms']}, {s['metrics_per_s']:,.0f}/s",
                f"{bl['p50_ms']}/{bl['p95_ms']}/{bl['p99_ms']}, {bl['metrics_per_s']:,.0f}/s",
                str(i[rk]),
                "p50 <= 1.5",
            )
        d = i["sdk_1_client_during_backfill"]
        table.add_row(
            "2 interactive",
            "p95 during a backfill (1 client)",
            f"{d['p95_ms']} ms ({d['calls']} calls)",
            f"{i['sdk_1_client']['p95_ms']} ms idle",
            str(i["p95_during_backfill_vs_idle"]),
            "",
        )
    if "memory" in r:
        m = r["memory"]
        table.add_row(
            "3 memory", f"peak RSS during the {m['items']:,}-item backfill", f"API {m['peak_rss_api_mb']} MB",
            f"workers {m['peak_rss_workers_mb']} MB", "", "flat",
        )  # fmt: skip
    if "scale_out" in r:
        s = r["scale_out"]
        table.add_row(
            "4 scale-out",
            "backfill items/s, 1 vs 2 worker processes",
            f"{s['2_worker']['items_per_s']:,.0f} (2)",
            f"{s['1_worker']['items_per_s']:,.0f} (1)",
            str(s["speedup"]),
            "",
        )
    if "retention" in r:
        t = r["retention"]
        for key, label in (("after_backfill", "after the backfill"), ("after_purge", "after `jobs purge`")):
            b = t[key]
            table.add_row(
                "5 retention",
                f"jobs tables, bytes per item {label}",
                f"{b['bytes_per_item']} ({b['bytes']:,} B)",
                f"{b['bytes_per_item_after_vacuum']} after VACUUM ({b['bytes_after_vacuum']:,} B)",
                "",
                "bounded",
            )
    return table


if __name__ == "__main__":
    main()
