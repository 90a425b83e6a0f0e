"""Read-path benchmark at one or more sizes, driving the service as a client would (HTTP and the CLI); plain SQL
only for the bare baselines.

Starts the service like `python -m bench` does (bench/stack.py), creates an org and a token with the CLI, devices
over HTTP, then for each size in `--rows` (ascending; each size adds rows over the same two-year span):

* sessions through `POST /v1/sessions/batch` (timed; compared with the single route, 8 clients, once);
* one value per session through `metrics-ingest backfill FILE` (timed);
* the rollups drained with `metrics-ingest rollups refresh --wait` (timed; skipped on a version without them);
* reads (median of `--repeat` after one warm-up, ours and the bare SQL alternating, on a keep-alive connection
  replaced (untimed) whenever it may have idled into the API's 5 s timeout): the first 10,000-row query page (with
  `total_count`) vs the bare page SELECT plus the bare count(*); a later page (keyset) vs the bare keyset SELECT;
  aggregates (monthly mean UTC, daily max Europe/Berlin, weekly sum Asia/Kolkata by device, monthly count of one
  device) vs the bare GROUP BY;
* index bytes per stored value of metric_values, next to the index set it had before issue 19 (both built fresh
  for the ratio; today's as loaded printed beside it).

Prints `name: ours / reference = ratio (goal)` lines, then the growth of each read from the first size to the last,
and writes JSON under bench/results/.

    python bench/reads.py --rows 1000000,10000000
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stack import Servers, Service  # noqa: E402

S = 1_000_000_000
START = 1_704_067_200 * S  # 2024-01-01T00:00Z
SPAN = 2 * 365 * 86_400 * S  # two years of sessions
PAGE = 10_000
METRIC = "bench.cpu"
DEVICES = [f"robot{i:02d}" for i in range(20)]
BATCH = 10_000
# The index set of metric_values before issue 19, measured for reference (created temporarily when gone).
INDEXES_BEFORE = {
    "pk": "(metric_id, session_id)",
    "end": "(metric_id, session_end_ns, session_id)",
    "start": "(metric_id, session_start_ns, session_id)",
    "org_session": "(org_id, session_id)",
}


def cli(service: Service, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        env={**service.env(), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"metrics-ingest {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def sessions(first: int, count: int, seed: int) -> Iterator[dict]:
    """Session i: deterministic from (seed, i), so a bigger run holds the smaller one's rows."""
    for i in range(first, first + count):
        rnd = random.Random(seed * 1_000_003 + i)
        end = START + rnd.randrange(SPAN)
        device = [] if i % 10 == 0 else [DEVICES[i % 20]]
        yield {
            "session_id": f"ss_{i:09d}",
            "start_time_ns": end - rnd.randrange(3600 * S),
            "end_time_ns": end,
            "device_ids": device,
            "value": round(rnd.uniform(0, 100), 3),
        }


