"""The Alembic migrations and ingest/schema.py describe the same database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from ingest.config import to_sqlalchemy_url
from ingest.db import schema_current, schema_head
from ingest.schema import metadata


def test_migrations_match_schema_module(servers):
    url = servers.new_database()
    engine = create_engine(to_sqlalchemy_url(url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert schema_current(conn) == schema_head()
    engine.dispose()
    assert diff == []
