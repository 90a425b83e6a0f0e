"""Every error leaves the API as the Roboto envelope, with exactly `error_code` and `message`.

FastAPI's own 422/404/405/500 bodies never reach a client."""

from __future__ import annotations

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.db import is_transient
from ingest.errors import (
    Conflict,
    DomainError,
    IllegalArgument,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

log = structlog.get_logger(__name__)


class Forbidden(DomainError):
    """A state-changing console form without its CSRF token (an HTTP matter: the domain never raises it)."""

    error_code = "RobotoForbiddenException"


# The HTTP status of each domain error (the most specific class wins).
STATUS: dict[type[DomainError], int] = {
    InvalidRequest: 400,
    Forbidden: 403,
    IllegalArgument: 400,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    TooManyRequests: 429,
    ServiceUnavailable: 503,
    DomainError: 500,
}


def status_of(err: DomainError) -> int:
    return next(STATUS[cls] for cls in type(err).__mro__ if cls in STATUS)


def envelope(err: DomainError) -> dict:
    """The Roboto error envelope: exactly `{"error": {"error_code", "message"}}`."""
    return {"error": {"error_code": err.error_code, "message": err.message}}


def retry_after(err: DomainError) -> dict[str, str] | None:
    """The `Retry-After` header of an error the caller may retry later."""
    return {"Retry-After": f"{err.retry_after_s:g}"} if err.retry_after_s is not None else None


def envelope_response(err: DomainError) -> JSONResponse:
    return JSONResponse(envelope(err), status_code=status_of(err), headers=retry_after(err))


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

    # Database errors, through SQLAlchemy or raw psycopg (the LISTEN connection): a value PostgreSQL cannot store (a
    # NUL in text, a number out of range) comes from the request (400); a transient failure (server away, connection
    # dropped, lock time-out) is a 503 the SDK retries; no pooled connection free in time is a 429 (overload);
    # anything else is our fault (500).
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DataError):
            reason = (str(exc.orig) or "invalid value").split("\n")[0]
            return envelope_response(InvalidRequest(f"A value in the request cannot be stored: {reason}"))
        if isinstance(exc, PoolTimeout):
            # Every pooled connection is busy: overload, shed like the backlog's (429, the SDK retries), never a 5xx.
            log.warning("database.pool_exhausted")
            return envelope_response(
                TooManyRequests(
                    "The service is busy: no database connection was free in time; retry later", retry_after_s=1
                )
            )
        if is_transient(exc):
            orig = getattr(exc, "orig", None) or exc
            log.warning("database.unavailable", error_type=type(orig).__name__, error=(str(orig) or "").split("\n")[0])
            return envelope_response(
                ServiceUnavailable("The database is unavailable or busy; retry shortly", retry_after_s=5)
            )
        log.exception("database.error")
        return envelope_response(DomainError("Internal database error"))

    for database_error in (DBAPIError, PoolTimeout, psycopg.Error):
        app.add_exception_handler(database_error, _database)

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(_: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return envelope_response(InvalidRequest("A value in the request is not valid Unicode (lone surrogate)"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request.unhandled_error", error_type=type(exc).__name__)
        return envelope_response(DomainError("Internal server error"))
