"""uvicorn's HTTP/1.1 protocol (httptools) with a deadline on the request head.

uvicorn bounds the idle time between two requests of a keep-alive connection (`timeout_keep_alive`) but not the
time a client takes to send a request's line and headers: a connection that sends nothing, or one header byte now
and then, would stay open for ever. Here every request head must be complete within `header_read_timeout_s` of
its first byte (of the connection's opening for the first request); otherwise the connection gets a 408 in the
Roboto envelope (nothing when not a byte came) and is closed. Each waiting connection costs one timer on the event
loop, no thread and no task, so hundreds of them do not slow anyone else. A body that trickles is cut off by
`api_shim/body_guard.py`."""

from __future__ import annotations

import asyncio
import json

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ingest.config import get_settings

log = structlog.get_logger(__name__)


def timeout_response(timeout_s: float) -> bytes:
    body = json.dumps(
        {
            "error": {
                "error_code": "RobotoRequestTimeoutException",
                "message": f"Request headers not received within {timeout_s:g} s "
                "(METRICS_INGEST_HEADER_READ_TIMEOUT_S)",
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        "connection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class HeadTimeoutProtocol(HttpToolsProtocol):
    _head_timer: asyncio.TimerHandle | None = None
    _head_started = False

    @property
    def head_timeout_s(self) -> float:
        return get_settings().header_read_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()  # the next request of a keep-alive connection (the first one's runs since connect)
        self._head_started = True

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_started = False
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        log.info("http.header_timeout", client=f"{self.client[0]}:{self.client[1]}" if self.client else None)
        if self._head_started:
            self.transport.write(timeout_response(self.head_timeout_s))
        self.transport.close()
