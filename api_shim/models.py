"""The Roboto wire shapes, both SDK generations, as pydantic models: the OpenAPI document is generated from them.

Routes declare them as `response_model` (and request bodies where FastAPI parses the body). Hot routes build their
JSON themselves and return a `Response`, which FastAPI passes through unvalidated; the tests hold every answer to
these models (schemathesis checks each response against the document)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ingest import conditions, periods, reads
from ingest.definitions import NAME_PATTERN
from ingest.jobs import LANES, TERMINAL_STATES
from ingest.numbers import strict_integer

T = TypeVar("T")

# -- building blocks ---------------------------------------------------------------------------------------------
# No control characters, no space, no slash (ids appear in paths); explicit ranges read the same in every regex engine.
Id = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x20\x7f/]+$")]
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]  # PostgreSQL text holds no NUL
# Documented exactly; checked by the domain, whose message names the rule (`Metric name '...' contains ...`).
MetricName = Annotated[
    str, Field(max_length=1000, json_schema_extra={"pattern": NAME_PATTERN, "minLength": 1, "maxLength": 255})
]
# `5.0` is the integer 5, `true` is not one (pydantic's lax mode would read it as 1). The upper bound is the largest
# float64 below 2**63, so that clients comparing numbers as floats (JSON Schema validators do) agree with us.
# (We accept up to 2**63 - 1.)
_BOUNDS = {"minimum": -(2**63), "maximum": 2**63 - 1024}
Nanoseconds = Annotated[
    int, Field(ge=0, le=2**63 - 1, json_schema_extra={"maximum": _BOUNDS["maximum"]}), BeforeValidator(strict_integer)
]
SignedNanoseconds = Annotated[
    int, Field(ge=-(2**63), le=2**63 - 1, json_schema_extra=_BOUNDS), BeforeValidator(strict_integer)
]
TimeZone = Literal[tuple(sorted(zoneinfo.available_timezones() - periods.AMBIGUOUS_ZONES))]  # type: ignore[valid-type]


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NotSet(Wire):
    """`{}`: the SDK's NotSet (the field was not given)."""


class Data(BaseModel, Generic[T]):
    data: T


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_token: str | None


# -- errors ------------------------------------------------------------------------------------------------------
class ErrorDetail(Wire):
    error_code: str = Field(pattern=r"^Roboto[A-Za-z]+Exception$")
    message: str


class ErrorEnvelope(Wire):
    error: ErrorDetail


# -- records -----------------------------------------------------------------------------------------------------
class MetricDefinitionRecord(BaseModel):
    org_id: str
    metric_id: str
    name: str
    description: str | None
    unit: str | None
    created_by: str | None
    created: datetime
    modified_by: str | None
    modified: datetime


class DeviceRecord(BaseModel):
    org_id: str
    device_id: str
    created: datetime


class SessionRecord(BaseModel):
    org_id: str
    session_id: str
    start_time_ns: int
    end_time_ns: int
    device_ids: list[str]
    created: datetime
    modified: datetime


class MetricRecord(BaseModel):
    org_id: str
    metric_id: str
    name: str
    session_id: str
    min_timestamp_ns: int
    max_timestamp_ns: int
    session_start_time_ns: int
    session_end_time_ns: int
    value: float
    device_id: str | None
    invocation_id: str | None
    published_by: str
    published: datetime
    unit: str | None = None
    group_key: str | None = None


class PublishFailure(BaseModel):
    name: str
    error: str


class PublishResult(BaseModel):
    """roboto 0.45-0.59 (no X-Roboto-Api-Version, or before 2026-10-05): stored records and failed names."""

    succeeded: list[MetricRecord]
    failed: list[PublishFailure]


class EntryResponse(BaseModel):
    data: MetricRecord | None
    error: ErrorEnvelope | None


class BatchPublishResult(BaseModel):
    """roboto 0.60+ (X-Roboto-Api-Version from 2026-10-05): one response per entry, in request order."""

    responses: list[EntryResponse]


