"""Soak: minutes of mixed load on the embedded default (`metrics-ingest up`), watching memory and errors.

    python bench/soak.py                 # 10 minutes
    python bench/soak.py --minutes 1     # a quick check

Load: N roboto SDK publishers (Metric.publish, default 8), one backfill at a time through the job API (NDJSON),
and Metric.query / Metric.aggregate.
Measured: latency per operation (p50/p95/p99 per time window), errors by class, RSS of every process under `up`
(API, workers, PostgreSQL, Redis) sampled over time. Targets: flat memory, zero 5xx. Results: a markdown summary
on stdout and the raw figures as JSON (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
SESSION_START_NS = 1_714_521_600_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    samples: list[tuple[float, str, float, str | None]] = field(default_factory=list)  # t, op, ms, error class
    rss: list[tuple[float, dict[str, float]]] = field(default_factory=list)  # t, role -> MiB
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, ms: float, error: str | None = None) -> None:
        with self.lock:
            self.samples.append((time.monotonic() - self.started, op, ms, error))

    def timed(self, op: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except Exception as err:  # counted by class, never fatal to the load
            self.record(op, (time.perf_counter() - t0) * 1000, error_class(err))
            return None
        self.record(op, (time.perf_counter() - t0) * 1000)
        return result


def error_class(err: Exception) -> str:
    if isinstance(err, HTTPStatusError):
        return err.label
    return type(err).__name__


class HTTPStatusError(Exception):
    def __init__(self, resp: httpx.Response):
        try:
            code = resp.json()["error"]["error_code"]
        except Exception:
            code = "non-envelope"
        self.status = resp.status_code
        self.label = f"HTTP {resp.status_code} {code}"
        super().__init__(self.label)


def checked(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        raise HTTPStatusError(resp)
    return resp


# -- the service ---------------------------------------------------------------------------------------------
class Service:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.api_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_INGEST_")}
        self.env.update(
            METRICS_INGEST_DATA_DIR=str(data_dir),
            METRICS_INGEST_API_PORT=str(self.api_port),
            METRICS_INGEST_LOG_LEVEL="WARNING",
            METRICS_INGEST_LOG_FORMAT="json",
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "runtime.cli", *args], env=self.env, capture_output=True, text=True, check=True
        )

    def database_url(self) -> str:
        """The database of this data dir, as `metrics-ingest status --json` names it."""
        done = subprocess.run(
            [sys.executable, "-m", "runtime.cli", "status", "--json"], env=self.env, capture_output=True, text=True
        )
        return json.loads(done.stdout)["servers"]["database"]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "up"],
            env=self.env,
            stdout=open(self.data_dir / "up.log", "ab"),  # noqa: SIM115 - owned by the child
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 180
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"`up` exited: {(self.data_dir / 'up.log').read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("`up` did not serve within 180 s")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def processes_by_role(self) -> dict[str, list[psutil.Process]]:
        roles: dict[str, list[psutil.Process]] = defaultdict(list)
        if self.process is None:
            return roles
        try:
            root = psutil.Process(self.process.pid)
            roles["up"].append(root)
            for child in root.children(recursive=True):
                roles[role_of(child)].append(child)
        except psutil.Error:
            pass
        return roles


def role_of(proc: psutil.Process) -> str:
    try:
        name, cmdline = proc.name(), proc.cmdline()
    except psutil.Error:
        return "gone"
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("redis"):
        return "redis"
    joined = " ".join(cmdline)
    if " api" in joined:
        return "api"
    if "--lanes interactive " in joined + " ":
        return "worker-interactive"
    if " worker" in joined or "celery" in joined:
        return "worker"
    return name


def sample_rss(service: Service, rec: Recorder, interval_s: float, stop: threading.Event) -> None:
    while not stop.is_set():
        mib: dict[str, float] = {}
        for role, procs in service.processes_by_role().items():
            total = 0
            for p in procs:
                # PSS: shared pages (PostgreSQL's shared buffers) split among the processes sharing them, so
                # that a role's sum is not inflated by every backend counting the same shared memory.
                with contextlib.suppress(psutil.Error):
                    total += getattr(p.memory_full_info(), "pss", 0) or p.memory_info().rss
            mib[role] = round(total / 2**20, 1)
        with rec.lock:
            rec.rss.append((time.monotonic() - rec.started, mib))
        stop.wait(interval_s)


# -- load ----------------------------------------------------------------------------------------------------
def sdk_client(url: str, token: str):
    from roboto.http import BearerTokenDecorator, HttpClientOptions, HttpRetryOptions, RobotoClient

    return RobotoClient(
        endpoint=url,
        auth_decorator=BearerTokenDecorator(token=token),
        http_client_kwargs={
            "default_timeout": 120.0,
            "options": HttpClientOptions(retry=HttpRetryOptions(max_attempts=1)),
        },
    )


def publisher(n: int, url: str, token: str, sessions: list[str], entries: int, rec: Recorder, stop: threading.Event):
    from roboto.domain.metrics import Metric, MetricEntry

    client = sdk_client(url, token)
    rnd = random.Random(n)
    while not stop.is_set():
        metrics = [MetricEntry(name=f"soak.p{n}.m{k}", value=rnd.random() * 100) for k in range(entries)]
        rec.timed(
            "publish",
            Metric.publish,
            session_id=rnd.choice(sessions),
            metrics=metrics,
            device_id=None,
            roboto_client=client,
        )


def backfiller(url: str, token: str, sessions: list[str], items: int, rec: Recorder, stop: threading.Event):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    per_request = 250
    rounds = 0
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        while not stop.is_set():
            rounds += 1
            lines = []
            for r in range(max(1, items // per_request)):
                metrics = [{"name": f"soak.backfill.m{e}", "value": float(rounds + e)} for e in range(per_request)]
                lines.append(
                    json.dumps({"session_id": sessions[r % len(sessions)], "device_id": None, "metrics": metrics})
                )
            body = ("\n".join(lines) + "\n").encode()
            t0 = time.perf_counter()
            resp = rec.timed("backfill.submit", lambda b=body: checked(client.post("/v1/metrics/jobs", content=b)))
            if resp is None:
                stop.wait(2)
                continue
            job_id = resp.json()["data"]["job_id"]
            while not stop.is_set():
                got = rec.timed("job.get", lambda j=job_id: checked(client.get(f"/v1/metrics/jobs/{j}")))
                if got is not None and got.json()["data"]["state"] in ("succeeded", "completed_with_errors", "failed"):
                    state = got.json()["data"]["state"]
                    rec.record(
                        "backfill.job", (time.perf_counter() - t0) * 1000, None if state == "succeeded" else state
                    )
                    break
                stop.wait(1)


def reader(url: str, token: str, sessions: list[str], publishers: int, rec: Recorder, stop: threading.Event):
    from roboto.domain.metrics import AggregationPeriod, Metric, NumericAggregation

    client = sdk_client(url, token)
    rnd = random.Random(99)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        while not stop.is_set():
            session = rnd.choice(sessions)
            rec.timed("get_by_session", lambda s=session: checked(http.get(f"/v1/metrics/session/{s}/")))
            name = f"soak.p{rnd.randrange(publishers)}.m{rnd.randrange(10)}"
            rec.timed("query", lambda n=name: list(Metric.query(n, roboto_client=client)))
            rec.timed(
                "aggregate",
                lambda n=name: Metric.aggregate(
                    n,
                    AggregationPeriod.Daily,
                    NumericAggregation.Mean,
                    SESSION_START_NS - 86_400 * 10**9,
                    SESSION_START_NS + 40 * 86_400 * 10**9,
                    roboto_client=client,
                ),
            )
            stop.wait(0.5)


def drain_and_count(service: Service, timeout_s: float = 180) -> dict:
    """Wait for every accepted job to reach a terminal state, then count jobs and items from PostgreSQL."""
    import psycopg

    url = service.database_url()
    query = (
        "SELECT count(*), COALESCE(sum(total), 0), COALESCE(sum(succeeded), 0), COALESCE(sum(failed), 0), "
        "count(*) FILTER (WHERE state NOT IN ('succeeded', 'completed_with_errors', 'failed')) FROM jobs"
    )
    deadline = time.monotonic() + timeout_s
    while True:
        with psycopg.connect(url) as conn:
            jobs, total, succeeded, failed, open_jobs = conn.execute(query).fetchone()
        if open_jobs == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    return {"jobs": jobs, "items": total, "succeeded": succeeded, "failed": failed, "jobs_not_finished": open_jobs}


# -- report --------------------------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summarize(rec: Recorder, window_s: float) -> dict:
    by_op: dict[str, list] = defaultdict(list)
    for t, op, ms, err in rec.samples:
        by_op[op].append((t, ms, err))
    ops = {}
    end = max((t for t, _, _, _ in rec.samples), default=0.0)
    for op, rows in sorted(by_op.items()):
        ok = [ms for _, ms, err in rows if err is None]
        windows = []
        w = 0.0
        while w <= end:
            in_w = [ms for t, ms, err in rows if w <= t < w + window_s and err is None]
            errs = sum(1 for t, _, err in rows if w <= t < w + window_s and err is not None)
            windows.append(
                {
                    "from_s": w,
                    "n": len(in_w),
                    "errors": errs,
                    "p50": pct(in_w, 50),
                    "p95": pct(in_w, 95),
                    "p99": pct(in_w, 99),
                }
            )
            w += window_s
        ops[op] = {
            "n": len(rows),
            "errors": len(rows) - len(ok),
            "p50": pct(ok, 50),
            "p95": pct(ok, 95),
            "p99": pct(ok, 99),
            "windows": windows,
        }
    errors: dict[str, int] = defaultdict(int)
    for _, op, _, err in rec.samples:
        if err is not None:
            errors[f"{op}: {err}"] += 1
    roles = sorted({r for _, m in rec.rss for r in m})
    rss = {}
    for role in roles:
        series = [(t, m[role]) for t, m in rec.rss if role in m]
        if series:
            half = len(series) // 2 or 1
            first = max(v for _, v in series[:half])
            last = max(v for _, v in series[half:]) if series[half:] else first
            rss[role] = {
                "start": series[0][1],
                "end": series[-1][1],
                "max": max(v for _, v in series),
                "max_first_half": first,
                "max_second_half": last,
            }
    five_xx = sum(
        n for k, n in errors.items() if " 5" in k or "ServiceUnavailable" in k or "RobotoServiceException" in k
    )
    return {"ops": ops, "errors": dict(errors), "five_xx": five_xx, "rss_mib": rss, "rss_series": rec.rss}


def markdown(summary: dict, args, duration_s: float, items: dict) -> str:
    reads = "query + aggregate + get_by_session"
    out = [
        f"## Soak: {duration_s / 60:.1f} min, {args.publishers} SDK publishers x {args.entries} entries, "
        f"backfill jobs of {args.backfill_items} items, reads: {reads}",
        "",
        "| operation | n | errors | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for op, s in summary["ops"].items():
        out.append(f"| {op} | {s['n']} | {s['errors']} | {s['p50']:.0f} | {s['p95']:.0f} | {s['p99']:.0f} |")
    windows = next(iter(summary["ops"].values()))["windows"] if summary["ops"] else []
    labels = [f"{int(w['from_s']) // 60}:{int(w['from_s']) % 60:02d}" for w in windows]
    out += ["", "p95 ms per window (window start, m:ss):", "", "| operation | " + " | ".join(labels) + " |"]
    out.append("|---|" + "---|" * len(labels))
    for op, s in summary["ops"].items():
        out.append(f"| {op} | " + " | ".join(f"{w['p95']:.0f}" if w["n"] else "-" for w in s["windows"]) + " |")
    out += [
        "",
        "| process (PSS, MiB) | start | end | max | max 1st half | max 2nd half |",
        "|---|---|---|---|---|---|",
    ]
    for role, r in summary["rss_mib"].items():
        out.append(
            f"| {role} | {r['start']} | {r['end']} | {r['max']} | {r['max_first_half']} | {r['max_second_half']} |"
        )
    errors = json.dumps(summary["errors"]) if summary["errors"] else "none"
    out += [
        "",
        f"Jobs and items (after draining): {items}",
        f"5xx-class errors: {summary['five_xx']}",
        f"Errors: {errors}",
    ]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--publishers", type=int, default=8)
    ap.add_argument("--entries", type=int, default=100, help="entries per SDK publish")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--backfill-items", type=int, default=50_000)
    ap.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling interval")
    ap.add_argument("--window-s", type=float, default=60.0, help="latency window for percentiles over time")
    ap.add_argument("--out", type=Path, default=None, help="write raw figures as JSON here")
    ap.add_argument("--data-dir", type=Path, default=None, help="service data folder (default: a temp folder)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="soak-") if args.data_dir is None else None
    service = Service(args.data_dir or Path(tmp.name) / "data")  # type: ignore[union-attr]
    print(f"starting `metrics-ingest up` in {service.data_dir} ...", file=sys.stderr)
    service.start()
    rec = Recorder()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        service.cli("org", "create", "og_soak")
        token = service.cli("token", "create", "--org", "og_soak", "--principal", "soak@example.com").stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        sessions = []
        for i in range(args.sessions):
            sid = f"ss_soak{i:04d}"
            checked(
                httpx.post(
                    service.url + "/v1/sessions",
                    headers=headers,
                    timeout=30,
                    json={
                        "session_id": sid,
                        "start_time_ns": SESSION_START_NS + i * 3_600 * 10**9,
                        "end_time_ns": SESSION_START_NS + (i + 1) * 3_600 * 10**9,
                    },
                )
            )
            sessions.append(sid)
        rec = Recorder()
        threads.append(threading.Thread(target=sample_rss, args=(service, rec, args.sample_s, stop), daemon=True))
        for n in range(args.publishers):
            threads.append(
                threading.Thread(
                    target=publisher, args=(n, service.url, token, sessions, args.entries, rec, stop), daemon=True
                )
            )
        threads.append(
            threading.Thread(
                target=backfiller, args=(service.url, token, sessions, args.backfill_items, rec, stop), daemon=True
            )
        )
        threads.append(
            threading.Thread(
                target=reader, args=(service.url, token, sessions, args.publishers, rec, stop), daemon=True
            )
        )
        for t in threads:
            t.start()
        print(f"load running for {args.minutes} min ...", file=sys.stderr)
        stop.wait(args.minutes * 60)
        duration = time.monotonic() - rec.started
        stop.set()
        for t in threads:
            t.join(150)
        items = drain_and_count(service)
    finally:
        stop.set()
        service.stop()
    summary = summarize(rec, args.window_s)
    print(markdown(summary, args, duration, items))
    if args.out:
        args.out.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary}, indent=1)
        )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
