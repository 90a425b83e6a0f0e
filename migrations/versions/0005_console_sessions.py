"""Web console: sign-in sessions (the session id stored hashed, tied to the API token that signed in) and the
per-address sign-in attempt counters that rate-limit the sign-in form.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE console_sessions (
    session_hash text PRIMARY KEY,
    token_id text NOT NULL REFERENCES api_tokens (token_id) ON DELETE CASCADE,
    org_id text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    principal text NOT NULL,
    csrf_secret text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX ix_console_sessions_token ON console_sessions (token_id);
CREATE INDEX ix_console_sessions_expires ON console_sessions (expires_at);
CREATE TABLE console_signin_attempts (
    client text NOT NULL,
    window_start timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    PRIMARY KEY (client, window_start)
);
"""

DOWNGRADE = """
DROP TABLE console_signin_attempts;
DROP TABLE console_sessions;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
