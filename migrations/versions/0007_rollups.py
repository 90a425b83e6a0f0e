"""Rollups for aggregates (issue 19): count, sum, min and max of a metric's values per UTC hour, session time kind
(0 = end time, 1 = start time, per device; 2 and 3 = the same over all devices, device_id NULL) and device, in
`metric_rollups`, recomputed in the background (ingest/rollups.py).

The write path only marks what it touched, in `rollup_dirty` (metric, UTC day): the worker's upsert appends the days of
the rows it writes itself (ingest.rollups.mark_written: one small INSERT per chunk, no trigger on the hot path);
a row-level trigger marks the old and new days of a row whose session times change, and a statement-level trigger
the days of deleted rows (cascades of definitions and orgs). Append-only, no ON CONFLICT and no foreign key:
concurrent writers never wait on each other, and a cascaded delete never fails on it. Readers use the cells of clean
days and raw rows for the rest.

The upgrade marks every stored (metric, day) dirty, so an upgraded database answers exactly at once (from raw rows)
and the workers' sweep fills the rollups in the background.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE metric_rollups (
    metric_id text NOT NULL REFERENCES metric_definitions (metric_id) ON DELETE CASCADE,
    kind smallint NOT NULL,
    hour_ns bigint NOT NULL,
    device_id text,
    n bigint NOT NULL,
    total double precision NOT NULL,
    lo double precision NOT NULL,
    hi double precision NOT NULL
);
CREATE INDEX ix_metric_rollups_cell ON metric_rollups (metric_id, kind, hour_ns, device_id);
CREATE TABLE rollup_dirty (
    id bigserial PRIMARY KEY,
    metric_id text NOT NULL,
    day bigint NOT NULL,
    marked timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_rollup_dirty_metric_day ON rollup_dirty (metric_id, day);

-- The UTC day number of a time in ns (floor division, also for times before 1970).
CREATE FUNCTION rollup_day(ns bigint) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ns / 86400000000000 - CASE WHEN ns % 86400000000000 < 0 THEN 1 ELSE 0 END $$;

CREATE FUNCTION rollup_mark_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric_id, day)
    SELECT DISTINCT r.metric_id, d.day FROM rollup_old r
    CROSS JOIN LATERAL (VALUES (rollup_day(r.session_end_ns)), (rollup_day(r.session_start_ns))) AS d (day);
    RETURN NULL;
END $$;

-- A row whose session times changed (a session moved, or a chunk that read the session before it moved): its old
-- and new days. Value and device changes keep the days, which the writer marks itself (ingest.rollups.mark_written).
CREATE FUNCTION rollup_mark_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric_id, day)
    SELECT DISTINCT NEW.metric_id, d.day FROM (VALUES (rollup_day(OLD.session_end_ns)),
        (rollup_day(OLD.session_start_ns)), (rollup_day(NEW.session_end_ns)), (rollup_day(NEW.session_start_ns)))
        AS d (day);
    RETURN NULL;
END $$;

CREATE TRIGGER rollup_mark_move AFTER UPDATE OF session_start_ns, session_end_ns ON metric_values
    FOR EACH ROW WHEN (OLD.session_start_ns IS DISTINCT FROM NEW.session_start_ns
                       OR OLD.session_end_ns IS DISTINCT FROM NEW.session_end_ns)
    EXECUTE FUNCTION rollup_mark_moved();
CREATE TRIGGER rollup_mark_delete AFTER DELETE ON metric_values REFERENCING OLD TABLE AS rollup_old
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_deleted();

INSERT INTO rollup_dirty (metric_id, day)
SELECT DISTINCT v.metric_id, d.day FROM metric_values v
CROSS JOIN LATERAL (VALUES (rollup_day(v.session_end_ns)), (rollup_day(v.session_start_ns))) AS d (day);
"""

DOWNGRADE = """
DROP TRIGGER rollup_mark_move ON metric_values;
DROP TRIGGER rollup_mark_delete ON metric_values;
DROP FUNCTION rollup_mark_moved();
DROP FUNCTION rollup_mark_deleted();
DROP FUNCTION rollup_day(bigint);
DROP TABLE rollup_dirty;
DROP TABLE metric_rollups;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
