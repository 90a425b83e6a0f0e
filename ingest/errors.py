"""Domain errors. Each carries the Roboto `error_code` and the HTTP status the API answers with.

The API maps them to the envelope `{"error": {"error_code": ..., "message": ...}}` in one handler; the worker
records per-entry failures with the same codes.
"""

from __future__ import annotations


class DomainError(Exception):
    error_code = "RobotoServiceException"
    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def envelope(self) -> dict:
        return {"error": {"error_code": self.error_code, "message": self.message}}


class InvalidRequest(DomainError):
    error_code = "RobotoInvalidRequestException"
    status = 400


class IllegalArgument(DomainError):
    error_code = "RobotoIllegalArgumentException"
    status = 400


class Unauthorized(DomainError):
    error_code = "RobotoUnauthorizedException"
    status = 401


class NotFound(DomainError):
    error_code = "RobotoNotFoundException"
    status = 404


class Conflict(DomainError):
    error_code = "RobotoConflictException"
    status = 409


class PayloadTooLarge(DomainError):
    error_code = "RobotoLimitExceededException"
    status = 413


class TooManyRequests(DomainError):
    """Backpressure: the backlog is over its limit. The SDK retries 429 by itself."""

    error_code = "RobotoLimitExceededException"
    status = 429


class ServiceUnavailable(DomainError):
    error_code = "RobotoServiceUnavailableException"
    status = 503


def error_dict(code: str, message: str) -> dict:
    """A per-item error as stored in job outcomes and returned by the job results API."""
    return {"error_code": code, "message": message}
