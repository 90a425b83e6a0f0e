"""The four measurements. Each returns plain dicts; `__main__` prints and saves them."""

from __future__ import annotations

import itertools
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from bench.stack import Org, Service, tree_rss

# The raw baselines' own SQL: a plain upsert of the same rows into the same table, nothing of ours in the way.
INSERT = (
    "INSERT INTO metric_values (metric_id, session_id, org_id, value, device_id, invocation_id, session_start_ns, "
    "session_end_ns, published_by, published) "
)
UPSERT_TAIL = (
    "ON CONFLICT (session_id, metric_key) DO UPDATE SET value = EXCLUDED.value, device_id = EXCLUDED.device_id, "
    "invocation_id = EXCLUDED.invocation_id, session_start_ns = EXCLUDED.session_start_ns, "
    "session_end_ns = EXCLUDED.session_end_ns, published_by = EXCLUDED.published_by, published = EXCLUDED.published "
    "WHERE metric_values.published <= EXCLUDED.published"  # last writer wins, as the service's own upsert
)
ROW_COLUMNS = "metric_id, session_id, value, device_id, session_start_ns, session_end_ns"


def metric_id() -> str:
    return "mt_bench" + secrets.token_hex(8)


def names_for(items: int, sessions: int) -> list[str]:
    return [f"bench.m{i:05d}" for i in range(max(1, items // sessions))]


def write_csv(path: Path, org: Org, names: list[str]) -> int:
    n = 0
    with open(path, "w") as fh:
        fh.write("session_id,name,value\n")
        for s_index, session in enumerate(org.sessions):
            for m_index, name in enumerate(names):
                fh.write(f"{session},{name},{(s_index * 7 + m_index) * 0.25}\n")
                n += 1
    return n


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


# -- 1. backfill vs raw ceiling ------------------------------------------------------------------------------
class RssSampler:
    """Peak RSS (process tree) of the API and of the workers, sampled every 0.2 s."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.peak = {"api": 0, "workers": 0}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            trees = self.service.process_trees()
            for role, pids in trees.items():
                self.peak[role] = max(self.peak[role], sum(tree_rss(p) for p in pids))
            self.stop.wait(0.2)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def backfill_cli(service: Service, org: Org, path: Path, log: Path) -> subprocess.Popen:
    env = service.env()
    env.update(ROBOTO_API_KEY=org.token, ROBOTO_SERVICE_ENDPOINT=service.url)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "backfill", str(path), "--plain"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_backfill(service: Service, org: Org, path: Path, items: int, log: Path) -> dict:
    with RssSampler(service) as rss:
        started = time.perf_counter()
        proc = backfill_cli(service, org, path, log)
        code = proc.wait()
        seconds = time.perf_counter() - started
    with psycopg.connect(service.servers.database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM metric_values WHERE org_id = %s", (org.org_id,)).fetchone()[0]
        ok, failed = conn.execute(
            "SELECT COALESCE(sum(succeeded), 0), COALESCE(sum(failed), 0) FROM jobs WHERE org_id = %s", (org.org_id,)
        ).fetchone()
    return {
        "items": items,
        "seconds": round(seconds, 2),
        "items_per_s": round(items / seconds, 1),
        "exit_code": code,
        "stored_values": stored,
        "outcomes_succeeded": int(ok),
        "outcomes_failed": int(failed),
        "correct": code == 0 and stored == items and int(ok) == items,
        "peak_rss_api_mb": round(rss.peak["api"] / 2**20, 1),
        "peak_rss_workers_mb": round(rss.peak["workers"] / 2**20, 1),
    }


def raw_ceiling(database_url: str, org: Org, names: list[str], batch: int) -> dict:
    """The same rows upserted straight through psycopg: COPY into a temp staging table + one INSERT ... ON
    CONFLICT per batch, a commit per batch. Definitions are created beforehand (not timed)."""
    metric_ids = {n: metric_id() for n in names}
    with psycopg.connect(database_url) as conn:
        with conn.cursor().copy(
            "COPY metric_definitions (metric_id, org_id, name, created_by, modified_by) FROM STDIN"
        ) as c:
            for n, m in metric_ids.items():
                c.write_row((m, org.org_id, n, "bench", "bench"))
        spans = conn.execute(
            "SELECT session_id, start_ns, end_ns FROM sessions WHERE org_id = %s", (org.org_id,)
        ).fetchall()
        conn.commit()
    span = {s: (a, b) for s, a, b in spans}
    rows = (
        (metric_ids[name], session, (s_index * 7 + m_index) * 0.25, None, *span[session])
        for s_index, session in enumerate(org.sessions)
        for m_index, name in enumerate(names)
    )  # generated batch by batch: the bench process stays small at 1,000,000 rows
    select = (
        "SELECT metric_id, session_id, %(o)s, value, device_id, NULL::text, session_start_ns, session_end_ns, "
        "%(by)s::text, now() FROM staging ORDER BY metric_id, session_id "
    )
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "CREATE TEMP TABLE staging (metric_id text, session_id text, value float8, device_id text, "
            "session_start_ns int8, session_end_ns int8) ON COMMIT DELETE ROWS"
        )
        conn.commit()
        total, seconds = 0, 0.0
        while part := sorted(itertools.islice(rows, batch)):  # building a batch is not timed: only the database work
            total += len(part)
            seconds += staged_upsert(conn, part, select, {"o": org.org_id, "by": "bench"})
    return {"items": total, "batch": batch, "seconds": round(seconds, 2), "items_per_s": round(total / seconds, 1)}


def staged_upsert(conn: psycopg.Connection, part: list[tuple], select: str, params: dict, then: str = "") -> float:
    """One batch the way the worker writes it: COPY into the `staging` temp table, INSERT `select` ... ON CONFLICT
    DO UPDATE, then the statement `then` if any (in the same transaction), commit. Returns the seconds it took."""
    started = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy(f"COPY staging ({ROW_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "float8", "text", "int8", "int8"])
            for row in part:
                copy.write_row(row)
        cur.execute(INSERT + select + UPSERT_TAIL, params)
        if then:
            cur.execute(then)
    conn.commit()
    return time.perf_counter() - started


# -- 2. interactive publish ----------------------------------------------------------------------------------
def sdk_client(service: Service, org: Org):
    from roboto.http import BearerTokenDecorator, RobotoClient

    return RobotoClient(endpoint=service.url, auth_decorator=BearerTokenDecorator(token=org.token))


def sdk_publishes(
    service: Service, org: Org, clients: int, calls_per_client: int, stop: threading.Event | None = None
) -> dict:
    """`clients` threads, each its own RobotoClient, each `calls_per_client` Metric.publish calls of 20 metrics."""
    from roboto.domain.metrics import Metric, MetricEntry

    def one_client(c: int) -> list[float]:
        client = sdk_client(service, org)
        latencies = []
        for k in range(calls_per_client):
            if stop is not None and stop.is_set():
                break
            session = org.sessions[(c * calls_per_client + k) % len(org.sessions)]
            entries = [MetricEntry(name=f"bench.i{j:02d}", value=float(k + j)) for j in range(20)]
            t0 = time.perf_counter()
            result = Metric.publish(session, entries, roboto_client=client)
            latencies.append(time.perf_counter() - t0)
            assert len(result.succeeded) == 20, result
        return latencies

    return run_clients(one_client, clients)


def run_clients(one_client, clients: int) -> dict:
    """Run `one_client(i)` (returning its call latencies) on `clients` threads at once; summarize all calls."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        samples = [x for xs in pool.map(one_client, range(clients)) for x in xs]
    seconds = time.perf_counter() - started
    return summarize(samples, seconds, metrics_per_call=20) | {"clients": clients}


def summarize(samples: list[float], seconds: float, metrics_per_call: int) -> dict:
    return {
        "calls": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1000, 1),
        "p95_ms": round(percentile(samples, 95) * 1000, 1),
        "p99_ms": round(percentile(samples, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(samples) * 1000, 1) if samples else None,
        "metrics_per_s": round(len(samples) * metrics_per_call / seconds, 1) if seconds else None,
    }


def baseline_publishes(service: Service, org: Org, clients: int, calls_per_client: int) -> dict:
    """The same work with nothing of ours in the way: a direct 20-row upsert in its own transaction plus a no-op
    Celery round trip (send, run in a worker, wait for the result) on the same Redis."""
    from bench.noop import client_app

    noop = client_app(service.servers.broker_url).signature("bench.noop")
    names = [f"bench.b{j:02d}" for j in range(20)]
    metric_ids = {n: metric_id() for n in names}
    with psycopg.connect(service.servers.database_url) as conn:
        for n, m in metric_ids.items():
            conn.execute(
                "INSERT INTO metric_definitions (metric_id, org_id, name, created_by, modified_by) "
                "VALUES (%s, %s, %s, 'bench', 'bench') ON CONFLICT DO NOTHING",
                (m, org.org_id, n),
            )
        metric_ids = dict(
            conn.execute(
                "SELECT name, metric_id FROM metric_definitions WHERE org_id = %s AND name = ANY(%s)",
                (org.org_id, names),
            ).fetchall()
        )
        spans = dict(
            (s, (a, b))
            for s, a, b in conn.execute(
                "SELECT session_id, start_ns, end_ns FROM sessions WHERE org_id = %s", (org.org_id,)
            )
        )
    noop.apply_async(queue="bench_noop").get(timeout=60)  # warm: the worker is up
    sql = (
        INSERT + "SELECT m, s, %(o)s, v, NULL, NULL, a, b, 'bench', now() FROM unnest(%(m)s::text[], %(s)s::text[], "
        "%(v)s::float8[], %(a)s::int8[], %(b)s::int8[]) AS t(m, s, v, a, b) ORDER BY m, s " + UPSERT_TAIL
    )

    def one_client(c: int) -> list[float]:
        latencies = []
        with psycopg.connect(service.servers.database_url) as conn:
            for k in range(calls_per_client):
                session = org.sessions[(c * calls_per_client + k) % len(org.sessions)]
                a, b = spans[session]
                t0 = time.perf_counter()
                with conn.transaction():
                    conn.execute(
                        sql,
                        {
                            "o": org.org_id,
                            "m": [metric_ids[n] for n in names],
                            "s": [session] * 20,
                            "v": [float(k + j) for j in range(20)],
                            "a": [a] * 20,
                            "b": [b] * 20,
                        },
                    )
                noop.apply_async(queue="bench_noop").get(timeout=60)
                latencies.append(time.perf_counter() - t0)
        return latencies

    return run_clients(one_client, clients)


def publishes_during_backfill(service: Service, org: Org, bulk_org: Org, path: Path, log: Path) -> dict:
    """One SDK client publishing while a backfill of `path` runs; stops when the backfill ends."""
    stop = threading.Event()
    proc = backfill_cli(service, bulk_org, path, log)
    with psycopg.connect(service.servers.database_url, autocommit=True) as conn:
        while proc.poll() is None:  # from the first accepted bulk job on
            if conn.execute("SELECT 1 FROM jobs WHERE org_id = %s", (bulk_org.org_id,)).fetchone():
                break
            time.sleep(0.05)
    waiter = threading.Thread(target=lambda: (proc.wait(), stop.set()), daemon=True)
    waiter.start()
    result = sdk_publishes(service, org, 1, 10_000, stop=stop)
    proc.wait()
    return result | {"backfill_exit_code": proc.returncode}


def env_note() -> dict:
    return {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