class JobCounts(BaseModel):
    total: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    pending: int = Field(ge=0)


class JobRecord(BaseModel):
    job_id: str
    org_id: str
    state: Literal[("queued", "running", *TERMINAL_STATES)]  # type: ignore[valid-type]
    lane: Literal[LANES]  # type: ignore[valid-type]
    source: str
    idempotency_key: str | None
    request_id: str | None
    created: datetime
    started: datetime | None
    finished: datetime | None
    counts: JobCounts
    error: ErrorEnvelope | None


class JobItem(BaseModel):
    request_index: int
    entry_index: int | None
    session_id: str | None
    name: str | None
    status: Literal["succeeded", "failed"]
    record: MetricRecord | None
    error: ErrorDetail | None


class QueryPage(Page[MetricRecord]):
    total_count: int | None = None
    total_groups: int | None = None
    groups_truncated: bool | None = None


class AggregateRecord(BaseModel):
    metric_id: str
    name: str
    period: str
    start_time: int
    end_time: int
    total: int
    value: float | None
    unit: str | None
    aggregation: str
    group_key: str | None


class AggregateResult(BaseModel):
    aggregation: str
    records: list[AggregateRecord]
    total_groups: int | None = None
    groups_truncated: bool | None = None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """`ok`, or `unavailable` with the failed checks by name (no hosts, no error text: served without auth)."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "failed"]]
    failed: list[str] | None = None


# -- request bodies ----------------------------------------------------------------------------------------------
class CreateDefinitionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: MetricName
    description: str | None = None
    unit: str | None = Field(default=None, max_length=63)


class UpdateDefinitionBody(BaseModel):
    """Absent key = leave unchanged; null = clear; string = set."""

    model_config = ConfigDict(extra="ignore")
    description: str | None = None
    unit: str | None = Field(default=None, max_length=63)


class CreateDeviceBody(Wire):
    device_id: Id


class CreateSessionBody(Wire):
    """`end_time_ns` must not be before `start_time_ns`."""

    session_id: Id
    start_time_ns: Nanoseconds
    end_time_ns: Nanoseconds
    device_ids: list[Text] = Field(default_factory=list, max_length=1000)


class UpdateSessionBody(Wire):
    """Absent or null = unchanged. The resulting end must not be before the resulting start."""

    start_time_ns: Nanoseconds | None = None
    end_time_ns: Nanoseconds | None = None
    device_ids: list[Text] | None = Field(default=None, max_length=1000)


class SessionBatchBody(Wire):
    """Up to 10,000 sessions; each is checked like `POST /v1/sessions` and answered on its own."""

    sessions: list[CreateSessionBody] = Field(max_length=10_000)


class SessionBatchItem(BaseModel):
    session_id: str | None
    status: Literal["created", "exists", "failed"]
    error: ErrorDetail | None = None


class SessionBatchResult(BaseModel):
    """One item per session, in request order. `exists`: an identical session was already stored (not an error)."""

    created: int
    existing: int
    failed: int
    items: list[SessionBatchItem]


# Bodies the routes read themselves (to stream them, or to tell `{}` from null); documented, not parsed, here.
class MetricEntry(Wire):
    name: str = Field(max_length=1020, description="[A-Za-z0-9-._~]; any other name fails its entry alone")
    value: float | None = Field(description="null stands for NaN/inf and fails its entry alone")


class PublishMetricsRequest(Wire):
    session_id: Id
    device_id: Id | None | NotSet = Field(
        default_factory=NotSet, description="A device; null for none; {} or absent: inferred from the session"
    )
    metrics: list[MetricEntry] = Field(max_length=25_000)


class JobBody(Wire):
    requests: list[PublishMetricsRequest] = Field(max_length=200_000)


def _fields(*types: str) -> Any:
    return Literal[tuple(sorted(name for name, typ in conditions.documented_fields().items() if typ in types))]


class NullCondition(Wire):
    field: _fields("text", "time", "int", "timestamptz")  # type: ignore[valid-type]
    comparator: Literal[conditions.NULLNESS_COMPARATORS]  # type: ignore[valid-type]


class TextCondition(Wire):
    field: _fields("text")  # type: ignore[valid-type]
    comparator: Literal[(*conditions.ORDERED_COMPARATORS, *conditions.TEXT_COMPARATORS)]  # type: ignore[valid-type]
    value: Text


class TimeCondition(Wire):
    """Session times and creation times (the SDK converts datetimes)."""

    field: _fields("time", "timestamptz")  # type: ignore[valid-type]
    comparator: Literal[conditions.ORDERED_COMPARATORS]  # type: ignore[valid-type]
    value: int | float = Field(description="an integer: nanoseconds; a number with a fraction: seconds")


class DurationCondition(Wire):
    """A session's duration, in whole nanoseconds."""

    field: _fields("int")  # type: ignore[valid-type]
    comparator: Literal[conditions.ORDERED_COMPARATORS]  # type: ignore[valid-type]
    value: int


