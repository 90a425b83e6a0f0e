"""Per-request observability, as one pure ASGI middleware (no BaseHTTPMiddleware: it would break contextvars and
streaming bodies):

- a request id: the caller's `X-Request-Id` when it is a sane token, else a generated one. It is put back into the
  request headers (so `RequestContext.request_id` and from there the job and the worker's log lines carry it),
  bound into structlog's context for every log line of the request, and returned in the response header;
- HTTP metrics labelled with the matched route *template* (`/v1/metrics/jobs/{job_id}`), never the raw path;
- one `http.request` log line per request (method, route, status, ms; never headers or query strings)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest import telemetry

log = structlog.get_logger(__name__)

HEADER = b"x-request-id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}  # probes and scrapes: counted, not logged


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for key, value in headers:
        if key == HEADER:
            candidate = value.decode("latin-1").strip()
            if _VALID_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")  # set by FastAPI's own routes
    if route is None and scope.get("endpoint") is not None:
        # plain Starlette routes (FastAPI's /docs, /redoc, /openapi.json) name only their endpoint
        app = scope.get("app")
        routes = getattr(getattr(app, "router", None), "routes", None) or []
        route = next((r for r in routes if isinstance(r, Route) and r.endpoint is scope["endpoint"]), None)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else telemetry.UNMATCHED_ROUTE


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers") or [])
        headers = [(k, v) for k, v in scope.get("headers") or [] if k != HEADER]
        headers.append((HEADER, request_id.encode("latin-1")))
        scope = dict(scope, headers=headers)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (HEADER, request_id.encode("latin-1"))]
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope)
                telemetry.observe_request(scope["method"], route, status, elapsed)
                if route not in _QUIET_ROUTES:
                    log.info(
                        "http.request",
                        method=scope["method"],
                        route=route,
                        status=status,
                        ms=round(elapsed * 1000, 1),
                    )
