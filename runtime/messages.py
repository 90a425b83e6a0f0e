"""How the command talks to people: messages are never wrapped at the terminal's width (a sentence cut in two at
column 80 reads as two messages, and breaks `grep`), and errors are one line naming what is wrong."""

from __future__ import annotations

import sys

from rich.console import Console

from ingest.config import ConfigError
from ingest.errors import DomainError

PROG = "metrics-ingest"


def message_console(*, stderr: bool = True) -> Console:
    """A console for lines of text: no wrapping, no markup read into the text, no colouring of numbers."""
    return Console(stderr=stderr, soft_wrap=True, markup=False, highlight=False)


def first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def describe(err: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an error the user can act on; None for a bug."""
    if isinstance(err, ConfigError):
        return str(err), 2
    format_message, exit_code = getattr(err, "format_message", None), getattr(err, "exit_code", None)
    if callable(format_message) and isinstance(exit_code, int):
        # a usage error of the command line (typer's own copy of click): exit code 2, else 1
        ctx = getattr(err, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and exit_code == 2 else ""
        return first_line(format_message()) + hint, exit_code
    if isinstance(err, DomainError):
        return err.message, 1
    from sqlalchemy.exc import DBAPIError, IntegrityError  # here: most commands never load SQLAlchemy

    from ingest.db import is_transient

    if isinstance(err, IntegrityError):  # a constraint the domain did not check first: name it, briefly
        diag = getattr(err.orig, "diag", None)
        detail = getattr(diag, "message_detail", None) or getattr(diag, "message_primary", None)
        return f"refused by the database: {first_line(detail or err.orig)}", 1
    if is_transient(err) or isinstance(err, ConnectionError):
        cause = err.orig if isinstance(err, DBAPIError) else err
        return f"cannot reach the database (METRICS_INGEST_DATABASE_URL): {first_line(cause)}", 1
    return None


def fail(err: BaseException) -> None:
    """Print the error as one line on stderr and exit; a bug (not described) still gets one line, and its traceback
    only with METRICS_INGEST_LOG_LEVEL=DEBUG."""
    import os

    described = describe(err)
    if described is None:
        if os.environ.get("METRICS_INGEST_LOG_LEVEL", "").upper() == "DEBUG":
            raise err
        described = (f"unexpected error: {type(err).__name__}: {first_line(err)}", 1)
    message, code = described
    print(f"{PROG}: {message}", file=sys.stderr)  # print, not rich: one line, never wrapped
    sys.exit(code)
