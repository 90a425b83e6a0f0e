"""Publish payloads: the shape check done at accept time, and the compact form stored in the outbox.

A PublishMetricsRequest arrives as `{"session_id", "device_id", "metrics": [{"name", "value"}]}`. The API only
checks its shape (types, sizes); entry-level validation (name charset, finite value) is the worker's job, so that
a bad entry fails alone. The stored form is compact JSON: `{"s": session, "m": [[name, value], ...]}` plus
`"d": device` when the caller set `device_id` (a string or null); no `"d"` means "infer from the session".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ingest.errors import InvalidRequest
from ingest.notset import NOT_SET


@dataclass(frozen=True)
class Limits:
    max_entries_per_request: int
    max_id_length: int
    max_name_length: int

    @classmethod
    def from_settings(cls, settings) -> Limits:
        return cls(settings.max_entries_per_request, settings.max_id_length, settings.max_name_length)


@dataclass
class PublishRequest:
    session_id: str
    device_id: Any  # str, None (no device) or NOT_SET (infer)
    entries: list[tuple[str, float | None]]

    def to_compact(self) -> dict:
        doc: dict[str, Any] = {"s": self.session_id, "m": self.entries}
        if self.device_id is not NOT_SET:
            doc["d"] = self.device_id
        return doc

    @classmethod
    def from_compact(cls, doc: dict) -> PublishRequest:
        return cls(doc["s"], doc.get("d", NOT_SET), [(n, v) for n, v in doc["m"]])


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as PostgreSQL text (NUL bytes, lone surrogates), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    return None


def parse_request(obj: Any, limits: Limits, where: str = "request") -> PublishRequest:
    """Check one PublishMetricsRequest's shape; raise InvalidRequest naming the offending field."""
    if not isinstance(obj, dict):
        raise InvalidRequest(f"{where} must be a JSON object")
    session_id = obj.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise InvalidRequest(f"{where}.session_id must be a non-empty string")
    if len(session_id) > limits.max_id_length:
        raise InvalidRequest(f"{where}.session_id is longer than {limits.max_id_length} characters")
    if problem := text_problem(session_id):
        raise InvalidRequest(f"{where}.session_id {problem}")
    device: Any = NOT_SET
    if "device_id" in obj:
        raw = obj["device_id"]
        if isinstance(raw, dict):
            if raw:
                raise InvalidRequest(f"{where}.device_id must be a string, null or {{}} (not set)")
        elif raw is None or isinstance(raw, str):
            if isinstance(raw, str) and not (0 < len(raw) <= limits.max_id_length):
                raise InvalidRequest(f"{where}.device_id must be 1 to {limits.max_id_length} characters")
            if isinstance(raw, str) and (problem := text_problem(raw)):
                raise InvalidRequest(f"{where}.device_id {problem}")
            device = raw
        else:
            raise InvalidRequest(f"{where}.device_id must be a string, null or {{}} (not set)")
    metrics = obj.get("metrics")
    if not isinstance(metrics, list):
        raise InvalidRequest(f"{where}.metrics must be a list")
    if len(metrics) > limits.max_entries_per_request:
        raise InvalidRequest(
            f"{where}.metrics has {len(metrics)} entries; the limit is {limits.max_entries_per_request} per request"
        )
    entries: list[tuple[str, float | None]] = []
    for i, entry in enumerate(metrics):
        if not isinstance(entry, dict):
            raise InvalidRequest(f"{where}.metrics[{i}] must be an object with name and value")
        name = entry.get("name")
        if not isinstance(name, str):
            raise InvalidRequest(f"{where}.metrics[{i}].name must be a string")
        if len(name) > 4 * limits.max_name_length:  # gross abuse is a shape error; the rest is per entry
            raise InvalidRequest(f"{where}.metrics[{i}].name is far longer than {limits.max_name_length} characters")
        if not name.isascii() and text_problem(name) == "is not valid Unicode (lone surrogate)":
            # not even representable in the JSON answer; the other bad names fail their entry alone
            raise InvalidRequest(f"{where}.metrics[{i}].name is not valid Unicode (lone surrogate)")
        value = entry.get("value")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidRequest(f"{where}.metrics[{i}].value must be a number or null")
            try:
                value = float(value)
            except OverflowError:  # an integer beyond the float range: not finite, that entry fails
                value = None
            if value is not None and not math.isfinite(value):
                value = None
        entries.append((name, value))
    return PublishRequest(session_id, device, entries)


def parse_job_body(body: Any, limits: Limits, max_requests: int) -> list[PublishRequest]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise InvalidRequest('body must be {"requests": [PublishMetricsRequest, ...]}')
    if len(body["requests"]) > max_requests:
        raise InvalidRequest(f"a job holds at most {max_requests} requests")
    return [parse_request(r, limits, f"requests[{i}]") for i, r in enumerate(body["requests"])]


def parse_ndjson_lines(lines: Iterable[bytes], limits: Limits, start: int = 0) -> Iterator[PublishRequest]:
    for offset, line in enumerate(lines):
        lineno = start + offset + 1
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest(f"line {lineno}: not valid JSON") from None
        yield parse_request(obj, limits, f"line {lineno}")


def encode_chunk(requests: list[PublishRequest]) -> bytes:
    return json.dumps([r.to_compact() for r in requests], separators=(",", ":")).encode()


def decode_chunk(payload: bytes) -> list[PublishRequest]:
    return [PublishRequest.from_compact(d) for d in json.loads(payload)]


def encode_keys(requests: list[PublishRequest]) -> bytes:
    """What a done chunk keeps of its payload: each entry's (session, name), for its results; no values, no devices.
    `{"l": [[name, ...], ...], "r": [[session, index into l], ...]}`: requests naming the same metrics in the same
    order (a backfill's usual shape) share one list."""
    lists: dict[tuple[str, ...], int] = {}
    rows = []
    for request in requests:
        names = tuple(name for name, _value in request.entries)
        rows.append([request.session_id, lists.setdefault(names, len(lists))])
    return json.dumps({"l": [list(names) for names in lists], "r": rows}, separators=(",", ":")).encode()


def decode_keys(keys: bytes) -> list[PublishRequest]:
    """The requests of `encode_keys`, every value None and the device not set."""
    doc = json.loads(keys)
    lists = doc["l"]
    return [PublishRequest(session, NOT_SET, [(name, None) for name in lists[index]]) for session, index in doc["r"]]
