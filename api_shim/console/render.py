"""Jinja2 templates (autoescape on) and the formatting filters the pages share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api_shim.console.instants import format_instant
from api_shim.wire import iso
from ingest import __version__

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/console/static"


def when(dt: datetime | None) -> str:
    """A stored timestamp in UTC, to the second."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if dt else "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def rate(per_s: float | None) -> str:
    if per_s is None:
        return "—"
    return f"{per_s:,.0f}/s" if per_s >= 10 else f"{per_s:.1f}/s"


def number(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def value_text(value: float) -> str:
    """A stored value as the pages and the CSV export write it (the shortest text that reads back exactly)."""
    return repr(float(value))


def segment(text: str) -> str:
    """`text` quoted for one path segment of a URL."""
    return quote(text, safe="")


def static(path: str) -> str:
    return f"{STATIC_PATH}/{path}?v={__version__}"


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(
    when=when,
    iso=iso,
    duration=duration,
    rate=rate,
    number=number,
    value=value_text,
    instant=format_instant,
    segment=segment,
)
env.globals.update(static=static, version=__version__)


def page(template: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: object) -> HTMLResponse:
    return HTMLResponse(env.get_template(template).render(**context), status_code=status, headers=headers)
