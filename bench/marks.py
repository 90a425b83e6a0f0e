"""What the rollup marks cost the write path: the service's own upsert (COPY into a staging table + INSERT ... ON
CONFLICT DO UPDATE, a commit per batch, as bench section 1's raw ceiling) with and without the marks the worker adds
(the batch's distinct (metric, UTC day) pairs appended to rollup_dirty in the same transaction), interleaved round by
round on one database, so a busy machine slows both. The row trigger for moved sessions is enabled in both (it
fires only when a row's session times change, which neither pass does).

Two shapes: `fanout` (section 1's: `--names` metrics x hourly sessions, in session order) and `history` (one metric,
sessions spread at random over two years, in random order: every batch touches hundreds of days). Each round
inserts fresh rows, then upserts the same rows again (the update path).

    python bench/marks.py --rows 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sections import staged_upsert  # noqa: E402
from bench.stack import Servers  # noqa: E402

S = 1_000_000_000
H = 3600 * S
START = 1_704_067_200 * S
DAY = 24 * H
# What the worker's upsert adds for the rollups (ingest.rollups.mark_written, there built in Python from the chunk's
# rows): the distinct (metric, UTC day) pairs of the batch's start and end times, appended to rollup_dirty.
MARKS = (
    f"INSERT INTO rollup_dirty (metric_id, day) SELECT DISTINCT metric_id, (t - ((t % {DAY}) + {DAY}) % {DAY}) / {DAY} "
    "FROM staging CROSS JOIN LATERAL (VALUES (session_start_ns), (session_end_ns)) AS x(t)"
)


def rows_for(shape: str, count: int, names: list[str], seed: int) -> list[tuple]:
    if shape == "fanout":
        sessions = count // len(names)
        return [
            (m, f"ss_{i:07d}", float(i + j), None, START + i * H, START + i * H + 600 * S)
            for i in range(sessions)
            for j, m in enumerate(names)
        ]
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        end = START + rnd.randrange(2 * 365 * 24 * H)
        out.append((names[0], f"ss_{i:07d}", rnd.uniform(0, 100), None, end - rnd.randrange(H), end))
    return out


def upsert(conn: psycopg.Connection, org: str, rows: list[tuple], batch: int, published: str, marks: bool) -> float:
    select = (
        "SELECT metric_id, session_id, %(o)s, value, device_id, NULL::text, session_start_ns, session_end_ns, "
        "'bench'::text, %(p)s::timestamptz FROM staging ORDER BY metric_id, session_id "
    )
    seconds = 0.0
    for k in range(0, len(rows), batch):
        part = sorted(rows[k : k + batch])
        seconds += staged_upsert(conn, part, select, {"o": org, "p": published}, MARKS if marks else "")
    return len(rows) / seconds


def run(count: int, rounds: int, batch: int, n_names: int, seed: int) -> dict:
    servers = Servers.start()
    out: dict = {}
    try:
        with psycopg.connect(servers.database_url) as conn:
            org = "og_marks_" + secrets.token_hex(3)
            conn.execute("INSERT INTO orgs (org_id) VALUES (%s)", (org,))
            conn.execute(
                "CREATE TEMP TABLE staging (metric_id text, session_id text, value float8, device_id text, "
                "session_start_ns int8, session_end_ns int8) ON COMMIT DELETE ROWS"
            )
            conn.commit()
            for shape in ("fanout", "history"):
                rates: dict[str, list[float]] = {
                    "marks_insert": [],
                    "marks_update": [],
                    "none_insert": [],
                    "none_update": [],
                }
                for r in range(rounds):
                    for marks in (True, False) if r % 2 == 0 else (False, True):
                        names = [f"mt_{secrets.token_hex(6)}" for _ in range(n_names if shape == "fanout" else 1)]
                        for m in names:
                            conn.execute(
                                "INSERT INTO metric_definitions (metric_id, org_id, name, created_by, modified_by) "
                                "VALUES (%s, %s, %s, 'b', 'b')",
                                (m, org, m),
                            )
                        conn.commit()
                        rows = rows_for(shape, count, names, seed + r)
                        key = "marks" if marks else "none"
                        rates[f"{key}_insert"].append(upsert(conn, org, rows, batch, "2026-01-01T00:00Z", marks))
                        rates[f"{key}_update"].append(upsert(conn, org, rows, batch, "2026-01-02T00:00Z", marks))
                dirty = conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0]
                med = {k: round(statistics.median(v), 1) for k, v in rates.items()}
                out[shape] = {"rows_per_s": rates, "median": med, "dirty_rows_total": dirty}
                for op in ("insert", "update"):
                    ratio = med[f"marks_{op}"] / med[f"none_{op}"]
                    print(
                        f"{shape}_{op}: {med[f'marks_{op}']:,.0f} / {med[f'none_{op}']:,.0f} rows/s = {ratio:.3f} "
                        "(marks / no marks; >= 0.9)",
                        flush=True,
                    )
        return out
    finally:
        servers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000, help="rows per upsert (the worker's default chunk)")
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report = run(args.rows, args.rounds, args.batch, args.names, args.seed)
    report["args"] = vars(args)
    report["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"marks-{args.rows}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
