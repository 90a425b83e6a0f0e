"""Another org's job, session and metric: 404 with the API's own message, on pages, live fragments and downloads
alike; nothing of theirs is listed."""

from __future__ import annotations

from urllib.parse import quote

from playwright.sync_api import expect

from tests.console.jobs_data import finish
from tests.support.metric_rows import Row, define, insert


def test_another_orgs_things_are_not_found_exactly_as_the_api_says(tab, tenant, other_tenant):
    theirs = other_tenant.session()
    their_job = finish(
        other_tenant, [{"session_id": theirs, "device_id": None, "metrics": [{"name": "their.metric", "value": 1.0}]}]
    )
    mine = finish(tenant, [{"session_id": tenant.session(), "device_id": None, "metrics": []}])
    insert(other_tenant, define(other_tenant, "their.only"), [Row(theirs, 2.0, 0, 1)])

    with tenant.client() as api:
        api_answers = {
            f"/console/jobs/{their_job}": api.get(f"/v1/metrics/jobs/{their_job}"),
            f"/console/sessions/{theirs}": api.get(f"/v1/sessions/{theirs}"),
            "/console/metrics?name=their.only": api.post("/v1/metrics/query", json={"name": "their.only"}),
        }
    tab.sign_in(tenant.token)
    for path, api_answer in api_answers.items():
        assert api_answer.status_code == 404
        tab.expect_status(404)
        answer = tab.goto(path)
        assert answer.status == 404, path
        expect(tab.page.locator("main")).to_contain_text(api_answer.json()["error"]["message"])
    tab.screenshot("not-found")

    for path in ("/live", "/failures.csv", "/failures.ndjson"):
        answer = tab.context.request.get(tab.base_url + f"/console/jobs/{their_job}{path}")
        assert answer.status == 404 and f"Job &#39;{their_job}&#39; not found" in answer.text()

    tab.goto("/console/jobs")
    expect(tab.page.locator(f"tr[data-job='{mine}']")).to_be_visible()
    assert tab.page.locator(f"tr[data-job='{their_job}']").count() == 0
    tab.goto("/console/metrics")
    assert "their.only" not in tab.page.locator("main").inner_text()
    assert "their.metric" not in tab.page.content()


def test_markup_in_a_requested_name_is_shown_as_text(tab, tenant):
    name = '<img src=x onerror="window.pwned=1">'
    tab.sign_in(tenant.token)
    tab.expect_status(404)
    tab.goto("/console/metrics?name=" + quote(name))
    expect(tab.page.locator("#metric-error")).to_have_text(f"RobotoNotFoundException Metric '{name}' not found")
    assert tab.page.locator("main img").count() == 0
    assert tab.page.evaluate("window.pwned === undefined")
