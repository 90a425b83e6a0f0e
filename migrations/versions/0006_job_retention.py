"""Job retention: a chunk's request payload is dropped once the chunk is done, keeping only the keys of its items
(session and metric name per entry, compact) so that a job's results still list them; finished jobs are purged
after `METRICS_INGEST_JOB_RETENTION` (ingest/retention.py) through the existing `ix_jobs_finished` index.

Both changes are catalog-only (no table rewrite): a nullable column without default, and DROP NOT NULL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE job_chunks ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE job_chunks ADD COLUMN item_keys bytea;
"""

# Back to a payload on every chunk: a done chunk's item keys are written out in the payload's form, each value null
# (the worker never reads a done chunk's payload; the results read only sessions and names).
DOWNGRADE = """
UPDATE job_chunks SET payload = convert_to((
    SELECT COALESCE(jsonb_agg(jsonb_build_object('s', r->>0, 'm', COALESCE((
        SELECT jsonb_agg(jsonb_build_array(n, NULL) ORDER BY i)
        FROM jsonb_array_elements(k->'l'->((r->>1)::int)) WITH ORDINALITY AS e(n, i)), '[]'::jsonb)) ORDER BY o),
        '[]'::jsonb)::text
    FROM (SELECT convert_from(item_keys, 'UTF8')::jsonb AS k) AS keys,
        jsonb_array_elements(k->'r') WITH ORDINALITY AS x(r, o)), 'UTF8')
WHERE payload IS NULL AND item_keys IS NOT NULL;
UPDATE job_chunks SET payload = convert_to('[]', 'UTF8') WHERE payload IS NULL;
ALTER TABLE job_chunks DROP COLUMN item_keys;
ALTER TABLE job_chunks ALTER COLUMN payload SET NOT NULL;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
