"""Security headers on every kind of console response; the console stays out of the API's OpenAPI document."""

from __future__ import annotations

import httpx

from api_shim.console.headers import CONTENT_SECURITY_POLICY


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_every_console_response_carries_the_security_headers(tab, tenant, stack):
    tab.sign_in(tenant.token)
    responses = {
        "page": tab.context.request.get(stack.url + "/console/jobs"),
        "fragment": tab.context.request.get(stack.url + "/console/jobs/table"),
        "script": tab.context.request.get(stack.url + "/console/static/console.js"),
        "vendored script": tab.context.request.get(stack.url + "/console/static/vendor/htmx/htmx.min.js"),
        "error page": tab.context.request.get(stack.url + "/console/no/such/page"),
        "redirect": tab.context.request.get(stack.url + "/", max_redirects=0),
    }
    missing = responses["error page"]
    assert missing.status == 404 and "No page at /console/no/such/page" in missing.text()
    assert responses["redirect"].status == 307 and responses["redirect"].headers["location"] == "/console"
    assert responses["script"].headers["content-type"].startswith("text/javascript")
    for kind, response in responses.items():
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, kind
        assert headers["x-content-type-options"] == "nosniff", kind
        assert headers["referrer-policy"] == "same-origin", kind
        assert headers["x-request-id"], kind  # the API's middleware applies to the console too
    csp = directives(CONTENT_SECURITY_POLICY)
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]  # no 'unsafe-inline', no eval
    assert csp["frame-ancestors"] == ["'none'"] and csp["default-src"] == ["'none'"]
    assert responses["page"].headers["cache-control"] == "no-store"
    # The page itself has no inline script or style for the policy to refuse.
    html = responses["page"].text()
    assert "<script>" not in html and "style=" not in html and "<style" not in html


def test_api_routes_keep_their_json_and_the_console_is_not_in_openapi(stack, tenant):
    with tenant.client() as client:
        unknown = client.get("/v1/nope")
        document = client.get("/openapi.json").json()
    assert unknown.status_code == 404 and unknown.json()["error"]["error_code"] == "RobotoNotFoundException"
    assert "content-security-policy" not in unknown.headers
    assert not [path for path in document["paths"] if path == "/" or path.startswith("/console")]
    assert httpx.get(stack.url + "/console/jobs").status_code == 303  # signed out: sent to sign in


def test_cookies_are_secure_when_the_console_is_reached_over_tls(stack, tenant):
    """Behind a TLS-terminating proxy on this host (uvicorn trusts X-Forwarded-Proto from 127.0.0.1), the
    request's scheme is https and every console cookie is marked Secure; over plain HTTP it is not."""
    tls = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=stack.url) as client:
        plain = client.get("/console")
        assert "secure" not in plain.headers["set-cookie"].lower()
        form = client.get("/console", headers=tls)
        assert "; secure" in form.headers["set-cookie"].lower()
        secret = client.cookies["mi_console_signin"]
    # (a client keeps a Secure cookie for https URLs only: send it by hand to the plain-HTTP test server)
    signed_in = httpx.post(
        stack.url + "/console/sign-in",
        data={"token": tenant.token, "csrf": secret},
        headers={**tls, "Cookie": f"mi_console_signin={secret}"},
    )
    assert signed_in.status_code == 303
    cookies = signed_in.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all("; secure" in c.lower() and "httponly" in c.lower() for c in cookies)
