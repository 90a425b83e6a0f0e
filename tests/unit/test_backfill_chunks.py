"""Chunk building: deterministic keys and sizes, grouping per session and device, source lines kept."""

from __future__ import annotations

import json
from pathlib import Path

from runtime.backfill.chunks import MAX_ENTRIES_PER_REQUEST, build_chunks, chunk_size, file_digest
from runtime.backfill.readers import NOT_SET, LineError, Row


def rows(n: int, sessions: int = 3) -> list:
    return [Row(i + 2, f"ss_{i % sessions}", NOT_SET if i % 2 else "dv_1", f"m{i}", float(i)) for i in range(n)]


def test_sizes_ramp_up_and_cap():
    assert [chunk_size(i, 20_000) for i in range(5)] == [5_000, 10_000, 20_000, 20_000, 20_000]
    assert [chunk_size(i, 500) for i in range(3)] == [500, 500, 500]


def test_chunks_are_deterministic_and_grouped(tmp_path: Path):
    records = [*rows(12_000), LineError(99_999, "bad", "x")]
    errors: list[LineError] = []
    first = list(build_chunks(records, digest="d" * 64, chunk_items=20_000, spool_dir=tmp_path, errors=errors))
    second = list(build_chunks(records, digest="d" * 64, chunk_items=20_000, spool_dir=tmp_path, errors=[]))
    assert [c.items for c in first] == [5_000, 7_000]
    assert [c.key for c in first] == [c.key for c in second] and first[0].key != first[1].key
    assert [c.body() for c in first] == [c.body() for c in second]
    assert [e.line for e in errors] == [99_999]
    requests = list(first[0].read_back())
    # one request per (session, device) pair met in the chunk
    assert len(requests) == 6
    for request, lines in requests:
        assert len(request["metrics"]) == len(lines)
        for entry, line in zip(request["metrics"], lines, strict=True):
            assert entry["name"] == f"m{line - 2}"
            assert request["session_id"] == f"ss_{(line - 2) % 3}"
            assert request["device_id"] == ({} if (line - 2) % 2 else "dv_1")
    for c in first + second:
        c.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_big_session_is_split_into_requests_within_the_limit(tmp_path: Path):
    records = [Row(i + 2, "ss_big", NOT_SET, f"m{i}", 1.0) for i in range(35_005)]
    chunks = list(build_chunks(records, digest="e" * 64, chunk_items=100_000, spool_dir=tmp_path, errors=[]))
    sizes = [[len(json.loads(line)["metrics"]) for line in c.body().splitlines()] for c in chunks]
    assert sizes == [[5_000], [10_000], [MAX_ENTRIES_PER_REQUEST, MAX_ENTRIES_PER_REQUEST], [5]]


def test_digest_depends_on_bytes_and_chunking(tmp_path: Path):
    path = tmp_path / "f.csv"
    path.write_text("session_id,name,value\nss,a,1\n")
    a = file_digest(path, "csv", 20_000)
    assert a == file_digest(path, "csv", 20_000)
    assert a != file_digest(path, "csv", 10_000)
    path.write_text("session_id,name,value\nss,a,2\n")
    assert a != file_digest(path, "csv", 20_000)
