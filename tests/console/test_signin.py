"""Sign-in and sign-out: the token is posted once and never kept by the browser; the server keeps a hashed session
that dies with sign-out or with its token; forms carry CSRF tokens; sign-in attempts are rate limited."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx

from api_shim.console.viewer import SESSION_COOKIE, SIGNIN_COOKIE
from ingest.auth import hash_token, revoke_token
from ingest.db import transaction
from tests.support.tenant import new_tenant


def token_id_of(tenant, secret: str) -> str:
    return tenant.sql("SELECT token_id FROM api_tokens WHERE token_hash = %s", hash_token(secret))[0][0]


def session_rows(tenant, secret: str) -> list[tuple]:
    return tenant.sql(
        "SELECT session_hash, org_id, principal FROM console_sessions WHERE token_id = %s", token_id_of(tenant, secret)
    )


def test_sign_in_and_out_keep_the_token_out_of_the_browser(tab, tenant, stack):
    seen_urls: list[str] = []
    tab.page.on("request", lambda request: seen_urls.append(request.url))
    tab.goto("/")
    assert tab.page.url == stack.url + "/console"  # `/` redirects to the console
    assert tab.page.locator("input[name=token]").get_attribute("type") == "password"
    tab.screenshot("signin")

    tab.sign_in(tenant.token)
    header = tab.page.locator("header.top").inner_text()
    assert tenant.principal in header and tenant.org_id in header

    cookies = tab.context.cookies()
    session = next(c for c in cookies if c["name"] == SESSION_COOKIE)
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/console"
    assert not session["secure"]  # plain HTTP here; Secure is set when the request came over TLS
    assert [c["name"] for c in cookies] == [SESSION_COOKIE]  # the sign-in form's CSRF cookie is gone
    assert all(tenant.token not in c["value"] for c in cookies)
    assert all(tenant.token not in url for url in seen_urls)
    local, session_storage, readable_cookies = json.loads(tab.storage())
    assert tenant.token not in tab.storage()
    assert local == [] and readable_cookies == ""  # nothing in localStorage; the HttpOnly cookie is unreadable
    assert [key for key, _ in session_storage] == ["htmx-current-path-for-history"]  # htmx's note of the URL
    assert tenant.token not in tab.page.content()
    # The server keeps the session id's SHA-256, never the id itself.
    assert session_rows(tenant, tenant.token) == [(hash_token(session["value"]), tenant.org_id, tenant.principal)]

    tab.page.click("header.top button:has-text('Sign out')")
    tab.page.wait_for_url(re.compile(r".*/console$"))
    assert tab.page.locator("input[name=token]").is_visible()
    assert session_rows(tenant, tenant.token) == []
    assert SESSION_COOKIE not in [c["name"] for c in tab.context.cookies()]
    # The old cookie opens nothing any more: pages send the browser to sign in.
    replay = httpx.get(stack.url + "/console/jobs", cookies={SESSION_COOKIE: session["value"]})
    assert replay.status_code == 303 and replay.headers["location"] == "/console?next=%2Fconsole%2Fjobs"


def test_a_wrong_token_is_refused_on_the_form(tab, tenant):
    tab.goto("/console")
    tab.page.fill("input[name=token]", tenant.token + "x")
    tab.expect_status(401)
    with tab.page.expect_response(lambda r: r.url.endswith("/console/sign-in")) as answer:
        tab.page.click("form[action='/console/sign-in'] button[type=submit]")
    assert answer.value.status == 401
    assert tab.page.locator(".error").inner_text() == "Invalid, expired or revoked token"
    assert tab.page.locator("input[name=token]").input_value() == ""  # the typed token is not sent back
    assert SESSION_COOKIE not in [c["name"] for c in tab.context.cookies()]


def test_an_org_the_token_may_not_act_for_is_refused(tab, tenant, other_tenant):
    tab.goto("/console")
    tab.page.fill("input[name=token]", tenant.token)
    tab.page.fill("input[name=org]", other_tenant.org_id)
    tab.expect_status(404)
    tab.page.click("form[action='/console/sign-in'] button[type=submit]")
    assert tab.page.locator(".error").inner_text() == f"Organization '{other_tenant.org_id}' not found"
    assert session_rows(tenant, tenant.token) == []


def test_a_token_for_two_orgs_signs_in_to_the_one_named(tab, tenant, other_tenant):
    both = other_tenant.token_for("both@example.com", orgs=(tenant.org_id,))  # first org: other_tenant's
    tab.sign_in(both, org=tenant.org_id)
    assert tenant.org_id in tab.page.locator("header.top .org").inner_text()


def test_revoking_the_token_ends_its_console_sessions(tab, tenant):
    secret = tenant.token_for("revoked-later@example.com")
    tab.sign_in(secret)
    assert len(session_rows(tenant, secret)) == 1
    with transaction() as conn:
        revoke_token(conn, token_id_of(tenant, secret))
    tab.goto("/console/jobs")
    assert tab.page.url.endswith("/console?next=%2Fconsole%2Fjobs")  # back to the sign-in form
    assert session_rows(tenant, secret) == []  # the dead session was deleted when it was found


def test_sign_in_returns_to_the_deep_link_that_asked_for_it(tab, tenant):
    deep_link = "/console/metrics?name=cpu.usage_max&start=2026-05-01T00:00:00Z"
    tab.goto(deep_link)
    assert tab.page.url == tab.base_url + "/console?" + urlencode({"next": deep_link})
    tab.expect_status(404)  # this org has no such metric (yet)
    tab.sign_in(tenant.token, then=deep_link, open_form=False)
    assert tab.page.locator("#metric-error").inner_text() == "RobotoNotFoundException Metric 'cpu.usage_max' not found"


def test_forms_without_their_csrf_token_are_refused(tab, tenant, stack):
    with httpx.Client(base_url=stack.url) as client:
        form = client.get("/console")
        secret = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
        assert client.cookies[SIGNIN_COOKIE] == secret
        for data in ({"token": tenant.token}, {"token": tenant.token, "csrf": "forged-" + secret}):
            refused = client.post("/console/sign-in", data=data)
            assert refused.status_code == 403 and "CSRF" in refused.text
        # The same form with its token and the cookie that came with it is accepted.
        accepted = client.post("/console/sign-in", data={"token": tenant.token, "csrf": secret})
        assert accepted.status_code == 303 and accepted.headers["location"] == "/console/jobs"
        assert len(session_rows(tenant, tenant.token)) == 1

        # Sign-out is a POST that needs the session's own CSRF token.
        jobs_page = client.get("/console/jobs")
        assert jobs_page.status_code == 200
        session_csrf = re.search(r'name="csrf" value="([^"]+)"', jobs_page.text)[1]
        assert client.post("/console/sign-out", data={"csrf": ""}).status_code == 403
        assert client.post("/console/sign-out", data={"csrf": secret}).status_code == 403
        assert len(session_rows(tenant, tenant.token)) == 1 and client.get("/console/jobs").status_code == 200
        signed_out = client.post("/console/sign-out", data={"csrf": session_csrf})
        assert signed_out.status_code == 303 and session_rows(tenant, tenant.token) == []


def test_sign_in_attempts_are_rate_limited_per_address(make_stack):
    running = make_stack(CONSOLE_SIGNIN_PER_MINUTE=3)
    tenant = new_tenant(running.database_url, running.url)
    if datetime.now(UTC).second >= 55:  # the limit counts per calendar minute: keep the burst inside one
        time.sleep(61 - datetime.now(UTC).second)
    with httpx.Client(base_url=running.url) as client:
        secret = re.search(r'name="csrf" value="([^"]+)"', client.get("/console").text)[1]
        wrong = [client.post("/console/sign-in", data={"token": "mi_wrong", "csrf": secret}) for _ in range(3)]
        assert [r.status_code for r in wrong] == [401, 401, 401]
        limited = client.post("/console/sign-in", data={"token": tenant.token, "csrf": secret})
    assert limited.status_code == 429  # even the right token, until the minute is over
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Too many sign-in attempts" in limited.text
    assert tenant.sql("SELECT count(*) FROM console_sessions")[0][0] == 0


def test_an_open_live_page_goes_to_sign_in_when_its_token_is_revoked(tab, tenant):
    secret = tenant.token_for("revoked-while-watching@example.com")
    tab.sign_in(secret)
    with transaction() as conn:
        revoke_token(conn, token_id_of(tenant, secret))
    tab.expect_status(401)  # the next poll of the jobs list is refused, and htmx follows its HX-Redirect
    tab.page.wait_for_url(re.compile(r".*/console$"), timeout=20_000)
    assert tab.page.locator("input[name=token]").is_visible()
