"""Fewer index bytes per stored value (issue 19): a compact 8-byte metric key leads the time indexes and the
primary key, and the `(org_id, session_id)` index goes.

`metric_key` is `hashtextextended(metric_id, 0)`, a stored generated column on both `metric_definitions` and
`metric_values`, so the writer is unchanged (PostgreSQL fills it). It is unique among definitions (a unique
constraint: two metric ids with one key cannot both exist), so `metric_key = hashtextextended(:metric_id, 0)` selects
exactly one metric's rows and the time indexes answer counts index-only. The foreign key becomes
`(metric_key, metric_id)`: still exact, and its cascade delete finds a metric's rows through the time indexes.

Indexes of metric_values, entry bytes (8-byte tuple header + key, 8-aligned) for 12-character session ids:
  before: pk (metric_id, session_id) 48; end/start (metric_id, time, session_id) 56 each; (org_id, session_id) 32
  after:  pk (session_id, metric_key) 32; end/start (metric_key, time, session_id) 40 each
The primary key on `(session_id, ...)` also serves get-by-session and the copy of a session's new times, which
used `(org_id, session_id)`. Measured figures: docs/reads.md, "Indexes".

Both ways rewrite metric_values (a stored generated column is computed for every row) and rebuild its indexes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KEY = "bigint NOT NULL GENERATED ALWAYS AS (hashtextextended(metric_id, 0)) STORED"

UPGRADE = f"""
ALTER TABLE metric_definitions ADD COLUMN metric_key {KEY};
ALTER TABLE metric_definitions ADD CONSTRAINT uq_metric_definitions_key UNIQUE (metric_key);
ALTER TABLE metric_definitions ADD CONSTRAINT uq_metric_definitions_key_id UNIQUE (metric_key, metric_id);
ALTER TABLE metric_values DROP CONSTRAINT metric_values_metric_id_fkey;
ALTER TABLE metric_values DROP CONSTRAINT metric_values_pkey;
DROP INDEX ix_metric_values_end;
DROP INDEX ix_metric_values_start;
DROP INDEX ix_metric_values_org_session;
ALTER TABLE metric_values ADD COLUMN metric_key {KEY};
ALTER TABLE metric_values ADD CONSTRAINT metric_values_pkey PRIMARY KEY (session_id, metric_key);
CREATE INDEX ix_metric_values_end ON metric_values (metric_key, session_end_ns, session_id);
CREATE INDEX ix_metric_values_start ON metric_values (metric_key, session_start_ns, session_id);
ALTER TABLE metric_values ADD CONSTRAINT fk_metric_values_definition FOREIGN KEY (metric_key, metric_id)
    REFERENCES metric_definitions (metric_key, metric_id) ON DELETE CASCADE;
"""

DOWNGRADE = """
ALTER TABLE metric_values DROP CONSTRAINT fk_metric_values_definition;
ALTER TABLE metric_values DROP CONSTRAINT metric_values_pkey;
DROP INDEX ix_metric_values_end;
DROP INDEX ix_metric_values_start;
ALTER TABLE metric_values DROP COLUMN metric_key;
ALTER TABLE metric_values ADD CONSTRAINT metric_values_pkey PRIMARY KEY (metric_id, session_id);
CREATE INDEX ix_metric_values_end ON metric_values (metric_id, session_end_ns, session_id);
CREATE INDEX ix_metric_values_start ON metric_values (metric_id, session_start_ns, session_id);
CREATE INDEX ix_metric_values_org_session ON metric_values (org_id, session_id);
ALTER TABLE metric_values ADD CONSTRAINT metric_values_metric_id_fkey FOREIGN KEY (metric_id)
    REFERENCES metric_definitions (metric_id) ON DELETE CASCADE;
ALTER TABLE metric_definitions DROP COLUMN metric_key;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
