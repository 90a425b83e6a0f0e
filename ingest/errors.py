"""Domain errors. Each carries the name of the Roboto exception it stands for (`error_code`): the HTTP edge answers
with it (and picks the status, `api_shim/errors.py`), and the worker records per-entry failures with the same codes.
"""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    error_code = "RobotoServiceException"

    def __init__(self, message: str, *, retry_after_s: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s  # the caller may retry after this long (backpressure, an outage)


class InvalidRequest(DomainError):
    error_code = "RobotoInvalidRequestException"


class IllegalArgument(DomainError):
    error_code = "RobotoIllegalArgumentException"


class Unauthorized(DomainError):
    error_code = "RobotoUnauthorizedException"


class NotFound(DomainError):
    error_code = "RobotoNotFoundException"


class Conflict(DomainError):
    error_code = "RobotoConflictException"


class PayloadTooLarge(DomainError):
    error_code = "RobotoLimitExceededException"


class TooManyRequests(DomainError):
    """Backpressure: the backlog is over its limit. The SDK retries by itself."""

    error_code = "RobotoLimitExceededException"


class ServiceUnavailable(DomainError):
    error_code = "RobotoServiceUnavailableException"


@dataclass(frozen=True)
class ItemError:
    """Why one published entry failed, as stored in job outcomes."""

    error_code: str
    message: str
