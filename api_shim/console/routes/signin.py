"""Sign-in and sign-out. The token is POSTed once (a password field), checked with ingest.auth, and traded for a
server-side session; the redirect that follows keeps it out of the browser's history."""

from __future__ import annotations

import re

import structlog
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from api_shim.console.errors import ConsoleRoute
from api_shim.console.forms import read_form
from api_shim.console.render import page
from api_shim.console.viewer import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    check_csrf,
    clear_cookie,
    new_secret,
    set_cookie,
    viewing,
)
from api_shim.errors import retry_after, status_of
from ingest.auth import authenticate
from ingest.config import get_settings
from ingest.console_sessions import count_signin_attempt, end_session, find_session, start_session
from ingest.db import transaction
from ingest.errors import NotFound, TooManyRequests, Unauthorized

log = structlog.get_logger(__name__)
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

LANDING = "/console/jobs"
_SECRET = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console page of this site, never another site."""
    if value and value.startswith("/console/") and not any(c in value for c in "\\\r\n"):
        return value
    return LANDING


def signin_page(
    request: Request,
    *,
    next_page: str | None,
    status: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    secret = request.cookies.get(SIGNIN_COOKIE) or ""
    if not _SECRET.match(secret):
        secret = new_secret()
    response = page(
        "signin.html", status=status, headers=headers, viewer=None, csrf=secret, error=error, next=safe_next(next_page)
    )
    set_cookie(request, response, SIGNIN_COOKIE, secret, max_age=3600)
    return response


@router.get("/")
def root() -> Response:
    return RedirectResponse("/console", status_code=307)


@router.get("/console")
def signin_form(request: Request, next_page: str | None = Query(default=None, alias="next")) -> Response:
    with transaction() as conn:
        signed_in = find_session(conn, request.cookies.get(SESSION_COOKIE)) is not None
    if signed_in:
        return RedirectResponse(safe_next(next_page), status_code=303)
    return signin_page(request, next_page=next_page)


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    check_csrf(request.cookies.get(SIGNIN_COOKIE), form.get("csrf"))
    client = request.client.host if request.client else "unknown"
    settings = get_settings()

    def run():
        with transaction() as conn:  # counted (and committed) whatever the outcome
            retry_after = count_signin_attempt(conn, client, settings.console_signin_per_minute)
        if retry_after is not None:
            raise TooManyRequests(
                f"Too many sign-in attempts from this address; retry in {retry_after} s "
                "(METRICS_INGEST_CONSOLE_SIGNIN_PER_MINUTE)",
                retry_after_s=retry_after,
            )
        with transaction() as conn:
            principal = authenticate(conn, form.get("token", "").strip() or None)
            org_id = principal.org_for(form.get("org", "").strip() or None)
            return start_session(conn, principal, org_id, settings.console_session_ttl_s)

    try:
        session_id, session = await run_in_threadpool(run)
    except (Unauthorized, NotFound, TooManyRequests) as err:
        log.info("console.signin_refused", error_code=err.error_code, status=status_of(err), client=client)
        return signin_page(
            request, next_page=form.get("next"), status=status_of(err), error=err.message, headers=retry_after(err)
        )
    log.info("console.signed_in", org_id=session.org_id, principal=session.principal, token_id=session.token_id)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, session_id, max_age=int(settings.console_session_ttl_s))
    clear_cookie(request, response, SIGNIN_COOKIE)
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    form = await read_form(request)

    def run():
        with viewing(request) as v:
            check_csrf(v.session.csrf_secret, form.get("csrf"))
            end_session(v.conn, request.cookies[SESSION_COOKIE])
            return v.session

    session = await run_in_threadpool(run)
    log.info("console.signed_out", org_id=session.org_id, principal=session.principal, token_id=session.token_id)
    response = RedirectResponse("/console", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    return response
