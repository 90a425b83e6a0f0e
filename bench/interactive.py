"""`python -m bench interactive`: the five interactive-publish targets of issue 15, from one run.

The service runs as `metrics-ingest up` (supervisor, API, a bulk+interactive worker and an interactive-only worker)
on embedded PostgreSQL and Redis (or the servers named by the environment), and is driven only through its public
interfaces: the roboto 0.53 SDK, HTTP and the CLI. MLflow 3.17.2 runs as `mlflow server --workers 2` on the same
PostgreSQL (a database of its own), from a virtualenv the bench creates once under `.bench-venvs/`.

1. One SDK client, `Metric.publish` of 20 metrics to a session not published to before: p50 against the floor, the
   sum of three p50s measured interleaved with it: a no-op Celery task's round trip (solo worker, same Redis), one
   direct 20-row upsert (psycopg, kept connection, own transaction) and the SDK's `GET /healthz` on the same client.
2. Eight SDK clients (threads, one RobotoClient each): metrics/s, against eight MLflow clients doing one `log_batch`
   of 20 metrics per run (runs created beforehand), one after the other on the same machine.
3. CPU seconds (user + system, from /proc/<pid>/stat, summed over the process trees) per 1,000 metrics during (2):
   the `up` tree (supervisor, API, workers and their pool children) against the `mlflow server` tree.
4. A 1,000-entry SDK publish: the share of its wall time after its chunk committed (the moment the commit's
   notification reaches a listener of the bench); the same with a plain HTTP client for comparison.
5. Scale-out: one bulk job queued with no worker running, then processed by 1 and by 2 worker processes
   (concurrency 1 each): items/s between the job's `started` and `finished`, less the chunks still in flight.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

from bench import sections
from bench.stack import Org, Servers, Service, free_port, new_org, stop_process

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MLFLOW_VERSION = "3.17.2"
MLFLOW_VENV = ROOT / ".bench-venvs" / f"mlflow-{MLFLOW_VERSION}"
# PostgreSQL drivers: SQLAlchemy 2.1 (MLflow's) picks psycopg 3 for `postgresql://`; psycopg2 for older setups.
MLFLOW_PACKAGES = (f"mlflow=={MLFLOW_VERSION}", "psycopg[binary]", "psycopg2-binary")
METRICS_PER_CALL = 20
NOTIFY_CHANNEL = "metrics_ingest_jobs"  # where a worker's commit of a job's last chunk notifies (ingest/jobs.py)
CHUNK_ITEMS = int(os.environ.get("METRICS_INGEST_CHUNK_ITEMS", "5000"))  # the service's chunk size (its default)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

GOALS = {
    "one_client": ("<=", 1.5),
    "eight_clients": (">=", 2.0),
    "cpu": ("<=", 0.5),
    "after_commit": ("<=", 0.10),
    "scale_out": (">=", 1.6),
}


# -- CPU of process trees ------------------------------------------------------------------------------------
def tree_pids(root: int) -> list[int]:
    try:
        parent = psutil.Process(root)
        return [root, *(p.pid for p in parent.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def cpu_of(pid: int) -> float | None:
    """User + system CPU seconds of one process (not of its reaped children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5): utime, stime


