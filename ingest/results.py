"""Per-item outcomes of a job, expanded from the compact per-chunk form the workers store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from ingest import jobs, values
from ingest.errors import ItemError
from ingest.payload import PublishRequest, decode_chunk, decode_keys


@dataclass
class Item:
    seq: int
    offset: int  # position within the chunk's flattened entries
    request_index: int
    entry_index: int
    session_id: str
    name: str
    error: ItemError | None  # None when the entry succeeded
    record: dict | None = None

    @property
    def status(self) -> str:
        return "failed" if self.error else "succeeded"


def chunk_items(chunk: dict) -> Iterator[Item]:
    """A done chunk keeps only its item keys (its payload is dropped); a failed one keeps its payload."""
    keys = chunk["item_keys"]
    requests = decode_keys(keys) if keys is not None else decode_chunk(chunk["payload"] or b"[]")
    return items_of(chunk["seq"], chunk["first_request"], chunk["outcomes"], requests)


def items_of(seq: int, first_request: int, outcomes: dict | None, requests: list[PublishRequest]) -> Iterator[Item]:
    """Every entry of a chunk's requests with its outcome (the compact outcomes list failures only)."""
    outcomes = outcomes or {}
    request_errors = {int(k): v for k, v in (outcomes.get("req") or {}).items()}
    item_errors = {(ri, ei): (code, msg) for ri, ei, code, msg in outcomes.get("items") or []}
    job_error = outcomes.get("job_error")
    offset = 0
    for ri, request in enumerate(requests):
        for ei, (name, _value) in enumerate(request.entries):
            err = job_error or request_errors.get(ri) or item_errors.get((ri, ei))
            yield Item(seq, offset, first_request + ri, ei, request.session_id, name, ItemError(*err) if err else None)
            offset += 1


def attach_records(conn: Connection, org_id: str, items: list[Item]) -> None:
    ok = [(i.name, i.session_id) for i in items if i.error is None]
    found = values.records_for_keys(conn, org_id, ok)
    for item in items:
        if item.error is None:
            item.record = found.get((item.name, item.session_id))


def page_of_items(
    conn: Connection, org_id: str, job_id: str, *, status: str | None, start: tuple[int, int], limit: int
) -> tuple[list[Item], tuple[int, int] | None]:
    """Up to `limit` items from position `start` (chunk seq, offset), optionally only one status; returns the
    items (with records) and the next position, or None at the end."""
    seq, offset = start
    items: list[Item] = []
    while True:
        chunks = jobs.chunk_rows(conn, job_id, seq, 4, with_payload=True)
        if not chunks:
            attach_records(conn, org_id, items)
            return items, None
        for chunk in chunks:
            if (
                chunk["state"] == "queued"
                or (status == "failed" and chunk["failed"] == 0)
                or (status == "succeeded" and chunk["succeeded"] == 0)
            ):
                continue
            for item in chunk_items(chunk):
                if chunk["seq"] == start[0] and item.offset < offset:
                    continue
                if status and item.status != status:
                    continue
                if len(items) == limit:
                    attach_records(conn, org_id, items)
                    return items, (item.seq, item.offset)
                items.append(item)
        seq = chunks[-1]["seq"] + 1


def failed_items(conn: Connection, job_id: str) -> Iterator[Item]:
    """Every failed item of a job, in request order, a few chunks at a time (a download never holds them all)."""
    seq = 0
    while chunks := jobs.chunk_rows(conn, job_id, seq, 4, with_payload=True):
        for chunk in chunks:
            if chunk["state"] != "queued" and chunk["failed"]:
                yield from (item for item in chunk_items(chunk) if item.error)
        seq = chunks[-1]["seq"] + 1
