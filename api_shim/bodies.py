"""Request bodies under limits: a declared Content-Length over the limit is refused before reading; a body that
grows past it while streaming is refused as soon as it does."""

from __future__ import annotations

import hashlib
import json
import tempfile
from typing import Any

from fastapi import Request

from ingest.errors import InvalidRequest, PayloadTooLarge


def setting_for(limit: int) -> str:
    """The setting that holds `limit`, for the error message (docs/limits.md lists them)."""
    from ingest.config import get_settings

    return (
        "METRICS_INGEST_MAX_NDJSON_BYTES"
        if limit == get_settings().max_ndjson_bytes
        else "METRICS_INGEST_MAX_BODY_BYTES"
    )


def check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest("Content-Length is not a number") from None
        if size > limit:
            raise PayloadTooLarge(
                f"Request body of {size} bytes is over the limit of {limit} bytes ({setting_for(limit)})"
            )


async def read_body(request: Request, limit: int) -> bytes:
    check_declared_length(request, limit)
    chunks, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes ({setting_for(limit)})")
        chunks.append(part)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    raw = await read_body(request, limit)
    if not raw.strip():
        raise InvalidRequest("Request body is empty; expected JSON")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("Request body is not valid JSON") from None
    except RecursionError:
        raise InvalidRequest("Request body is nested too deeply") from None


async def spool_body(request: Request, limit: int) -> tuple[tempfile.SpooledTemporaryFile, str]:
    """Stream a large body to a spooled temp file (memory up to 8 MiB, then disk); returns it and its digest."""
    check_declared_length(request, limit)
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned to the caller
    digest, size = hashlib.sha256(), 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            spool.close()
            raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes ({setting_for(limit)})")
        digest.update(part)
        spool.write(part)
    spool.seek(0)
    return spool, digest.hexdigest()[:32]
