"""Alembic migrations (schema only). Run with `metrics-ingest migrate`."""
