"""Initial schema: orgs, tokens, devices, sessions, invocations, metric definitions and values, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE orgs (
    org_id text PRIMARY KEY,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE api_tokens (
    token_id text PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    principal text NOT NULL,
    org_ids text[] NOT NULL,
    invocation_id text,
    created timestamptz NOT NULL DEFAULT now(),
    last_used timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE TABLE devices (
    org_id text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    device_id text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, device_id)
);
CREATE TABLE sessions (
    org_id text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    session_id text NOT NULL,
    start_ns bigint NOT NULL,
    end_ns bigint NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    modified timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, session_id)
);
CREATE TABLE session_devices (
    org_id text NOT NULL,
    session_id text NOT NULL,
    device_id text NOT NULL,
    PRIMARY KEY (org_id, session_id, device_id),
    FOREIGN KEY (org_id, session_id) REFERENCES sessions (org_id, session_id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, device_id) ON DELETE CASCADE
);
CREATE TABLE invocations (
    invocation_id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE metric_definitions (
    metric_id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    unit text,
    created_by text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    modified_by text NOT NULL,
    modified timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_metric_definitions_org_name UNIQUE (org_id, name)
);
CREATE TABLE metric_values (
    metric_id text NOT NULL REFERENCES metric_definitions (metric_id) ON DELETE CASCADE,
    session_id text NOT NULL,
    org_id text NOT NULL,
    value double precision NOT NULL,
    device_id text,
    invocation_id text,
    session_start_ns bigint NOT NULL,
    session_end_ns bigint NOT NULL,
    published_by text NOT NULL,
    published timestamptz NOT NULL,
    PRIMARY KEY (metric_id, session_id)
);
CREATE INDEX ix_metric_values_end ON metric_values (metric_id, session_end_ns, session_id);
CREATE INDEX ix_metric_values_start ON metric_values (metric_id, session_start_ns, session_id);
CREATE INDEX ix_metric_values_org_session ON metric_values (org_id, session_id);
CREATE TABLE jobs (
    job_id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    lane text NOT NULL,
    state text NOT NULL,
    source text NOT NULL,
    principal text NOT NULL,
    invocation_id text,
    idempotency_key text,
    body_digest text,
    request_id text,
    total integer NOT NULL,
    succeeded integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    chunks_total integer NOT NULL,
    chunks_done integer NOT NULL DEFAULT 0,
    error_code text,
    error_message text,
    created timestamptz NOT NULL DEFAULT now(),
    started timestamptz,
    finished timestamptz
);
CREATE INDEX ix_jobs_org_created ON jobs (org_id, created DESC, job_id DESC);
CREATE UNIQUE INDEX uq_jobs_idempotency ON jobs (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX ix_jobs_active ON jobs (lane) WHERE state IN ('queued', 'running');
CREATE INDEX ix_jobs_finished ON jobs (finished) WHERE finished IS NOT NULL;
CREATE TABLE job_chunks (
    job_id text NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    lane text NOT NULL,
    state text NOT NULL,
    first_request integer NOT NULL,
    request_count integer NOT NULL,
    item_count integer NOT NULL,
    payload bytea NOT NULL,
    outcomes jsonb,
    succeeded integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz,
    processed_at timestamptz,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX ix_job_chunks_queued ON job_chunks (enqueued_at) WHERE state = 'queued';
CREATE TABLE worker_heartbeats (
    worker_id text PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    lanes text[] NOT NULL,
    started timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    stopped boolean NOT NULL DEFAULT false
);
"""

DOWNGRADE = """
DROP TABLE worker_heartbeats, job_chunks, jobs, metric_values, metric_definitions, invocations,
    session_devices, sessions, devices, api_tokens, orgs;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
