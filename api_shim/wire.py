"""Roboto wire details: the `{}` NotSet marker, record shapes, timestamps and opaque page tokens."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from ingest.errors import InvalidRequest, ItemError
from ingest.notset import NOT_SET


def not_set_or(value: Any, field: str, *, allow_null: bool = True) -> Any:
    """Decode a field that may be `{}` (NotSet), null, or a real value. An absent key is NotSet too."""
    if isinstance(value, dict):
        if value:
            raise InvalidRequest(f"{field} must be {{}} (not set), null or a value, not an object with keys")
        return NOT_SET
    if value is None and not allow_null:
        raise InvalidRequest(f"{field} must not be null")
    return value


@functools.lru_cache(maxsize=4096)
def iso(dt: datetime) -> str:
    """Roboto's timestamp text. Remembered: the records of one publish (or one job) share their `published` time,
    and formatting was 12% of the API's time answering a 1,000-entry publish. A naive datetime is in UTC (query
    pages load timestamptz that way: ingest.reads.query_page)."""
    if dt.tzinfo is None:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OrjsonResponse(JSONResponse):
    """JSON encoded by orjson (several times faster than the standard library's encoder on records)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:  # e.g. a lone surrogate echoed from the request: the standard encoder's
            return super().render(content)  # UnicodeEncodeError is answered as a 400, as before orjson


def respond(payload: Any, status_code: int = 200) -> JSONResponse:
    """A JSON answer built here, byte for byte: routes return a Response, so their declared response model documents
    the shape without FastAPI re-serializing it (which would re-format timestamps)."""
    return OrjsonResponse(payload, status_code=status_code)


def data(payload: Any) -> dict:
    return {"data": payload}


def page(items: list, next_token: str | None, **extra: Any) -> dict:
    return {"data": {"items": items, "next_token": next_token, **extra}}


def keyset_page(rows: list, limit: int, position: Callable[[Any], dict], bound_to: str, render: Callable) -> dict:
    """A page from `limit + 1` fetched rows: the extra row only says that another page exists."""
    next_token = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_token = encode_page_token(position(rows[-1]), bound_to=bound_to)
    return page([render(r) for r in rows], next_token)


def definition_record(row: dict) -> dict:
    return {
        "org_id": row["org_id"],
        "metric_id": row["metric_id"],
        "name": row["name"],
        "description": row["description"],
        "unit": row["unit"],
        "created_by": row["created_by"],
        "created": iso(row["created"]),
        "modified_by": row["modified_by"],
        "modified": iso(row["modified"]),
    }


def body_digest(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_page_token(position: dict, bound_to: str | None = None) -> str:
    doc: dict[str, Any] = {"p": position}
    if bound_to is not None:
        doc["b"] = bound_to
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, bound_to: str | None = None) -> dict:
    """The position inside a page token; a forged, garbled or foreign token is a 400, never a 500."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        position = doc["p"]
        if not isinstance(position, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("page_token is not a valid page token") from None
    if bound_to is not None and doc.get("b") != bound_to:
        raise InvalidRequest("page_token belongs to a different request; re-send the same body with it")
    return position


def metric_record(row: Mapping[str, Any]) -> dict:
    """A stored value (a row of `ingest.values.RECORD_COLUMNS`) as a Roboto MetricRecord: `metric_records` of one
    row, so the record's shape is written in one place."""
    fields = (
        row["session_id"],
        row["value"],
        row["device_id"],
        row["invocation_id"],
        row["session_start_ns"],
        row["session_end_ns"],
        row["published_by"],
        row["published"],
        row.get("group_key"),
        None,  # no sort key
    )
    return metric_records([fields], row["org_id"], row["metric_id"], row["name"], row.get("unit"))[0]


def metric_records(rows: Iterable[tuple], org_id: str, metric_id: str, name: str, unit: str | None) -> list[dict]:
    """Rows of one metric as Roboto MetricRecords, the one place their shape is written. Each row is
    `ingest.reads.VALUE_FIELDS` plus the page's sort key (ignored): session_id, value, device_id, invocation_id,
    session start and end (ns), published_by, published (datetime), group_key, key.

    A query page calls this for up to 10,000 rows, so it is one loop with the dict written out (no call per row), and
    each distinct `published` (rows of one job share it) is formatted once."""
    published: dict = {}
    out: list[dict] = []
    append = out.append
    for session_id, value, device_id, invocation_id, start, end, by, at, group_key, _key in rows:
        when = published.get(at)
        if when is None:
            when = published[at] = iso(at)
        append(
            {
                "org_id": org_id,
                "metric_id": metric_id,
                "name": name,
                "session_id": session_id,
                "min_timestamp_ns": start,
                "max_timestamp_ns": end,
                "session_start_time_ns": start,
                "session_end_time_ns": end,
                "value": value,
                "device_id": device_id,
                "invocation_id": invocation_id,
                "published_by": by,
                "published": when,
                "unit": unit,
                "group_key": group_key,
            }
        )
    return out


def item_error(error: ItemError) -> dict:
    return {"error_code": error.error_code, "message": error.message}


def job_record(row: dict) -> dict:
    pending = max(0, row["total"] - row["succeeded"] - row["failed"])
    error = None
    if row.get("error_code"):
        error = {"error": {"error_code": row["error_code"], "message": row["error_message"] or ""}}
    return {
        "job_id": row["job_id"],
        "org_id": row["org_id"],
        "state": row["state"],
        "lane": row["lane"],
        "source": row["source"],
        "idempotency_key": row.get("idempotency_key"),
        "request_id": row.get("request_id"),
        "created": iso(row["created"]),
        "started": iso(row["started"]) if row.get("started") else None,
        "finished": iso(row["finished"]) if row.get("finished") else None,
        "counts": {"total": row["total"], "succeeded": row["succeeded"], "failed": row["failed"], "pending": pending},
        "error": error,
    }


# Publish answers: the shape depends on the caller's X-Roboto-Api-Version (wire contract, section 4).
BATCH_RESPONSE_SINCE = "2026-10-05"


def wants_batch_response(api_version: str | None) -> bool:
    return api_version is not None and api_version >= BATCH_RESPONSE_SINCE  # ISO dates compare as strings


def publish_response(items: list, api_version: str | None) -> dict:
    """`items` are ingest.results.Item in request order."""
    if wants_batch_response(api_version):
        responses = []
        for item in items:
            if item.error is None and item.record is not None:
                responses.append({"data": metric_record(item.record), "error": None})
            else:
                error = item.error or ItemError("RobotoServiceException", "record not found")
                responses.append({"data": None, "error": {"error": item_error(error)}})
        return data({"responses": responses})
    succeeded, seen, failed = [], set(), []
    for item in items:
        if item.error is None and item.record is not None:
            key = (item.name, item.session_id)
            if key not in seen:
                seen.add(key)
                succeeded.append(metric_record(item.record))
        elif item.error is not None:
            failed.append({"name": item.name, "error": item.error.message})
    return data({"succeeded": succeeded, "failed": failed})
