"""Every error leaves the API as the Roboto envelope, with exactly `error_code` and `message`.

FastAPI's own 422/404/405/500 bodies never reach a client."""

from __future__ import annotations

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
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
        if isinstance(exc.__cause__, DomainError):  # raised while FastAPI read the body (limits, stalls)
            return envelope_response(exc.__cause__)
        if exc.status_code == 404:
            return envelope_response(NotFound(f"No route for {request.method} {request.url.path}"))
        if exc.status_code == 405:
            return envelope_response(InvalidRequest(f"Method {request.method} is not allowed on {request.url.path}"))
        return envelope_response(InvalidRequest(str(exc.detail)))

    def _unavailable(exc: Exception, message: str) -> JSONResponse:
        orig = getattr(exc, "orig", None) or exc
        log.warning("database.unavailable", error_type=type(orig).__name__, error=(str(orig) or "").split("\n")[0])
        return envelope_response(ServiceUnavailable(message, headers={"Retry-After": "5"}))

    # The server is gone: connect refused, connection dropped mid-request (OperationalError, or InterfaceError
    # "the connection is closed" on a pooled connection), or no pooled connection free in time.
    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        return _unavailable(exc, "The database is unavailable; retry shortly")

    @app.exception_handler(InterfaceError)
    async def _db_interface(_: Request, exc: InterfaceError) -> JSONResponse:
        return _unavailable(exc, "The database connection was lost; retry shortly")

    @app.exception_handler(PoolTimeout)
    async def _db_pool(_: Request, exc: PoolTimeout) -> JSONResponse:
        return _unavailable(exc, "The database is busy or unavailable; retry shortly")

    # Raw psycopg (the LISTEN connection, direct reads) fails the same ways without SQLAlchemy's wrapper.
    @app.exception_handler(psycopg.OperationalError)
    async def _pg_down(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        return _unavailable(exc, "The database is unavailable; retry shortly")

    @app.exception_handler(psycopg.InterfaceError)
    async def _pg_interface(_: Request, exc: psycopg.InterfaceError) -> JSONResponse:
        return _unavailable(exc, "The database connection was lost; retry shortly")

    # Values PostgreSQL cannot store (a NUL in text, a number out of range) come from the request: a 400.
    @app.exception_handler(DataError)
    async def _db_data(_: Request, exc: DataError) -> JSONResponse:
        reason = (str(exc.orig) or "invalid value").split("\n")[0]
        return envelope_response(InvalidRequest(f"A value in the request cannot be stored: {reason}"))

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(_: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return envelope_response(InvalidRequest("A value in the request is not valid Unicode (lone surrogate)"))

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated or isinstance(
            exc.orig, psycopg.OperationalError | psycopg.InterfaceError | psycopg.errors.AdminShutdown
        ):
            return _unavailable(exc, "The database connection was lost; retry shortly")
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
