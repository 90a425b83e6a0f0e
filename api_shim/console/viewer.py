"""Who is looking: the console session behind the request's cookie, and the CSRF checks of the console's forms.

The browser holds only a random session id in an HttpOnly, SameSite=Strict cookie; the API token is posted once
at sign-in and never stored in the browser. Each request re-checks the session and its token
(ingest.console_sessions.find_session), inside the transaction the page then reads with.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy.engine import Connection

from api_shim.errors import Forbidden
from ingest.console_sessions import ConsoleSession, find_session
from ingest.db import transaction
from ingest.errors import Unauthorized

SESSION_COOKIE = "mi_console_session"
SIGNIN_COOKIE = "mi_console_signin"  # double-submit CSRF secret of the sign-in form (no session exists yet)
COOKIE_PATH = "/console"


class SignInRequired(Unauthorized):
    """No live console session: pages redirect to the sign-in form."""


@dataclass
class Viewer:
    conn: Connection
    session: ConsoleSession

    @property
    def org_id(self) -> str:
        return self.session.org_id


@contextmanager
def viewing(request: Request) -> Iterator[Viewer]:
    """A transaction acting as the signed-in session, or SignInRequired. A dead session found on the way (expired,
    token revoked) is deleted, and that deletion is committed before the error is raised."""
    with transaction() as conn:
        session = find_session(conn, request.cookies.get(SESSION_COOKIE))
        if session is not None:
            yield Viewer(conn, session)
            return
    raise SignInRequired("Sign in to the console to see this page")


def check_csrf(expected: str | None, sent: str | None) -> None:
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden("The form was not sent from this console page (missing or wrong CSRF token); reload and retry")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Strict, limited to /console; Secure when the request came over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
