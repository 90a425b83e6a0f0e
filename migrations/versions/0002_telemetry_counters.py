"""Telemetry counters: work done by every worker, kept in PostgreSQL so that any API process can expose it and a
restart loses nothing. Incremented in each chunk's own transaction (ingest/counters.py); spread over a few shards
so that concurrent chunk commits do not queue on one row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE telemetry_counters (
    series text NOT NULL,
    lane text NOT NULL,
    label text NOT NULL,
    shard smallint NOT NULL,
    value double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (series, lane, label, shard)
);
"""

DOWNGRADE = "DROP TABLE telemetry_counters;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
