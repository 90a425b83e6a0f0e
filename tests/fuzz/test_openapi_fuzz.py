"""Schemathesis over the service's own OpenAPI document, against the live API with a valid token and org
headers: no 5xx, every error is exactly the Roboto envelope, every response matches the document."""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api_shim.app import create_app
from tests.support.stack import Stack
from tests.support.tenant import Tenant, new_tenant

EXAMPLES_PER_OPERATION = 25


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value) -> bytes:
    """The document describes an NDJSON upload as a string (its lines); send it as is."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else json.dumps(value).encode()


@pytest.fixture(scope="module")
def fuzz_tenant(stack: Stack) -> Tenant:
    tenant = new_tenant(stack.database_url, stack.url)
    tenant.session("ss_fuzz")  # a real session, so some generated publishes get past the 404
    return tenant


# The document the live API serves is built by the same factory (test_live_document_is_this_one proves it);
# it is loaded in-process because the test cases are generated at collection time, before the stack runs.
DOCUMENT = create_app().openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def roboto_envelope(ctx, response, case) -> None:
    """Every error is exactly {"error": {"error_code", "message"}}, with a Roboto code."""
    if response.status_code < 400 or case.path == "/readyz":  # readiness answers its own documented report
        return None
    assert str(response.headers.get("content-type")).find("application/json") >= 0, (
        response.status_code,
        response.text[:200],
        case.as_curl_command(),
    )
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"error_code", "message"}, body
    assert body["error"]["error_code"].startswith("Roboto"), body
    assert "Traceback" not in response.text
    return None


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_matches_its_document(case, stack: Stack, fuzz_tenant: Tenant):
    headers = {"Authorization": f"Bearer {fuzz_tenant.token}", "X-Roboto-Org-Id": fuzz_tenant.org_id}
    if case.headers:
        case.headers.pop("Authorization", None)
        # Broken message framing (an empty Content-Length, say) is refused by the HTTP server itself (h11) with a
        # plain-text 400 before the application runs; that layer is uvicorn's, not the API's.
        for name in list(case.headers):
            if name.lower() in ("content-length", "transfer-encoding", "host"):
                del case.headers[name]
        for name in list(case.headers):
            if name.lower() in ("x-roboto-org-id", "x-roboto-resource-owner-id"):
                case.headers[name] = fuzz_tenant.org_id
    # /readyz answers 503 (documented) while a check fails, e.g. before the first worker heartbeat.
    server_errors = [] if case.path == "/readyz" else [not_a_server_error]
    case.call_and_validate(
        base_url=stack.url,
        headers=headers,
        timeout=60,
        checks=[
            *server_errors,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            roboto_envelope,
        ],
    )


def test_live_document_is_this_one(stack: Stack):
    assert httpx.get(stack.url + "/openapi.json").json() == DOCUMENT


def test_document_has_no_422_and_documents_the_envelope(stack: Stack):
    doc = httpx.get(stack.url + "/openapi.json").json()
    assert "ErrorEnvelope" in doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            if path.startswith("/v1/"):
                assert "400" in op["responses"] and "401" in op["responses"], (method, path)
                ok = [s for s in op["responses"] if s.startswith("2")]
                assert all("content" in op["responses"][s] for s in ok), (method, path)
