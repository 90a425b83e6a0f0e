"""A job's failures: listed page by page (request index, entry index, session, metric name, code, message), shown
as text whatever the name holds, and downloaded whole as CSV or NDJSON, equal to what the API reports."""

from __future__ import annotations

import csv
import io
import json

from playwright.sync_api import expect

from api_shim.console.exports import csv_text
from tests.console.jobs_data import api_failures, finish

SCRIPT_NAME = "<script>window.pwned=1</script>"
FORMULA_NAME = '=HYPERLINK("http://example.com","x")'


def download(tab, link_id: str) -> bytes:
    with tab.page.expect_download() as started:
        tab.page.click(f"#{link_id}")
    return open(started.value.path(), "rb").read()


def test_failures_are_listed_paged_and_downloaded(tab, tenant):
    sessions = [tenant.session() for _ in range(30)]
    requests = [
        {
            "session_id": s,
            "device_id": None,
            "metrics": [
                {"name": "ok.value", "value": float(i)},
                {"name": SCRIPT_NAME, "value": 1.0},
                {"name": FORMULA_NAME, "value": 2.0},
            ],
        }
        for i, s in enumerate(sessions)
    ]
    requests.append({"session_id": "ss_not_registered", "metrics": [{"name": "ok.value", "value": 1.0}]})
    job_id = finish(tenant, requests)
    expected = api_failures(tenant, job_id)
    assert len(expected) == 61

    tab.sign_in(tenant.token)
    tab.goto(f"/console/jobs/{job_id}")
    expect(tab.page.locator("#job-state")).to_have_text("completed_with_errors")
    expect(tab.page.locator("#count-failed")).to_have_text("61")
    rows = tab.page.locator("#failures tbody tr")
    expect(rows).to_have_count(50)
    shown = [rows.nth(i).locator("td").all_inner_texts() for i in range(50)]
    as_listed = [
        [str(f["request_index"]), str(f["entry_index"]), f["session_id"], f["name"]]
        + [f["error"]["error_code"], f["error"]["message"]]
        for f in expected
    ]
    assert shown == as_listed[:50]
    # A name that is markup shows as text: nothing ran, no element was made of it.
    assert shown[0][3] == SCRIPT_NAME
    assert tab.page.evaluate("window.pwned === undefined")
    assert tab.page.locator("#failures script").count() == 0
    assert tab.weight() < 300_000
    tab.screenshot("job-failures")

    tab.page.click("#failures-next")
    expect(rows).to_have_count(11)
    assert [rows.nth(i).locator("td").all_inner_texts() for i in range(11)] == as_listed[50:]
    assert rows.nth(10).locator("td").nth(5).inner_text() == "Session 'ss_not_registered' not found"
    tab.page.click("text=First failures")
    expect(rows).to_have_count(50)

    ndjson = [json.loads(line) for line in download(tab, "download-ndjson").decode().splitlines()]
    assert ndjson == [  # the same items as the API's results, all of them
        {k: f[k] for k in ("request_index", "entry_index", "session_id", "name")} | f["error"] for f in expected
    ]

    table = list(csv.reader(io.StringIO(download(tab, "download-csv").decode("utf-8"))))
    assert table[0] == ["request_index", "entry_index", "session_id", "name", "error_code", "message"]
    assert table[1:] == [[csv_text(str(value)) for value in item.values()] for item in ndjson]
    # A spreadsheet opening the CSV does not run a name as a formula.
    assert table[1][3] == SCRIPT_NAME and table[2][3] == "'" + FORMULA_NAME