def _chunks(it: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for x in it:
        batch.append(x)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load(service: Service, token: str, first: int, count: int, seed: int, tmp: Path) -> dict:
    """Sessions over the bulk route (2 calls in flight), then the values through `metrics-ingest backfill`."""
    csv_path = tmp / f"values-{first}.csv"
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    with (
        httpx.Client(base_url=service.url, headers=headers, timeout=600) as client,
        ThreadPoolExecutor(2) as pool,
        csv_path.open("w") as out,
    ):
        out.write("session_id,name,value\n")

        def send(batch: list[dict]) -> int:
            body = {"sessions": [{k: v for k, v in s.items() if k != "value"} for s in batch]}
            data = client.post("/v1/sessions/batch", json=body).json()["data"]
            if data["failed"]:
                raise RuntimeError(f"sessions failed: {data['items'][:3]}")
            return len(batch)

        futures = []
        for batch in _chunks(sessions(first, count, seed), BATCH):
            out.writelines(f"{s['session_id']},{METRIC},{s['value']}\n" for s in batch)
            futures.append(pool.submit(send, batch))
            while len(futures) > 4:
                futures.pop(0).result()
        for f in futures:
            f.result()
    sessions_s = time.perf_counter() - started
    started = time.perf_counter()
    env = {"ROBOTO_API_KEY": token, "ROBOTO_SERVICE_ENDPOINT": service.url}
    cli(service, "backfill", str(csv_path), "--plain", "--chunk-items", "50000", env=env)
    values_s = time.perf_counter() - started
    csv_path.unlink()
    print(
        f"loaded {count:,} sessions in {sessions_s:.1f} s ({count / sessions_s:,.0f}/s) and their values in "
        f"{values_s:.1f} s ({count / values_s:,.0f}/s)",
        flush=True,
    )
    return {"sessions_per_s": count / sessions_s, "values_per_s": count / values_s}


def drain_rollups(service: Service) -> float | None:
    """`metrics-ingest rollups refresh --wait` after a load (the workers' sweep would get there on its own, after
    its quiet delay): timed and printed. None on a service without rollups."""
    started = time.perf_counter()
    try:
        out = cli(service, "rollups", "refresh", "--wait", "--pairs", "200")
    except RuntimeError as err:
        if "No such command" not in str(err):
            raise
        return None
    took = time.perf_counter() - started
    print(f"rollups refresh --wait: {took:.1f} s ({out.strip()})", flush=True)
    return took


def single_route_rate(service: Service, token: str, tag: str, calls: int = 1600, clients: int = 8) -> float:
    """Sessions/s through `POST /v1/sessions`, one session a call, `clients` threads."""
    headers = {"Authorization": f"Bearer {token}"}

    def one(k: int) -> None:
        with httpx.Client(base_url=service.url, headers=headers, timeout=60) as client:
            for i in range(k, calls, clients):
                body = {"session_id": f"ss_single_{tag}_{i}", "start_time_ns": i, "end_time_ns": i + 1}
                if client.post("/v1/sessions", json=body).status_code != 201:
                    raise RuntimeError("single session route failed")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))
    return calls / (time.perf_counter() - started)


def median_ms(fns: tuple[Callable[[], object], ...], repeat: int, fresh: Callable[[], None]) -> list[float]:
    """Median ms of each function over `repeat` rounds after one warm-up each. The functions alternate within a
    round, so a load swing on a shared machine hits ours and the bare SQL alike; `fresh()` (untimed) starts each
    round, e.g. with a new HTTP connection."""
    for fn in fns:
        fresh()
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        fresh()
        for fn, spent in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            spent.append((time.perf_counter() - started) * 1000)
    return [statistics.median(spent) for spent in times]


