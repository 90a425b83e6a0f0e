"""Section 5, retention: bytes per item in the jobs tables (`jobs` + `job_chunks`, with their TOAST tables and
indexes: `pg_total_relation_size`) after a backfill of `items` values through the CLI, then after
`metrics-ingest jobs purge` removed its jobs. Each size is read as the files are, and again after a plain `VACUUM`
(what autovacuum does on its own: dead rows' space made reusable, empty trailing pages returned)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench import sections
from bench.stack import Org, Service

TABLES = ("jobs", "job_chunks")


def jobs_bytes(database_url: str, *, vacuum: bool) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        if vacuum:
            conn.execute(f"VACUUM {', '.join(TABLES)}")
        return int(
            conn.execute(
                "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t", (list(TABLES),)
            ).fetchone()[0]
        )


def snapshot(database_url: str, items: int) -> dict:
    as_is = jobs_bytes(database_url, vacuum=False)
    vacuumed = jobs_bytes(database_url, vacuum=True)
    return {
        "bytes": as_is,
        "bytes_per_item": round(as_is / items, 2),
        "bytes_after_vacuum": vacuumed,
        "bytes_per_item_after_vacuum": round(vacuumed / items, 2),
    }


def purge_cli(service: Service, org: Org, older_than: str) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "jobs", "purge", "--older-than", older_than, "--org", org.org_id],
        env=service.env(),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    found = re.search(r"purged (\d+) job\(s\) and (\d+) chunk\(s\)", done.stdout)
    return {
        "exit_code": done.returncode,
        "seconds": round(seconds, 2),
        "jobs": int(found.group(1)) if found else None,
        "chunks": int(found.group(2)) if found else None,
        "output": (done.stdout + done.stderr).strip()[-300:],
    }


def run(service: Service, org: Org, names: list[str], items: int, work: Path) -> dict:
    db = service.servers.database_url
    before = snapshot(db, items)  # whatever the other sections left (usually nothing)
    csv_path = work / "retention.csv"
    sections.write_csv(csv_path, org, names)
    backfill = sections.run_backfill(service, org, csv_path, items, work / "retention-cli.log")
    csv_path.unlink()
    with psycopg.connect(db) as conn:
        chunks, payloads, keys = conn.execute(
            "SELECT count(*), count(payload), COALESCE(sum(octet_length(item_keys)), 0) FROM job_chunks c "
            "JOIN jobs j USING (job_id) WHERE j.org_id = %s",
            (org.org_id,),
        ).fetchone()
    after_backfill = snapshot(db, items)
    time.sleep(1.1)  # `--older-than 1s`: every job of the backfill finished more than a second ago
    purge = purge_cli(service, org, "1s")
    after_purge = snapshot(db, items)
    return {
        "items": items,
        "backfill": backfill,
        "chunks": chunks,
        "chunks_with_payload": payloads,
        "item_keys_bytes": int(keys),
        "before": before,
        "after_backfill": after_backfill,
        "purge": purge,
        "after_purge": after_purge,
    }
