"""Every request body is bounded before any route sees it: a declared Content-Length over the limit is refused
without reading a byte, a body that grows past the limit while streaming is refused as soon as it does, and an
upload that stalls (no data for `body_read_timeout_s`) or trickles (slower than `body_min_rate_bytes_s` on average
once its first `body_read_timeout_s` are over, as Apache's mod_reqtimeout MinRate) is cut off, so a slow client
cannot tie up the API.

NDJSON job uploads have their own, larger limit; every other body has `max_body_bytes`."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_shim.bodies import is_ndjson
from ingest.config import Settings, get_settings
from ingest.errors import InvalidRequest, PayloadTooLarge

JOBS_PATH = "/v1/metrics/jobs"


class BodyStalled(InvalidRequest):
    pass


def body_limit(scope: Scope, settings: Settings) -> tuple[int, str]:
    """The byte limit for this request and the setting that holds it."""
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
    if scope.get("path") == JOBS_PATH and is_ndjson(content_type):
        return settings.max_ndjson_bytes, "METRICS_INGEST_MAX_NDJSON_BYTES"
    return settings.max_body_bytes, "METRICS_INGEST_MAX_BODY_BYTES"


class BodyGuard:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        limit, setting = body_limit(scope, settings)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = None
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Refused at the first attempt to read: not a byte of the body is received; the route's error
            # handling answers 413 as for any other domain error.
            too_large = PayloadTooLarge(
                f"Request body of {int(declared)} bytes is over the limit of {limit} bytes ({setting})"
            )
        timeout = settings.body_read_timeout_s
        min_rate = settings.body_min_rate_bytes_s
        loop = asyncio.get_running_loop()
        started: float | None = None
        received = 0

        async def guarded_receive() -> Message:
            nonlocal received, started
            if too_large is not None:
                raise too_large
            # No data for `timeout` seconds after the app asks is a stall. And the body as a whole may take `timeout`
            # seconds from the app's first read plus one per `min_rate` bytes received: a client that trickles a
            # byte now and then is cut off as surely. (Time the app spends elsewhere is not the client's.)
            now = loop.time()
            if started is None:
                started = now
            stall_at = now + timeout
            trickle_at = started + timeout + received / min_rate
            try:
                wait = min(stall_at, trickle_at) - now
                if wait <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), wait)
            except TimeoutError:
                if stall_at <= trickle_at:
                    raise BodyStalled(
                        f"Request body stalled: no data for {timeout:g} s (METRICS_INGEST_BODY_READ_TIMEOUT_S)"
                    ) from None
                raise BodyStalled(
                    f"Request body too slow: {received} bytes in {loop.time() - started:.0f} s; after the first "
                    f"{timeout:g} s at least {min_rate} bytes/s are needed (METRICS_INGEST_BODY_MIN_RATE_BYTES_S)"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes ({setting})")
            return message

        await self.app(scope, guarded_receive, send)