class ConditionGroup(Wire):
    operator: Literal["AND", "OR"]
    conditions: list[NullCondition | TextCondition | TimeCondition | DurationCondition | ConditionGroup] = Field(
        max_length=10
    )


Condition = NullCondition | TextCondition | TimeCondition | DurationCondition | ConditionGroup
IdFilter = Annotated[list[Text] | None | NotSet, Field(description="a list; null = only rows without one; {} = any")]


class ReadBody(Wire):
    name: MetricName
    time_filter: Literal[tuple(reads.TIME_COLUMNS)] = "end_time"  # type: ignore[valid-type]
    include_device_ids: IdFilter = Field(default_factory=NotSet)
    include_session_ids: list[Text] | NotSet = Field(default_factory=NotSet)
    include_invocation_ids: IdFilter = Field(default_factory=NotSet)
    condition: Condition | None = None
    group_by: Literal[tuple(reads.GROUP_FIELDS)] | None = None  # type: ignore[valid-type]


class QueryBody(ReadBody):
    start_time_ns: SignedNanoseconds | None = Field(default=None, description="inclusive; null = the epoch")
    end_time_ns: SignedNanoseconds | None = Field(default=None, description="exclusive; null = now")
    max_results: int = Field(default=reads.MAX_PAGE, ge=1, le=reads.MAX_PAGE)
    sort_by: Literal[tuple(reads.SORT_KEYS)] | None = None  # type: ignore[valid-type]
    descending: bool = False


class AggregateBody(ReadBody):
    period: Literal[periods.PERIODS]  # type: ignore[valid-type]
    aggregation: Literal[tuple(reads.AGGREGATIONS)]  # type: ignore[valid-type]
    start_time_ns: SignedNanoseconds
    end_time_ns: SignedNanoseconds
    time_zone: TimeZone = "UTC"  # type: ignore[valid-type]
    week_start: Literal[periods.WEEKDAYS] = "monday"  # type: ignore[valid-type]
    widen_to_whole_periods: bool = True


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The Roboto error envelope for each status a route answers with."""
    return {status: {"model": ErrorEnvelope, "description": ERROR_TEXT[status]} for status in statuses}


ERROR_TEXT = {
    400: "Invalid request (RobotoInvalidRequestException / RobotoIllegalArgumentException)",
    401: "Missing, invalid, expired or revoked token (RobotoUnauthorizedException)",
    404: "Not found, or owned by another org (RobotoNotFoundException)",
    409: "Already exists, or Idempotency-Key reused with another body (RobotoConflictException)",
    413: "Body or job over a size limit (RobotoLimitExceededException)",
    429: "Backlog over its limit; retry after Retry-After (RobotoLimitExceededException)",
    503: "Database or workers unavailable; retry after Retry-After (RobotoServiceUnavailableException)",
}
