"""The progress displays render every state a run passes through (nothing known yet, reading, done)."""

from __future__ import annotations

import json
import time
from io import StringIO

import structlog
from rich.console import Console

from runtime.backfill.progress import LogProgress, RichProgress, Stats


def test_rich_bar_renders_from_empty_to_done():
    stats = Stats(bytes_total=1000)
    out = StringIO()
    with RichProgress(stats, Console(file=out, force_terminal=True, width=200)) as bar:
        bar.refresh()
        stats.read, stats.bytes_read, stats.sent, stats.succeeded, stats.failed = 500, 250, 400, 300, 2
        bar.refresh()
        stats.reading_done = True
        stats.read, stats.sent, stats.succeeded = 2000, 2000, 1998
        bar.refresh()
    text = out.getvalue()
    assert "2,000/2,000 processed" in text
    assert "ok 1,998" in text and "failed 2" in text


def test_estimated_total_scales_with_bytes_read():
    stats = Stats(read=90, line_errors=10, bytes_read=250, bytes_total=1000)
    assert stats.estimated_total() == 400
    stats.reading_done = True
    assert stats.estimated_total() == 100


def test_log_lines_carry_rate_and_eta(capsys):
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    try:
        stats = Stats(read=1000, sent=1000, succeeded=400, bytes_read=500, bytes_total=1000)
        progress = LogProgress(stats, every_s=0)
        progress.started = time.monotonic() - 10  # 400 processed in 10 s
        with progress:
            pass
    finally:
        structlog.reset_defaults()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["event"] == "backfill.progress"
    assert line["processed"] == 400 and line["total_estimate"] == 2000
    assert abs(line["items_per_s"] - 40) < 1
    assert abs(line["eta_s"] - 40) < 2  # 1,600 left at 40/s
