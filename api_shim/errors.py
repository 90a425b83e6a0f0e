"""Every error leaves the API as the Roboto envelope, with exactly `error_code` and `message`.

FastAPI's own 422/404/405/500 bodies never reach a client."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import DomainError, InvalidRequest, NotFound, ServiceUnavailable

log = structlog.get_logger(__name__)


def envelope_response(err: DomainError) -> JSONResponse:
    return JSONResponse(err.envelope(), status_code=err.status, headers=err.headers or None)


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc) or "body"
        if e.get("type") == "json_invalid":
            return "Request body is not valid JSON"
        parts.append(f"{where}: {e.get('msg')}")
    return "Invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return envelope_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope_response(InvalidRequest(describe_validation(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return envelope_response(NotFound(f"No route for {request.method} {request.url.path}"))
        if exc.status_code == 405:
            return envelope_response(InvalidRequest(f"Method {request.method} is not allowed on {request.url.path}"))
        return envelope_response(InvalidRequest(str(exc.detail)))

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database.unavailable", error=str(exc.orig).splitlines()[0] if exc.orig else str(exc))
        return envelope_response(
            ServiceUnavailable("The database is unavailable; retry shortly", headers={"Retry-After": "5"})
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return envelope_response(
                ServiceUnavailable("The database connection was lost; retry shortly", headers={"Retry-After": "5"})
            )
        log.exception("database.error")
        return JSONResponse(
            {"error": {"error_code": "RobotoServiceException", "message": "Internal database error"}},
            status_code=500,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request.unhandled_error", error_type=type(exc).__name__)
        return JSONResponse(
            {"error": {"error_code": "RobotoServiceException", "message": "Internal server error"}},
            status_code=500,
        )
