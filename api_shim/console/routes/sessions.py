"""A session: its times, devices and metrics, with a chart of the metric values."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api_shim.console.errors import ConsoleRoute
from api_shim.console.render import page
from api_shim.console.viewer import viewing
from ingest import catalog, values

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

MAX_METRICS = 500  # a session has one row per metric; a page lists at most this many


@router.get("/console/sessions/{session_id}")
def session_page(request: Request, session_id: str) -> Response:
    with viewing(request) as v:
        session = catalog.get_session(v.conn, v.org_id, session_id)
        records = values.records_for_session(v.conn, v.org_id, session_id, MAX_METRICS + 1)
    shown = records[:MAX_METRICS]
    chart = {
        "kind": "bars",
        "label": "value",
        "labels": [r["name"] for r in shown],
        "x": list(range(len(shown))),
        "y": [r["value"] for r in shown],
    }
    return page(
        "session.html",
        viewer=v.session,
        session=session,
        records=shown,
        more=len(records) > MAX_METRICS,
        chart=chart,
    )
