"""Errors on console pages: a domain error becomes an HTML page with the API's status and message (another org's
job is the same 404 "Job '...' not found" the API answers); a missing session sends the browser to sign in."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from api_shim.console.render import page
from api_shim.console.viewer import SignInRequired
from api_shim.errors import retry_after, status_of
from ingest.errors import DomainError

TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
    503: "Unavailable",
}


def error_page(err: DomainError) -> Response:
    status = status_of(err)
    return page(
        "error.html",
        status=status,
        headers=retry_after(err),
        title=TITLES.get(status, "Error"),
        status_code=status,
        error_code=err.error_code,
        message=err.message,
        viewer=None,
    )


def sign_in_redirect(request: Request) -> Response:
    if request.headers.get("hx-request"):  # a live fragment: htmx sends the whole page to the sign-in form
        return Response(status_code=401, headers={"HX-Redirect": "/console"})
    target = "/console"
    if request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?" + urlencode({"next": here})
    return RedirectResponse(target, status_code=303)


class ConsoleRoute(APIRoute):
    """Every console route answers HTML, errors included (the app's handlers answer the API's JSON envelope)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except DomainError as err:
                return error_page(err)

        return run
