"""SQLAlchemy tables. Alembic migrations create them; `tests/unit/test_schema_drift.py` checks both agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()


def _now() -> Column:
    return Column("created", DateTime(timezone=True), nullable=False, server_default=func.now())


orgs = Table(
    "orgs",
    metadata,
    Column("org_id", Text, primary_key=True),
    _now(),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", Text, primary_key=True),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("principal", Text, nullable=False),
    Column("org_ids", ARRAY(Text), nullable=False),  # first = the default org
    Column("invocation_id", Text),
    _now(),
    Column("last_used", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

devices = Table(
    "devices",
    metadata,
    Column("org_id", Text, ForeignKey("orgs.org_id", ondelete="CASCADE"), nullable=False),
    Column("device_id", Text, nullable=False),
    _now(),
    PrimaryKeyConstraint("org_id", "device_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("org_id", Text, ForeignKey("orgs.org_id", ondelete="CASCADE"), nullable=False),
    Column("session_id", Text, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    _now(),
    Column("modified", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("org_id", "session_id"),
)

session_devices = Table(
    "session_devices",
    metadata,
    Column("org_id", Text, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    PrimaryKeyConstraint("org_id", "session_id", "device_id"),
    ForeignKeyConstraint(["org_id", "session_id"], ["sessions.org_id", "sessions.session_id"], ondelete="CASCADE"),
    ForeignKeyConstraint(["org_id", "device_id"], ["devices.org_id", "devices.device_id"], ondelete="CASCADE"),
)

invocations = Table(
    "invocations",
    metadata,
    Column("invocation_id", Text, primary_key=True),
    Column("org_id", Text, ForeignKey("orgs.org_id", ondelete="CASCADE"), nullable=False),
    _now(),
)

# A compact key of a metric, computed by PostgreSQL from its id and unique among definitions: it leads the indexes of
# metric_values (8 bytes where the text id takes 24), so `metric_key = hashtextextended(:metric_id, 0)` selects exactly
# one metric's rows (ingest.reads.metric_rows).
METRIC_KEY = "hashtextextended(metric_id, 0)"

metric_definitions = Table(
    "metric_definitions",
    metadata,
    Column("metric_id", Text, primary_key=True),
    Column("org_id", Text, ForeignKey("orgs.org_id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("unit", Text),
    Column("created_by", Text, nullable=False),
    _now(),
    Column("modified_by", Text, nullable=False),
    Column("modified", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("metric_key", BigInteger, Computed(METRIC_KEY, persisted=True), nullable=False),
    UniqueConstraint("org_id", "name", name="uq_metric_definitions_org_name"),
    UniqueConstraint("metric_key", name="uq_metric_definitions_key"),
    UniqueConstraint("metric_key", "metric_id", name="uq_metric_definitions_key_id"),
)

# One row per (metric, session). The session's start/end are copied onto the row so that a time window on a
# metric is one index range scan; changing a session's times updates the copies in the same transaction.
# Indexes (issue 19, docs/reads.md "Indexes"): the primary key (session_id, metric_key) serves the worker's upsert,
# get-by-session and a session's time change; (metric_key, time, session_id) serves windows, keyset pages, counts and
# the definition's cascade delete.
metric_values = Table(
    "metric_values",
    metadata,
    Column("metric_id", Text, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("org_id", Text, nullable=False),
    Column("value", Double, nullable=False),
    Column("device_id", Text),
    Column("invocation_id", Text),
    Column("session_start_ns", BigInteger, nullable=False),
    Column("session_end_ns", BigInteger, nullable=False),
    Column("published_by", Text, nullable=False),
    Column("published", DateTime(timezone=True), nullable=False),
    Column("metric_key", BigInteger, Computed(METRIC_KEY, persisted=True), nullable=False),
    PrimaryKeyConstraint("session_id", "metric_key"),
    ForeignKeyConstraint(
        ["metric_key", "metric_id"],
        ["metric_definitions.metric_key", "metric_definitions.metric_id"],
        name="fk_metric_values_definition",
        ondelete="CASCADE",
    ),
    Index("ix_metric_values_end", "metric_key", "session_end_ns", "session_id"),
    Index("ix_metric_values_start", "metric_key", "session_start_ns", "session_id"),
)

# The outbox: a job and its payload are stored in one transaction before any Celery message is sent.
jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Text, primary_key=True),
    Column("org_id", Text, ForeignKey("orgs.org_id", ondelete="CASCADE"), nullable=False),
    Column("lane", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("source", Text, nullable=False),  # "publish" (Roboto route) or "jobs" (native job API)
    Column("principal", Text, nullable=False),
    Column("invocation_id", Text),
    Column("idempotency_key", Text),
    Column("body_digest", Text),
    Column("request_id", Text),
    Column("total", Integer, nullable=False),
    Column("succeeded", Integer, nullable=False, server_default=text("0")),
    Column("failed", Integer, nullable=False, server_default=text("0")),
    Column("chunks_total", Integer, nullable=False),
    Column("chunks_done", Integer, nullable=False, server_default=text("0")),
    Column("error_code", Text),
    Column("error_message", Text),
    _now(),
    Column("started", DateTime(timezone=True)),
    Column("finished", DateTime(timezone=True)),
    Index("ix_jobs_org_created", "org_id", text("created DESC"), text("job_id DESC")),
    Index(
        "uq_jobs_idempotency",
        "org_id",
        "idempotency_key",
        unique=True,
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
    Index("ix_jobs_active", "lane", postgresql_where=text("state IN ('queued', 'running')")),
    Index("ix_jobs_finished", "finished", postgresql_where=text("finished IS NOT NULL")),
)

job_chunks = Table(
    "job_chunks",
    metadata,
    Column("job_id", Text, ForeignKey("jobs.job_id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("lane", Text, nullable=False),
    Column("state", Text, nullable=False),  # queued -> done | failed
    Column("first_request", Integer, nullable=False),  # index of the chunk's first request within the job
    Column("request_count", Integer, nullable=False),
    Column("item_count", Integer, nullable=False),
    # JSON array of PublishMetricsRequest, as accepted; dropped (NULL) once the chunk is done, a failed chunk keeps it
    Column("payload", LargeBinary),
    Column("item_keys", LargeBinary),  # a done chunk's entries as (session, name) only: ingest.payload.encode_keys
    Column("outcomes", JSONB),  # compact: failures and request-level errors only; the rest succeeded
    Column("succeeded", Integer, nullable=False, server_default=text("0")),
    Column("failed", Integer, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("enqueued_at", DateTime(timezone=True)),
    Column("processed_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("job_id", "seq"),
    Index("ix_job_chunks_queued", "enqueued_at", postgresql_where=text("state = 'queued'")),
)

worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", Text, primary_key=True),
    Column("hostname", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("lanes", ARRAY(Text), nullable=False),
    Column("started", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("stopped", Boolean, nullable=False, server_default=text("false")),
)

# Work done by the workers (jobs finished, items processed, job durations), summed over `shard` when read.
telemetry_counters = Table(
    "telemetry_counters",
    metadata,
    Column("series", Text, nullable=False),  # jobs | items | job_duration_bucket | job_duration_sum
    Column("lane", Text, nullable=False),
    Column("label", Text, nullable=False),  # state | outcome | bucket upper bound ("+Inf") | ""
    Column("shard", SmallInteger, nullable=False),
    Column("value", Double, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("series", "lane", "label", "shard"),
)

# Web console sign-ins: the random session id lives only in the browser's cookie; its SHA-256 is stored.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("session_hash", Text, primary_key=True),
    Column("token_id", Text, ForeignKey("api_tokens.token_id", ondelete="CASCADE"), nullable=False),
    Column("org_id", Text, ForeignKey("orgs.org_id", ondelete="CASCADE"), nullable=False),
    Column("principal", Text, nullable=False),
    Column("csrf_secret", Text, nullable=False),
    _now(),
    Column("last_seen", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_console_sessions_token", "token_id"),
    Index("ix_console_sessions_expires", "expires_at"),
)

# Sign-in form attempts per client address and minute (the console's sign-in rate limit).
console_signin_attempts = Table(
    "console_signin_attempts",
    metadata,
    Column("client", Text, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("1")),
    PrimaryKeyConstraint("client", "window_start"),
)

# Rollups (ingest/rollups.py): count, sum, min, max of a metric's values per UTC hour, time kind (0 = session end,
# 1 = session start, per device; 2 / 3 = the same over all devices) and device. Recomputed per (metric, UTC day)
# by the workers' sweep; no primary key (device_id is nullable and the sweep deletes, then inserts).
metric_rollups = Table(
    "metric_rollups",
    metadata,
    Column("metric_id", Text, ForeignKey("metric_definitions.metric_id", ondelete="CASCADE"), nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("hour_ns", BigInteger, nullable=False),
    Column("device_id", Text),
    Column("n", BigInteger, nullable=False),
    Column("total", Double, nullable=False),
    Column("lo", Double, nullable=False),
    Column("hi", Double, nullable=False),
    Index("ix_metric_rollups_cell", "metric_id", "kind", "hour_ns", "device_id"),
)

# (metric, UTC day) pairs whose rollups are stale, appended by the worker's upsert and by triggers on metric_values
# for moved and deleted rows (ingest/rollups.py, migration 0007); no foreign key, so that a cascaded delete of a
# definition never fails on it.
rollup_dirty = Table(
    "rollup_dirty",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("metric_id", Text, nullable=False),
    Column("day", BigInteger, nullable=False),
    Column("marked", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_rollup_dirty_metric_day", "metric_id", "day"),
)
