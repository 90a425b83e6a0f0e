"""Reading request bodies that routes parse themselves (to stream them, or to decode the Roboto `{}` marker).

Their size is bounded before they get here: `api_shim.body_guard` refuses an over-limit body for every route."""

from __future__ import annotations

import hashlib
import json
import tempfile
from typing import Any

from fastapi import Request

from ingest.errors import InvalidRequest

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")  # job uploads, one request a line


def is_ndjson(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in NDJSON_TYPES


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("Request body is empty; expected JSON")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("Request body is not valid JSON") from None
    except RecursionError:
        raise InvalidRequest("Request body is nested too deeply") from None


async def spool_body(request: Request) -> tuple[tempfile.SpooledTemporaryFile, str]:
    """Stream a large body to a spooled temp file (memory up to 8 MiB, then disk); returns it and its digest."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned to the caller
    digest = hashlib.sha256()
    try:
        async for part in request.stream():
            digest.update(part)
            spool.write(part)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, digest.hexdigest()[:32]