class Api:
    """POSTs on one keep-alive connection. The API closes a connection idle for 5 s, and a bare aggregate between two
    of ours can last longer on a loaded machine: `fresh()` opens a new one (untimed) when the last answer is more than
    IDLE_S old, else keeps the warm one (a fresh TCP connection would slow the first 5 MB page down)."""

    IDLE_S = 2.0

    def __init__(self, url: str, token: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None
        self.last_answer = 0.0

    def fresh(self) -> None:
        if self.conn is None or time.monotonic() - self.last_answer > self.IDLE_S:
            self.phase()

    def phase(self) -> None:
        """A new connection, connected now (so a timed request does not pay for the handshake)."""
        if self.conn is not None:
            self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        self.conn.connect()

    def post(self, path: str, body: dict, token: str | None = None) -> Callable[[], bytes]:
        raw = json.dumps(body).encode()
        url = path + (f"?page_token={token}" if token else "")

        def call() -> bytes:
            assert self.conn is not None
            self.conn.request("POST", url, body=raw, headers=self.headers)
            resp = self.conn.getresponse()
            content = resp.read()
            self.last_answer = time.monotonic()
            if resp.status != 200:
                raise RuntimeError(f"{resp.status}: {content[:500]!r}")
            return content

        return call

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


COLUMNS = (
    "org_id, metric_id, session_id, value, device_id, invocation_id, session_start_ns, session_end_ns, "
    "published_by, published"
)
# METRIC_MATCH: how the bare SQL picks the metric's rows, written for the index set the table has (bare_sql).
WINDOW = "METRIC_MATCH AND session_end_ns >= %s AND session_end_ns < %s"
BARE = {
    "page": f"SELECT {COLUMNS} FROM metric_values WHERE {WINDOW} ORDER BY session_end_ns, session_id LIMIT %s",
    "count": f"SELECT count(*) FROM metric_values WHERE {WINDOW}",
    "keyset": f"SELECT {COLUMNS} FROM metric_values WHERE {WINDOW} AND (session_end_ns, session_id) > (%s, %s) "
    "ORDER BY session_end_ns, session_id LIMIT %s",
    "monthly_mean_utc": "SELECT date_trunc('month', to_timestamp(session_end_ns / 1e9) AT TIME ZONE 'UTC') AS b, "
    f"count(*), avg(value) FROM metric_values WHERE {WINDOW} GROUP BY 1 ORDER BY 1",
    "daily_max_berlin": "SELECT date_trunc('day', to_timestamp(session_end_ns / 1e9), 'Europe/Berlin') AS b, "
    f"count(*), max(value) FROM metric_values WHERE {WINDOW} GROUP BY 1 ORDER BY 1",
    "weekly_sum_kolkata_by_device": "SELECT date_trunc('week', to_timestamp(session_end_ns / 1e9), 'Asia/Kolkata') "
    f"AS b, device_id, count(*), sum(value) FROM metric_values WHERE {WINDOW} GROUP BY 1, 2 ORDER BY 1, 2",
    "monthly_count_one_device": "SELECT date_trunc('month', to_timestamp(session_end_ns / 1e9) AT TIME ZONE 'UTC') "
    f"AS b, count(*) FROM metric_values WHERE {WINDOW} AND device_id = 'robot03' GROUP BY 1 ORDER BY 1",
}


def bare_sql(sql: psycopg.Connection) -> dict[str, str]:
    """BARE for this database: with the compact metric key of issue 19 (a column computed from metric_id that leads
    the indexes) the metric is matched on it, as plain SQL written for that schema would; else on metric_id."""
    keyed = sql.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'metric_values' AND column_name = 'metric_key'"
    ).fetchone()
    match = "metric_key = hashtextextended(%s::text, 0)" if keyed else "metric_id = %s"
    return {name: q.replace("METRIC_MATCH", match) for name, q in BARE.items()}


def measure(api: Api, sql: psycopg.Connection, metric_id: str, repeat: int) -> dict:
    lo, hi = START, START + SPAN
    window = {"time_filter": "end_time", "start_time_ns": lo, "end_time_ns": hi}
    ids = {"include_device_ids": {}, "include_session_ids": {}, "include_invocation_ids": {}}
    query = {"name": METRIC, **window, **ids, "max_results": PAGE}
    monthly = {"name": METRIC, "period": "monthly", "aggregation": "mean", **window, **ids}
    api.phase()
    first = json.loads(api.post("/v1/metrics/query", query)())["data"]
    token = first["next_token"]
    cursor = (first["items"][-1]["max_timestamp_ns"], first["items"][-1]["session_id"])

    def bare(*statements: tuple[str, tuple]) -> Callable[[], object]:
        return lambda: [sql.execute(q, p).fetchall() for q, p in statements]

    queries = bare_sql(sql)

    w = (metric_id, lo, hi)
    cases: dict[str, tuple[Callable, Callable]] = {
        "query_first_page": (
            api.post("/v1/metrics/query", query),
            bare((queries["page"], (*w, PAGE + 1)), (queries["count"], w)),
        ),
        "query_next_page": (
            api.post("/v1/metrics/query", query, token),
            bare((queries["keyset"], (*w, *cursor, PAGE + 1))),
        ),
        "aggregate_monthly_mean_utc": (
            api.post("/v1/metrics/aggregate", monthly),
            bare((queries["monthly_mean_utc"], w)),
        ),
        "aggregate_daily_max_berlin": (
            api.post(
                "/v1/metrics/aggregate", dict(monthly, period="daily", aggregation="max", time_zone="Europe/Berlin")
            ),
            bare((queries["daily_max_berlin"], w)),
        ),
        "aggregate_weekly_sum_kolkata_by_device": (
            api.post(
                "/v1/metrics/aggregate",
                dict(
                    monthly, period="weekly", aggregation="sum", time_zone="Asia/Kolkata", group_by="device.device_id"
                ),
            ),
            bare((queries["weekly_sum_kolkata_by_device"], w)),
        ),
        "aggregate_monthly_count_one_device": (
            api.post("/v1/metrics/aggregate", dict(monthly, aggregation="count", include_device_ids=["robot03"])),
            bare((queries["monthly_count_one_device"], w)),
        ),
    }
    out = {}
    for name, (ours_fn, bare_fn) in cases.items():
        api.phase()
        ours_ms, bare_ms = median_ms((ours_fn, bare_fn), repeat, api.fresh)
        out[name] = {"ours_ms": round(ours_ms, 2), "bare_ms": round(bare_ms, 2), "ratio": round(ours_ms / bare_ms, 3)}
    return out


