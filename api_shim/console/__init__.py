"""The web console: server-rendered pages at /console (jobs with live progress, failures, sessions, metric
charts) for people who run backfills and want to see what happened without writing code.

An HTTP edge beside api_shim: it reads through the same domain functions (ingest.*), never over HTTP to itself,
and never imports api_shim, worker or runtime."""

from api_shim.console.mount import install

__all__ = ["install"]
