"""metrics-ingest: the shared domain imported by both the HTTP API (api_shim) and the Celery workers (worker)."""

__version__ = "0.1.0"