def _btree_columns(indexdef: str) -> str:
    return indexdef[indexdef.index("USING btree ") + len("USING btree ") :]


def _fresh_size(sql: psycopg.Connection, name: str, cols: str) -> int:
    """Bytes of a btree on `cols` built now by CREATE INDEX (then dropped)."""
    sql.execute(f"CREATE INDEX {name} ON metric_values {cols}")
    size = sql.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
    sql.execute(f"DROP INDEX {name}")
    return size


def index_bytes(sql: psycopg.Connection) -> dict:
    """Index bytes per stored value of metric_values: today's indexes, and the set it had before issue 19.

    Like for like, both sets are built fresh by CREATE INDEX for the ratio (the goal line): indexes grown by
    inserts in random time order are less full (about 70% for the time indexes, against 90% built), whichever the
    set. Today's indexes as the load left them are reported beside it (`on_disk`)."""
    rows = sql.execute("SELECT reltuples FROM pg_class WHERE relname = 'metric_values'").fetchone()
    values = max(float(rows[0]), 1.0)
    on_disk = sql.execute("SELECT pg_indexes_size('metric_values')").fetchone()[0]
    defs = {
        r[0]: r[1]
        for r in sql.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'metric_values'::regclass"
        )
    }
    now = sum(_fresh_size(sql, f"bench_now_{k}", _btree_columns(d)) for k, d in enumerate(defs.values()))
    before = sum(_fresh_size(sql, f"bench_before_{key}", cols) for key, cols in INDEXES_BEFORE.items())
    rollups = sql.execute("SELECT COALESCE(pg_total_relation_size(to_regclass('metric_rollups')), 0)").fetchone()[0]
    return {
        "values": int(values),
        "index_bytes_per_value": round(now / values, 1),
        "before_index_bytes_per_value": round(before / values, 1),
        "on_disk_index_bytes_per_value": round(on_disk / values, 1),
        "rollup_bytes_per_value": round(rollups / values, 1),
        "indexes": defs,
    }


def line(name: str, ours: float, reference: float, goal: str, unit: str = "ms") -> None:
    print(f"{name}: {ours:,.1f} / {reference:,.1f} {unit} = {ours / reference:.3f} ({goal})", flush=True)


GOALS = {
    "query_first_page": "no goal vs bare; growth <= 2",
    "query_next_page": "<= 1.3",
    "aggregate_monthly_mean_utc": "<= 0.1 at 10M",
    "aggregate_daily_max_berlin": "<= 0.1 at 10M",
    "aggregate_weekly_sum_kolkata_by_device": "<= 0.1 at 10M",
    "aggregate_monthly_count_one_device": "<= 0.1 at 10M",
}


def stored_rows(sql: psycopg.Connection, org_id: str) -> int:
    """Values of the bench metric already stored (a re-used data dir): the next load starts after them."""
    row = sql.execute(
        "SELECT count(*) FROM metric_values v JOIN metric_definitions d USING (metric_id) "
        "WHERE d.org_id = %s AND d.name = %s",
        (org_id, METRIC),
    ).fetchone()
    return int(row[0])


