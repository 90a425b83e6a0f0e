"""The runtime: everything that starts, supervises and drives the service from the outside (the `metrics-ingest`
command, the `up` supervisor, embedded PostgreSQL and Redis, the status screen, the backfill client). It sits above
the domain (`ingest`) and the edges (`api_shim`, `worker`) and is imported by none of them."""
