"""The API's documentation pages are counted in /metrics under their own route, not as `<unmatched>`."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def requests_by_route(url: str) -> dict[tuple[str, str], float]:
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == "metrics_ingest_http_requests_total":
                key = (s.labels["route"], s.labels["status"])
                counts[key] = counts.get(key, 0.0) + s.value
    return counts


def test_docs_redoc_and_openapi_have_their_route_label(stack):
    pages = ("/docs", "/redoc", "/openapi.json")
    before = requests_by_route(stack.url)
    for page in pages:
        assert httpx.get(stack.url + page, timeout=30).status_code == 200
    httpx.get(stack.url + "/no/such/page", timeout=10)
    after = requests_by_route(stack.url)
    for page in pages:
        assert after.get((page, "200"), 0) == before.get((page, "200"), 0) + 1, page
    assert after[("<unmatched>", "404")] == before.get(("<unmatched>", "404"), 0) + 1  # the unknown page only
