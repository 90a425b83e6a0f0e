"""`metrics-ingest backfill`: stream CSV/NDJSON files into the job API in resumable, idempotent chunks.

readers (file -> rows or per-line errors) -> chunks (rows -> grouped request bodies with deterministic keys)
-> client (HTTP with retries) -> runner (submit, follow, collect failures) -> progress / failures (output).
"""
