"""Mount the console on the API's FastAPI app: its pages, its static files, and its security headers. The API's
middleware (request ids, HTTP metrics, one log line per request, body limits) applies to the console as is."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api_shim.console.headers import SecurityHeaders
from api_shim.console.render import STATIC, STATIC_PATH
from api_shim.console.routes import router


def install(app: FastAPI) -> None:
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="console-static")  # before the /console catch-all
    app.include_router(router)
    app.add_middleware(SecurityHeaders)