def run(sizes: list[int], repeat: int, seed: int, data_dir: Path | None = None) -> dict:
    servers = Servers.start(data_dir)
    service = Service(servers, servers.tmp / "logs")
    service.log_dir.mkdir(exist_ok=True)
    report: dict = {"sizes": {}, "repeat": repeat, "seed": seed}
    try:
        service.start_api()
        service.start_up_layout()
        org_id = f"og_reads_{seed}"
        with psycopg.connect(servers.database_url, autocommit=True) as sql:
            reused = sql.execute("SELECT 1 FROM orgs WHERE org_id = %s", (org_id,)).fetchone() is not None
        if not reused:
            cli(service, "org", "create", org_id)
        token = cli(service, "token", "create", "--org", org_id, "--principal", "bench@example.com").strip()
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"}) as client:
            for d in DEVICES:
                resp = client.post("/v1/devices", json={"device_id": d})
                if not (reused and resp.status_code == 409):
                    resp.raise_for_status()
        single = single_route_rate(service, token, tag=datetime.now(UTC).strftime("%Y%m%dT%H%M%S"))
        report["single_route_sessions_per_s"] = round(single, 1)
        api = Api(service.url, token)
        with psycopg.connect(servers.database_url, autocommit=True) as sql:
            loaded = stored_rows(sql, org_id)
            for size in sizes:
                rates = None
                if size > loaded:
                    rates = load(service, token, loaded, size - loaded, seed, servers.tmp)
                    loaded = size
                    rates["rollups_refresh_s"] = drain_rollups(service)
                elif size < loaded:
                    raise SystemExit(f"the data dir holds {loaded:,} rows, more than {size:,}: use another one")
                else:
                    print(f"re-using the {loaded:,} rows stored in {servers.tmp}", flush=True)
                    drain_rollups(service)
                sql.execute("VACUUM ANALYZE metric_values")
                if sql.execute("SELECT to_regclass('metric_rollups')").fetchone()[0]:
                    sql.execute("VACUUM ANALYZE metric_rollups")
                metric_id = sql.execute(
                    "SELECT metric_id FROM metric_definitions WHERE name = %s", (METRIC,)
                ).fetchone()[0]
                print(f"--- {size:,} rows", flush=True)
                if rates is not None:
                    line("sessions_bulk_rate", rates["sessions_per_s"], single, ">= 20", "sessions/s")
                cases = measure(api, sql, metric_id, repeat)
                for name, c in cases.items():
                    line(name, c["ours_ms"], c["bare_ms"], GOALS[name])
                sizes_bytes = index_bytes(sql)
                line(
                    "index_bytes_per_value",
                    sizes_bytes["index_bytes_per_value"],
                    sizes_bytes["before_index_bytes_per_value"],
                    "<= 0.7 at 10M",
                    "B",
                )
                print(
                    f"index bytes per value as loaded: {sizes_bytes['on_disk_index_bytes_per_value']}; "
                    f"rollup bytes per value: {sizes_bytes['rollup_bytes_per_value']}",
                    flush=True,
                )
                report["sizes"][str(size)] = {"load": rates, "cases": cases, "storage": sizes_bytes}
        api.close()
        if len(sizes) > 1:
            small, big = report["sizes"][str(sizes[0])], report["sizes"][str(sizes[-1])]
            print(f"--- growth {sizes[-1]:,} vs {sizes[0]:,} rows", flush=True)
            for name in small["cases"]:
                line(f"{name}_growth", big["cases"][name]["ours_ms"], small["cases"][name]["ours_ms"], "<= 2")
        return report
    finally:
        service.stop()
        servers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000", help="Sizes, comma-separated, ascending (e.g. 1000000,10000000).")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="Embedded servers in this folder, kept afterwards: a later run with the same folder and seed re-uses "
        "the rows stored there and loads only what a bigger size adds (the load of 1M rows takes minutes).",
    )
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.rows.split(","))
    report = run(sizes, args.repeat, args.seed, args.data_dir)
    report["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"reads-{args.rows.replace(',', '-')}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