class TreeCpu:
    """CPU seconds spent by a process tree between `start()` and `stop()`, per process name."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.before: dict[int, float] = {}
        self.by_name: dict[str, float] = {}
        self.seconds = 0.0

    def start(self) -> None:
        self.before = {p: c for p in tree_pids(self.root) if (c := cpu_of(p)) is not None}

    def stop(self) -> float:
        self.by_name = {}
        for pid in tree_pids(self.root):
            now = cpu_of(pid)
            if now is None:
                continue
            spent = now - self.before.get(pid, 0.0)
            name = describe(pid)
            self.by_name[name] = round(self.by_name.get(name, 0.0) + spent, 3)
        self.seconds = round(sum(self.by_name.values()), 3)
        return self.seconds


def describe(pid: int) -> str:
    with contextlib.suppress(psutil.Error):
        cmd = psutil.Process(pid).cmdline()
        text = " ".join(cmd)
        for key, label in (
            ("metrics-ingest up", "supervisor"),
            ("api_shim", "api"),
            ("--lanes interactive --", "worker-interactive"),
            ("-m worker", "worker"),
            ("mlflow server", "mlflow cli"),
            ("uvicorn", "mlflow uvicorn"),
            ("gunicorn", "mlflow gunicorn"),
            ("multiprocessing", "mlflow server process"),
        ):
            if key in text:
                return label
        return os.path.basename(cmd[0]) if cmd else str(pid)
    return str(pid)


# -- MLflow --------------------------------------------------------------------------------------------------
def mlflow_python() -> Path:
    """MLflow's own virtualenv (created on first use): MLflow is not a dependency of the product."""
    python = MLFLOW_VENV / "bin" / "python"
    marker = MLFLOW_VENV / "bench-installed.txt"
    wanted = " ".join(MLFLOW_PACKAGES)
    if not marker.exists() or marker.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *MLFLOW_PACKAGES], check=True)
        marker.write_text(wanted)
    return python


