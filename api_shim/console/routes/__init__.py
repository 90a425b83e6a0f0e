"""The console's routes, one module per page family."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api_shim.console.errors import ConsoleRoute
from api_shim.console.routes import jobs, metrics, sessions, signin
from ingest.errors import NotFound

router = APIRouter(include_in_schema=False)
router.include_router(signin.router)
router.include_router(jobs.router)
router.include_router(sessions.router)
router.include_router(metrics.router)

fallback = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@fallback.get("/console/{rest:path}")
def not_a_page(request: Request, rest: str) -> Response:
    """Any other /console URL: an HTML 404 (the API's unmatched routes answer the JSON envelope)."""
    if rest == "":
        return RedirectResponse("/console", status_code=307)
    raise NotFound(f"No page at {request.url.path}")


router.include_router(fallback)
