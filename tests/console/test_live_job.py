"""Live updates: on pages left open, a new job appears in the list, and a job moves from queued through running
to completed_with_errors, with its progress bar, counts and failures, without a page reload."""

from __future__ import annotations

import re

import psycopg
from playwright.sync_api import expect

from ingest.config import to_libpq_url
from tests.console.jobs_data import submit
from tests.support.metric_rows import Row, define, insert
from tests.support.tenant import new_tenant

LIVE = 20_000  # ms: a few polls (every 2 s)


def mark_page(tab) -> None:
    """A value that only lives as long as the page: a reload (or any navigation) would wipe it."""
    tab.page.evaluate("window.__notReloaded = true")


def not_reloaded(tab) -> bool:
    return tab.page.evaluate("window.__notReloaded === true")


def test_a_job_goes_from_queued_to_completed_with_errors_on_open_pages(make_stack, open_tab):
    running = make_stack(CHUNK_ITEMS=10)  # no worker yet: the job waits, queued, until the test starts one
    tenant = new_tenant(running.database_url, running.url)
    s0, s1, s2 = tenant.session(), tenant.session(), tenant.session()
    # The job's third chunk writes a row the test holds locked: the job shows `running` until the test lets go.
    held = define(tenant, "held.metric")
    insert(tenant, held, [Row(s2, 0.0, 1_714_521_600_000_000_000, 1_714_525_200_000_000_000)])
    requests = [
        {"session_id": s0, "device_id": None, "metrics": [{"name": f"a.m{i}", "value": float(i)} for i in range(10)]},
        {
            "session_id": s1,
            "device_id": None,
            "metrics": [{"name": f"b.m{i}", "value": float(i)} for i in range(8)]
            + [{"name": "bad name", "value": 1.0}, {"name": "b.null", "value": None}],
        },
        {
            "session_id": s2,
            "device_id": None,
            "metrics": [{"name": f"c.m{i}", "value": float(i)} for i in range(9)]
            + [{"name": "held.metric", "value": 7.0}],
        },
    ]

    listing = open_tab(running.url)
    listing.sign_in(tenant.token)
    expect(listing.page.locator("#jobs .empty")).to_be_visible()
    assert listing.page.locator("#jobs").get_attribute("hx-trigger") == "every 2s"
    mark_page(listing)

    job_id = submit(tenant, requests)
    row = listing.page.locator(f"tr[data-job='{job_id}']")
    expect(row).to_be_visible(timeout=LIVE)  # the new job appears without a reload
    expect(row.locator(".state")).to_have_text("queued")

    detail = open_tab(running.url)
    detail.sign_in(tenant.token)
    detail.goto(f"/console/jobs/{job_id}")
    live = detail.page.locator("#job-live")
    expect(live).to_have_attribute("data-state", "queued")
    expect(detail.page.locator("#job-progress")).to_have_attribute("value", "0")
    mark_page(detail)

    with psycopg.connect(to_libpq_url(running.database_url)) as holder:
        holder.execute("SELECT 1 FROM metric_values WHERE metric_id = %s FOR UPDATE", (held,))
        running.start_worker(concurrency=2)
        expect(live).to_have_attribute("data-state", "running", timeout=LIVE)
        expect(detail.page.locator("#job-progress")).to_have_attribute("value", "20", timeout=LIVE)
        expect(detail.page.locator("#count-failed")).to_have_text("2")
        expect(detail.page.locator("#count-pending")).to_have_text("10")
        expect(detail.page.locator("#failures tbody tr")).to_have_count(2)  # failures show while it runs
        expect(row.locator(".state")).to_have_text("running", timeout=LIVE)
        detail.screenshot("job-running")
        holder.rollback()  # let the third chunk through

    expect(live).to_have_attribute("data-state", "completed_with_errors", timeout=LIVE)
    expect(detail.page.locator("#job-state")).to_have_text("completed_with_errors")
    expect(detail.page.locator("#job-progress")).to_have_attribute("value", "30")
    expect(detail.page.locator("#job-percent")).to_have_text("100%")
    expect(detail.page.locator("#count-succeeded")).to_have_text("28")
    expect(live).not_to_have_attribute("hx-trigger", re.compile(".*"))  # a finished job is no longer polled
    failures = detail.page.locator("#failures tbody tr")
    expect(failures).to_have_count(2)
    assert [failures.nth(i).locator("td").all_inner_texts()[:4] for i in range(2)] == [
        ["1", "8", s1, "bad name"],
        ["1", "9", s1, "b.null"],
    ]
    expect(row.locator(".state")).to_have_text("completed_with_errors", timeout=LIVE)
    expect(row.locator("td").nth(5)).to_have_text("2")
    assert not_reloaded(listing) and not_reloaded(detail)
    listing.screenshot("jobs")
    detail.screenshot("job")
