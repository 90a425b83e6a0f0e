"""Read-path benchmark: our query page and aggregate through the HTTP API next to the bare SQL through psycopg.

Loads `--rows` metric values (default 1,000,000) with COPY into a fresh database, starts the API on it, then times
(median of `--repeat` runs after one warm-up):

* query, first page of 10,000 rows (our endpoint also counts the window for `total_count`)
  vs. the bare page SELECT plus the bare count(*);
* query, a later page (keyset) vs. the bare keyset page SELECT;
* aggregate over every row, monthly mean in UTC vs. a bare `date_trunc` GROUP BY;
* aggregate over every row, daily max in Europe/Berlin vs. a bare `date_trunc(..., 'Europe/Berlin')` GROUP BY.

Prints the ratios (ours / bare) and writes JSON under bench/results/.

    python bench/reads.py --rows 50000
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.config import to_libpq_url  # noqa: E402
from tests.support.servers import start_servers  # noqa: E402
from tests.support.stack import Stack  # noqa: E402
from tests.support.tenant import new_tenant  # noqa: E402

S = 1_000_000_000
START = 1_704_067_200 * S  # 2024-01-01T00:00Z
SPAN = 2 * 365 * 86_400 * S  # two years of sessions
PAGE = 10_000
METRIC = "bench.cpu"


def load(database_url: str, org_id: str, principal: str, rows: int, seed: int) -> str:
    rnd = random.Random(seed)
    metric_id = "mt_bench"
    published = datetime(2026, 5, 1, tzinfo=UTC)
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO metric_definitions (metric_id, org_id, name, created_by, modified_by) "
            "VALUES (%s, %s, %s, %s, %s)",
            (metric_id, org_id, METRIC, principal, principal),
        )
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY metric_values (metric_id, session_id, org_id, value, device_id, invocation_id, "
                "session_start_ns, session_end_ns, published_by, published) FROM STDIN"
            ) as copy,
        ):
            for i in range(rows):
                end = START + rnd.randrange(SPAN)
                device = None if i % 10 == 0 else f"robot{i % 20:02d}"
                copy.write_row(
                    (
                        metric_id,
                        f"ss_{i:08d}",
                        org_id,
                        rnd.uniform(0, 100),
                        device,
                        None,
                        end - rnd.randrange(3600 * S),
                        end,
                        principal,
                        published,
                    )
                )
        load_s = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE metric_values")
    print(f"loaded {rows} rows in {load_s:.1f} s ({rows / load_s:,.0f} rows/s)")
    return metric_id


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(rows: int, repeat: int, seed: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    servers = start_servers(tmp)
    stack = None
    try:
        database_url = servers.new_database()
        stack = Stack(database_url, servers.new_broker(), tmp)
        stack.start_api()
        tenant = new_tenant(database_url, stack.url)
        metric_id = load(database_url, tenant.org_id, tenant.principal, rows, seed)
        lo, hi = START, START + SPAN
        query_body = {
            "name": METRIC,
            "time_filter": "end_time",
            "start_time_ns": lo,
            "end_time_ns": hi,
            "max_results": PAGE,
            "include_device_ids": {},
            "include_session_ids": {},
            "include_invocation_ids": {},
        }
        monthly = {
            "name": METRIC,
            "period": "monthly",
            "aggregation": "mean",
            "time_filter": "end_time",
            "start_time_ns": lo,
            "end_time_ns": hi,
            "include_device_ids": {},
            "include_session_ids": {},
            "include_invocation_ids": {},
        }
        daily_berlin = dict(monthly, period="daily", aggregation="max", time_zone="Europe/Berlin", week_start="monday")
        client = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {tenant.token}"}, timeout=300)
        conn = psycopg.connect(to_libpq_url(database_url), autocommit=True)

        host, port = stack.url.removeprefix("http://").split(":")
        api = http.client.HTTPConnection(host, int(port), timeout=300)  # keep-alive, little client overhead
        headers = {"Authorization": f"Bearer {tenant.token}", "Content-Type": "application/json"}

        def ours(path: str, body: dict, token: str | None = None) -> Callable[[], object]:
            raw = json.dumps(body).encode()
            url = path + (f"?page_token={token}" if token else "")

            def call() -> bytes:
                api.request("POST", url, body=raw, headers=headers)
                resp = api.getresponse()
                content = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{resp.status}: {content[:500]!r}")
                return content

            return call

        first = client.post("/v1/metrics/query", json=query_body).json()["data"]
        assert len(first["items"]) == min(PAGE, rows), len(first["items"])
        token = first["next_token"]
        cursor_t, cursor_s = first["items"][-1]["max_timestamp_ns"], first["items"][-1]["session_id"]

        columns = (
            "org_id, metric_id, session_id, value, device_id, invocation_id, session_start_ns, session_end_ns, "
            "published_by, published"
        )
        window = "metric_id = %s AND session_end_ns >= %s AND session_end_ns < %s"
        page_sql = f"SELECT {columns} FROM metric_values WHERE {window} ORDER BY session_end_ns, session_id LIMIT %s"
        count_sql = (
            "SELECT count(*) FROM metric_values WHERE metric_id = %s AND session_end_ns >= %s AND session_end_ns < %s"
        )
        keyset_sql = (
            f"SELECT {columns} FROM metric_values WHERE {window} "
            "AND (session_end_ns, session_id) > (%s, %s) ORDER BY session_end_ns, session_id LIMIT %s"
        )
        monthly_sql = (
            "SELECT date_trunc('month', to_timestamp(session_end_ns / 1e9) AT TIME ZONE 'UTC') AS b, count(*), "
            "avg(value) FROM metric_values WHERE metric_id = %s AND session_end_ns >= %s AND session_end_ns < %s "
            "GROUP BY 1 ORDER BY 1"
        )
        daily_sql = (
            "SELECT date_trunc('day', to_timestamp(session_end_ns / 1e9), 'Europe/Berlin') AS b, count(*), "
            "max(value) FROM metric_values WHERE metric_id = %s AND session_end_ns >= %s AND session_end_ns < %s "
            "GROUP BY 1 ORDER BY 1"
        )

        def bare(*statements: tuple[str, tuple]) -> Callable[[], object]:
            def call() -> list:
                out = []
                for sql, params in statements:
                    out.append(conn.execute(sql, params).fetchall())
                return out

            return call

        cases = {
            "query_first_page": (
                ours("/v1/metrics/query", query_body),
                bare((page_sql, (metric_id, lo, hi, PAGE + 1)), (count_sql, (metric_id, lo, hi))),
            ),
            "query_next_page": (
                ours("/v1/metrics/query", query_body, token),
                bare((keyset_sql, (metric_id, lo, hi, cursor_t, cursor_s, PAGE + 1))),
            ),
            "aggregate_monthly_mean_utc": (
                ours("/v1/metrics/aggregate", monthly),
                bare((monthly_sql, (metric_id, lo, hi))),
            ),
            "aggregate_daily_max_berlin": (
                ours("/v1/metrics/aggregate", daily_berlin),
                bare((daily_sql, (metric_id, lo, hi))),
            ),
        }
        results = {}
        for name, (ours_fn, bare_fn) in cases.items():
            ours_ms = median_ms(ours_fn, repeat)
            bare_ms = median_ms(bare_fn, repeat)
            results[name] = {
                "ours_ms": round(ours_ms, 2),
                "bare_ms": round(bare_ms, 2),
                "ratio": round(ours_ms / bare_ms, 2),
            }
            print(f"{name:30s} ours {ours_ms:9.1f} ms   bare SQL {bare_ms:9.1f} ms   ratio {ours_ms / bare_ms:5.2f}")
        client.close()
        api.close()
        conn.close()
        return {"rows": rows, "repeat": repeat, "page": PAGE, "cases": results}
    finally:
        if stack is not None:
            stack.stop()
        servers.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report = run(args.rows, args.repeat, args.seed)
    report["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"reads-{args.rows}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