class MlflowServer:
    def __init__(self, servers: Servers, log_dir: Path) -> None:
        self.servers = servers
        self.log_dir = log_dir
        self.port = free_port()
        self.database = f"mlflow_bench_{os.getpid()}"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        mlflow_python()
        with psycopg.connect(self.servers.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}"')
            conn.execute(f'CREATE DATABASE "{self.database}"')
        store = urlunsplit(urlsplit(self.servers.admin_url)._replace(path="/" + self.database))
        artifacts = self.log_dir / "mlflow-artifacts"
        argv = [
            str(MLFLOW_VENV / "bin" / "mlflow"), "server", "--workers", "2", "--host", "127.0.0.1",
            "--port", str(self.port), "--backend-store-uri", store, "--artifacts-destination", str(artifacts),
        ]  # fmt: skip
        log = open(self.log_dir / "mlflow.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600  # the first start migrates its schema; a busy machine imports slowly
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start; see " + str(self.log_dir / "mlflow.log"))
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.servers.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


MLFLOW_CLIENTS = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from mlflow import MlflowClient
from mlflow.entities import Metric
cfg = json.loads(sys.argv[1])
setup = MlflowClient(tracking_uri=cfg["url"])
experiment = setup.create_experiment(cfg["experiment"])
runs = [[setup.create_run(experiment).info.run_id for _ in range(cfg["calls"])] for _ in range(cfg["clients"])]
def one_client(c):
    client = MlflowClient(tracking_uri=cfg["url"])
    latencies = []
    for k, run_id in enumerate(runs[c]):
        now = int(time.time() * 1000)
        metrics = [Metric(f"bench.i{j:02d}", float(k + j), now, 0) for j in range(cfg["metrics"])]
        t0 = time.perf_counter()
        client.log_batch(run_id, metrics=metrics)
        latencies.append(time.perf_counter() - t0)
    return latencies
one_client(0) if cfg["warm"] else None
print("READY", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
with ThreadPoolExecutor(cfg["clients"]) as pool:
    latencies = [x for xs in pool.map(one_client, range(cfg["clients"])) for x in xs]
print("RESULT " + json.dumps({"latencies": latencies, "seconds": time.perf_counter() - t0}), flush=True)
"""


def mlflow_clients(server: MlflowServer, clients: int, calls: int, tag: str) -> dict:
    """`clients` MLflow clients (threads of one process in MLflow's venv), each `calls` log_batch calls of 20
    metrics to runs created beforehand; the server tree's CPU is counted from the start of the calls to their end."""
    cfg = {"url": server.url, "experiment": f"bench-{tag}", "clients": clients, "calls": calls}
    cfg |= {"metrics": METRICS_PER_CALL, "warm": True}
    proc = subprocess.Popen(
        [str(mlflow_python()), "-c", MLFLOW_CLIENTS, json.dumps(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout and server.proc
    for line in proc.stdout:
        if line.startswith("READY"):
            break
    else:
        raise RuntimeError("the MLflow clients did not start")
    cpu = TreeCpu(server.proc.pid)
    cpu.start()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    result = None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            break
    cpu.stop()
    proc.wait(60)
    if result is None:
        raise RuntimeError("the MLflow clients failed")
    summary = sections.summarize(result["latencies"], result["seconds"], METRICS_PER_CALL)
    return summary | {"clients": clients, "cpu_s": cpu.seconds, "cpu_by_process": cpu.by_name}


# -- ours ------------------------------------------------------------------------------------------------------
class FreshSessions:
    """Hands out each session of the org once: every publish goes to a session nobody published to before."""

    def __init__(self, org: Org) -> None:
        self._it = iter(org.sessions)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            return next(self._it)


def entries(n: int, k: int, prefix: str = "bench.i"):
    from roboto.domain.metrics import MetricEntry

    width = 2 if n <= 100 else 4
    return [MetricEntry(name=f"{prefix}{j:0{width}d}", value=float(k + j)) for j in range(n)]


def publish(client, session: str, n: int, k: int) -> float:
    from roboto.domain.metrics import Metric

    t0 = time.perf_counter()
    result = Metric.publish(session, entries(n, k), roboto_client=client)
    elapsed = time.perf_counter() - t0
    if len(result.succeeded) != n:
        raise RuntimeError(f"a publish stored {len(result.succeeded)} of {n}: {result.failed[:3]}")
    return elapsed


def our_clients(service: Service, org: Org, fresh: FreshSessions, clients: int, calls: int) -> dict:
    """`clients` SDK clients at once, `calls` publishes of 20 metrics each; the `up` tree's CPU over the calls."""
    assert service.up is not None
    sdk = [sections.sdk_client(service, org) for _ in range(clients)]
    for c in sdk:  # each client's connection is open before the clock starts (as MLflow's warm-up does)
        publish(c, fresh.next(), METRICS_PER_CALL, 0)
    cpu = TreeCpu(service.up.pid)
    cpu.start()

    def one_client(c: int) -> list[float]:
        return [publish(sdk[c], fresh.next(), METRICS_PER_CALL, k) for k in range(calls)]

    summary = sections.run_clients(one_client, clients)
    cpu.stop()
    return summary | {"cpu_s": cpu.seconds, "cpu_by_process": cpu.by_name}


def one_client_vs_floor(service: Service, org: Org, fresh: FreshSessions, calls: int) -> dict:
    """Interleaved, so that a busy moment of the machine slows all four alike: one SDK publish, one SDK
    `GET /healthz`, one no-op Celery round trip, one direct 20-row upsert, `calls` times."""
    from bench.noop import client_app

    client = sections.sdk_client(service, org)
    noop = client_app(service.servers.broker_url).signature("bench.noop")
    noop.apply_async(queue="bench_noop").get(timeout=60)
    upsert = DirectUpsert(service.servers.database_url, org)
    samples: dict[str, list[float]] = {"publish": [], "healthz": [], "noop": [], "upsert": []}
    try:
        for k in range(5):  # warm-up
            publish(client, fresh.next(), METRICS_PER_CALL, k)
            upsert.once(fresh.next(), k)
        for k in range(calls):
            samples["publish"].append(publish(client, fresh.next(), METRICS_PER_CALL, k))
            t0 = time.perf_counter()
            client.get("healthz")
            samples["healthz"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            noop.apply_async(queue="bench_noop").get(timeout=60)
            samples["noop"].append(time.perf_counter() - t0)
            samples["upsert"].append(upsert.once(fresh.next(), k))
    finally:
        upsert.close()
    p50 = {k: round(sections.percentile(v, 50) * 1000, 2) for k, v in samples.items()}
    floor = round(p50["healthz"] + p50["noop"] + p50["upsert"], 2)
    return {
        "calls": calls,
        "p50_ms": p50,
        "p95_publish_ms": round(sections.percentile(samples["publish"], 95) * 1000, 2),
        "floor_ms": floor,
        "ratio": round(p50["publish"] / floor, 3),
    }


class DirectUpsert:
    """The floor's database part: 20 rows upserted by one statement in a transaction of its own on a kept
    connection, with definitions made beforehand (not timed)."""

    def __init__(self, database_url: str, org: Org) -> None:
        self.conn = psycopg.connect(database_url)
        self.org = org
        names = [f"bench.f{j:02d}" for j in range(METRICS_PER_CALL)]
        for n in names:
            self.conn.execute(
                "INSERT INTO metric_definitions (metric_id, org_id, name, created_by, modified_by) "
                "VALUES (%s, %s, %s, 'bench', 'bench') ON CONFLICT DO NOTHING",
                (sections.metric_id(), org.org_id, n),
            )
        self.metric_ids = [
            r[0]
            for r in self.conn.execute(
                "SELECT metric_id FROM metric_definitions WHERE org_id = %s AND name = ANY(%s) ORDER BY metric_id",
                (org.org_id, names),
            )
        ]
        self.spans = {
            s: (a, b)
            for s, a, b in self.conn.execute(
                "SELECT session_id, start_ns, end_ns FROM sessions WHERE org_id = %s", (org.org_id,)
            )
        }
        self.conn.commit()
        self.sql = (
            sections.INSERT + "SELECT m, s, %(o)s, v, NULL, NULL, a, b, 'bench', now() FROM unnest(%(m)s::text[], "
            "%(s)s::text[], %(v)s::float8[], %(a)s::int8[], %(b)s::int8[]) AS t(m, s, v, a, b) ORDER BY m, s "
            + sections.UPSERT_TAIL
        )

    def once(self, session: str, k: int) -> float:
        a, b = self.spans[session]
        n = len(self.metric_ids)
        params = {
            "o": self.org.org_id,
            "m": self.metric_ids,
            "s": [session] * n,
            "v": [float(k + j) for j in range(n)],
            "a": [a] * n,
            "b": [b] * n,
        }
        t0 = time.perf_counter()
        with self.conn.transaction():
            self.conn.execute(self.sql, params)
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()


class CommitListener:
    """Notes when each job's last chunk commits: the worker's commit sends the NOTIFY the API waits on; a listener
    of the bench on the same channel hears it at the same moment."""

    def __init__(self, database_url: str) -> None:
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self.heard: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for _ in self.conn.notifies(timeout=0.2):
                self.heard.append(time.perf_counter())

    def last_between(self, t0: float, t1: float) -> float | None:
        inside = [t for t in self.heard if t0 <= t <= t1]
        return inside[-1] if inside else None

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


def after_commit(service: Service, org: Org, fresh: FreshSessions, calls: int, entries_per_call: int) -> dict:
    """1,000-entry publishes, one at a time: the share of each call's wall time after its chunk committed, through
    the SDK and through a plain HTTP client (the same body; the answer is read, not parsed)."""
    client = sections.sdk_client(service, org)
    listener = CommitListener(service.servers.database_url)
    shares: dict[str, list[float]] = {"sdk": [], "http": []}
    walls: dict[str, list[float]] = {"sdk": [], "http": []}
    names = [f"bench.k{j:04d}" for j in range(entries_per_call)]
    try:
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {org.token}"}, timeout=60) as http:
            for k in range(calls + 1):  # the first round creates the definitions and is not counted
                t0 = time.perf_counter()
                publish(client, fresh.next(), entries_per_call, k)
                t1 = time.perf_counter()
                body = {"session_id": fresh.next(), "metrics": [{"name": n, "value": float(k)} for n in names]}
                t2 = time.perf_counter()
                response = http.post("/v1/metrics", json=body)
                t3 = time.perf_counter()
                response.raise_for_status()
                if k == 0:
                    continue
                for kind, (start, end) in (("sdk", (t0, t1)), ("http", (t2, t3))):
                    heard = listener.last_between(start, end)
                    if heard is not None:
                        shares[kind].append((end - heard) / (end - start))
                        walls[kind].append(end - start)
    finally:
        listener.close()
    return {
        "calls": calls,
        "entries": entries_per_call,
        **{
            kind: {
                "share_after_commit": round(sections.percentile(shares[kind], 50), 3),
                "wall_p50_ms": round(sections.percentile(walls[kind], 50) * 1000, 1),
                "after_commit_p50_ms": round(
                    sections.percentile([s * w for s, w in zip(shares[kind], walls[kind], strict=True)], 50) * 1000, 1
                ),
            }
            for kind in ("sdk", "http")
        },
    }


def scale_out(service: Service, org: Org, items: int, names: int) -> dict:
    """One bulk job of `items` values, queued while no worker runs, then processed by 1 (and later 2) worker
    processes of concurrency 1: items/s from the job's `started` (its first chunk claimed) to `finished` (its last
    chunk claimed), counting only the chunks finished by then (all but one per worker)."""
    chunk = CHUNK_ITEMS
    sessions = max(1, items // names)
    result: dict = {}
    headers = {"Authorization": f"Bearer {org.token}", "Content-Type": "application/x-ndjson"}
    with httpx.Client(base_url=service.url, headers=headers, timeout=300) as http:
        for n in (1, 2):
            lines = []
            for s in org.sessions[(n - 1) * sessions : n * sessions]:
                metrics = [{"name": f"bench.s{j:04d}", "value": float(j)} for j in range(names)]
                lines.append(json.dumps({"session_id": s, "metrics": metrics}))
            response = http.post("/v1/metrics/jobs", params={"lane": "bulk"}, content="\n".join(lines) + "\n")
            response.raise_for_status()
            job_id = response.json()["data"]["job_id"]
            for _ in range(n):
                service.start_worker("bulk,interactive", 1)
            while True:
                job = http.get(f"/v1/metrics/jobs/{job_id}").json()["data"]
                if job["state"] in ("succeeded", "completed_with_errors", "failed"):
                    break
                time.sleep(0.2)
            service.stop_workers()
            total = job["counts"]["total"]
            seconds = (datetime.fromisoformat(job["finished"]) - datetime.fromisoformat(job["started"])).total_seconds()
            counted = max(0, total - n * chunk)
            result[f"{n}_worker"] = {
                "items": total,
                "state": job["state"],
                "seconds_started_to_finished": round(seconds, 3),
                "items_per_s": round(counted / seconds, 1) if seconds > 0 else None,
            }
    one, two = result["1_worker"]["items_per_s"], result["2_worker"]["items_per_s"]
    result["ratio"] = round(two / one, 3) if one and two else None
    return result


# -- the run -------------------------------------------------------------------------------------------------
def target_line(name: str, ours: str, reference: str, ratio: float | None, goal_key: str) -> str:
    op, goal = GOALS[goal_key]
    met = ratio is not None and (ratio <= goal if op == "<=" else ratio >= goal)
    verdict = "met" if met else "NOT met"
    return f"{name}: {ours} / {reference} = {ratio if ratio is not None else '?'} (goal {op} {goal}: {verdict})"


def report(r: dict) -> list[str]:
    one, eight, ml = r["one_client"], r["eight_clients"], r["mlflow_eight_clients"]
    cpu_ours = eight["cpu_s"] / (eight["calls"] * METRICS_PER_CALL) * 1000
    cpu_ml = ml["cpu_s"] / (ml["calls"] * METRICS_PER_CALL) * 1000
    big, scale = r["after_commit"], r["scale_out"]
    p = one["p50_ms"]
    lines = [
        f"machine: {r['machine']['cpus']} cores, load average {r['machine']['load_avg_1m']} at the start",
        target_line(
            "1. one client, SDK publish of 20 metrics, p50",
            f"{p['publish']} ms",
            f"floor {one['floor_ms']} ms",
            one["ratio"],
            "one_client",
        ),
        f"   floor = no-op Celery round trip {p['noop']} ms + direct 20-row upsert {p['upsert']} ms"
        f" + SDK GET /healthz {p['healthz']} ms; publish p95 {one['p95_publish_ms']} ms ({one['calls']} calls)",
        target_line(
            "2. eight clients, metrics/s",
            f"{eight['metrics_per_s']:,.0f}",
            f"MLflow {ml['metrics_per_s']:,.0f}",
            round(eight["metrics_per_s"] / ml["metrics_per_s"], 3),
            "eight_clients",
        ),
        f"   p50/p95 ms: ours {eight['p50_ms']}/{eight['p95_ms']}, MLflow {ml['p50_ms']}/{ml['p95_ms']}"
        f" ({eight['calls']} and {ml['calls']} calls)",
        target_line(
            "3. server CPU-s per 1,000 metrics (8 clients)",
            f"{cpu_ours:.3f}",
            f"MLflow {cpu_ml:.3f}",
            round(cpu_ours / cpu_ml, 3),
            "cpu",
        ),
        f"   ours by process (CPU-s): {eight['cpu_by_process']}; MLflow: {ml['cpu_by_process']}",
        target_line(
            f"4. {big['entries']:,}-entry SDK publish, share of wall time after its chunk committed",
            f"{big['sdk']['after_commit_p50_ms']} ms",
            f"{big['sdk']['wall_p50_ms']} ms",
            big["sdk"]["share_after_commit"],
            "after_commit",
        ),
        f"   plain HTTP client, same body: {big['http']['after_commit_p50_ms']} of {big['http']['wall_p50_ms']} ms"
        f" = {big['http']['share_after_commit']} ({big['calls']} calls each)",
        target_line(
            "5. scale-out, items/s",
            f"2 workers {scale['2_worker']['items_per_s']:,.0f}",
            f"1 worker {scale['1_worker']['items_per_s']:,.0f}",
            scale["ratio"],
            "scale_out",
        ),
        f"   {scale['1_worker']['items']:,} items per job, chunks of {CHUNK_ITEMS:,}",
    ]
    return lines


def main(argv: list[str]) -> None:
    warnings.filterwarnings("ignore", message=".*experimental.*")  # roboto 0.53 marks Metric as experimental
    parser = argparse.ArgumentParser(prog="python -m bench interactive", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="1-client publishes (and floor samples)")
    parser.add_argument("--calls-8", type=int, default=50, help="publishes per client with 8 clients (and MLflow)")
    parser.add_argument("--big-calls", type=int, default=10, help="1,000-entry publishes")
    parser.add_argument("--scale-items", type=int, default=200_000, help="items of the scale-out job")
    parser.add_argument("--skip-mlflow", action="store_true", help="no MLflow side (targets 2 and 3 unmeasured)")
    parser.add_argument(
        "--profile", type=float, default=0, help="only profile: SECONDS of py-spy (--gil) under the 8-client load"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (service and MLflow logs)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mi-bench-interactive-"))
    results: dict = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "machine": sections.env_note()}
    print(f"bench interactive: {os.cpu_count()} cores; logs in {work}", flush=True)
    servers = Servers.start()
    service = Service(servers, work)
    mlflow = MlflowServer(servers, work)
    try:
        if not (args.skip_mlflow or args.profile):
            print("starting mlflow server", flush=True)
            mlflow.start()
        service.start_noop_worker(pool="solo")
        service.start_up()
        if args.profile:
            profile(service, args.profile, work)
            return
        sessions = 20 + args.calls * 2 + 10 + 8 * (args.calls_8 + 1) + 2 * (args.big_calls + 1) + 100
        org = new_org(service, sessions, "ia")
        fresh = FreshSessions(org)
        print("1. one client vs floor", flush=True)
        results["one_client"] = one_client_vs_floor(service, org, fresh, args.calls)
        print("2-3. eight clients: ours, then MLflow", flush=True)
        results["eight_clients"] = our_clients(service, org, fresh, 8, args.calls_8)
        if not args.skip_mlflow:
            results["mlflow_eight_clients"] = mlflow_clients(mlflow, 8, args.calls_8, "eight")
        print("4. 1,000-entry publishes", flush=True)
        results["after_commit"] = after_commit(service, org, fresh, args.big_calls, 1000)
        print("5. scale-out", flush=True)
        service.stop_up()
        service.start_api()
        scale_org = new_org(service, 2 * max(1, args.scale_items // 200), "so")
        results["scale_out"] = scale_out(service, scale_org, args.scale_items, 200)
    finally:
        service.stop()
        mlflow.stop()
        service.others = []
        servers.close()
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"interactive-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(results, indent=2))
    if args.skip_mlflow:
        results["mlflow_eight_clients"] = {"metrics_per_s": float("nan"), "cpu_s": float("nan"), "calls": 1}
        results["mlflow_eight_clients"] |= {"p50_ms": None, "p95_ms": None, "cpu_by_process": {}}
    print("\n".join(report(results)))
    print(f"results: {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def profile(service: Service, seconds: float, work: Path) -> None:
    """py-spy (`record --gil -f raw`) on the API process and on the worker pool children for `seconds` while eight
    SDK clients publish; prints the top of each profile (inclusive and self share of the samples)."""
    assert service.up is not None
    targets = {}
    for pid in tree_pids(service.up.pid):
        name = describe(pid)
        if name == "api" or name.startswith("worker"):
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(pid).ppid()
                role = "pool child" if describe(parent).startswith("worker") else "main"
                targets[f"{name}-{role.replace(' ', '-')}-{pid}"] = pid
    org = new_org(service, 8 * int((seconds + 10) * 60) + 20, "prof")
    fresh = FreshSessions(org)
    stop = threading.Event()

    def one_client(c: int) -> list[float]:
        client = sections.sdk_client(service, org)
        return [
            publish(client, fresh.next(), METRICS_PER_CALL, k)
            for k in itertools.takewhile(lambda _: not stop.is_set(), itertools.count())
        ]

    load = threading.Thread(target=lambda: print(sections.run_clients(one_client, 8)), daemon=True)
    load.start()
    time.sleep(3)
    spies = {
        key: subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--gil", "-r", "50", "-d", str(int(seconds)),
             "-p", str(pid), "-f", "raw", "-o", str(work / f"profile-{key}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for key, pid in targets.items()
    }  # fmt: skip
    for spy in spies.values():
        spy.wait()
    stop.set()
    load.join()
    for key in spies:
        print(f"== {key}")
        print(profile_top(work / f"profile-{key}.txt"))


def profile_top(path: Path, n: int = 25) -> str:
    """The functions of a py-spy raw profile (collapsed stacks) by inclusive share, with their self share."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    if not path.exists():
        return "(no profile)"
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")" if " (" in f
                  else f for f in stack.split(";")]  # fmt: skip
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + k
        own[frames[-1]] = own.get(frames[-1], 0) + k
    rows = sorted(inclusive.items(), key=lambda x: -x[1])[:n]
    lines = [f"{total} samples (GIL held)"] + [
        f"{100 * v / total:5.1f}% incl {100 * own.get(f, 0) / total:5.1f}% self  {f}" for f, v in rows
    ]
    top_self = sorted(own.items(), key=lambda x: -x[1])[:12]
    lines += ["-- by self"] + [f"{100 * v / total:5.1f}% self  {f}" for f, v in top_self]
    return "\n".join(lines)
