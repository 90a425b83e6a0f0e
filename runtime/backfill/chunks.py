"""Rows -> job bodies. Rows are grouped per (session, device) into PublishMetricsRequests inside a chunk of about
`chunk_items` values; each chunk is one job with a deterministic Idempotency-Key (file digest + chunk number), so
the same command over the same file produces the same bodies under the same keys and a re-run is a no-op."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.notset import NOT_SET
from runtime.backfill.readers import LineError, Record, Row

MAX_ENTRIES_PER_REQUEST = 10_000  # below the API's per-request limit (25,000)
FIRST_CHUNK_ITEMS = 5_000  # chunks ramp up from this size (doubling) so that workers start early
KEY_VERSION = "bf2"  # names the chunking rule: a new rule must not reuse the keys of the old one


def file_digest(path: Path, fmt: str, chunk_items: int) -> str:
    """sha256 of the file's bytes and of everything that shapes its chunks."""
    h = hashlib.sha256(f"{KEY_VERSION}:{fmt}:{chunk_items}:".encode())
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def idempotency_key(digest: str, seq: int) -> str:
    return f"{KEY_VERSION}-{digest[:48]}-{seq}"


def wire_device(device: Any) -> Any:
    return {} if device is NOT_SET else device


@dataclass
class Chunk:
    seq: int
    key: str
    body_path: Path  # NDJSON body, one PublishMetricsRequest per line (kept on disk: constant memory)
    items: int
    requests: int
    first_line: int
    last_line: int
    lines_path: Path  # per request, a JSON list of the file line of each entry (for the failures file)

    def read_back(self) -> Iterator[tuple[dict, list[int]]]:
        """The chunk's requests with their source lines, in body order (request_index order)."""
        with open(self.body_path, "rb") as body, open(self.lines_path, "rb") as lines:
            for request, where in zip(body, lines, strict=True):
                yield json.loads(request), json.loads(where)

    def body(self) -> bytes:
        return self.body_path.read_bytes()

    def discard(self) -> None:
        self.body_path.unlink(missing_ok=True)
        self.lines_path.unlink(missing_ok=True)


def chunk_size(seq: int, chunk_items: int) -> int:
    """Values in chunk `seq`: 5,000, 10,000, 20,000, ... up to `chunk_items` (deterministic: part of the keys)."""
    return min(chunk_items, FIRST_CHUNK_ITEMS << min(seq, 20))


def build_chunks(
    records: Iterable[Record], *, digest: str, chunk_items: int, spool_dir: Path, errors: list[LineError]
) -> Iterator[Chunk]:
    """Group rows into chunks; line errors are appended to `errors` as they are met (the caller drains it)."""
    groups: dict[tuple[str, Any], list[Row]] = {}
    count = 0
    seq = 0
    limit = chunk_size(0, chunk_items)
    for record in records:
        if isinstance(record, LineError):
            errors.append(record)
            continue
        groups.setdefault((record.session_id, record.device_id), []).append(record)
        count += 1
        if count >= limit:
            yield _write_chunk(seq, digest, groups, count, spool_dir)
            seq += 1
            groups, count = {}, 0
            limit = chunk_size(seq, chunk_items)
    if count:
        yield _write_chunk(seq, digest, groups, count, spool_dir)


def _write_chunk(seq: int, digest: str, groups: dict[tuple[str, Any], list[Row]], count: int, spool: Path) -> Chunk:
    fd, name = tempfile.mkstemp(prefix=f"chunk{seq}-", suffix=".ndjson", dir=spool)
    requests = 0
    first = last = 0
    lines_path = Path(name).with_suffix(".lines")
    with os.fdopen(fd, "wb") as out, open(lines_path, "wb") as where:
        for (session_id, device), rows in groups.items():
            for start in range(0, len(rows), MAX_ENTRIES_PER_REQUEST):
                part = rows[start : start + MAX_ENTRIES_PER_REQUEST]
                doc = {
                    "session_id": session_id,
                    "device_id": wire_device(device),
                    "metrics": [{"name": r.name, "value": r.value} for r in part],
                }
                out.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
                out.write(b"\n")
                lines = [r.line for r in part]
                where.write(json.dumps(lines, separators=(",", ":")).encode() + b"\n")
                requests += 1
                first = min(first or lines[0], min(lines))
                last = max(last, max(lines))
    return Chunk(seq, idempotency_key(digest, seq), Path(name), count, requests, first, last, lines_path)
