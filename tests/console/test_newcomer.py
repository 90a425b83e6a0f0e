"""The issue's acceptance flow: signed in to the console, a newcomer starts `metrics-ingest backfill` and watches
its jobs appear, progress and finish on the jobs page, then opens one and finds its failures (no page reload)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support import cli
from tests.support.cli import client_env
from tests.support.polling import wait_until


def test_a_backfill_is_watched_to_the_end_in_the_console(tab, tenant, tmp_path):
    sessions = [tenant.session() for _ in range(40)]
    lines = ["session_id,name,value"] + [
        f"{s},bf.m{j:03d},{i + j / 10}" for i, s in enumerate(sessions) for j in range(100)
    ]
    lines += [f"{sessions[0]},not a name {k},1.0" for k in range(3)]
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n")

    tab.sign_in(tenant.token)
    tab.page.evaluate("window.__notReloaded = true")
    backfill = cli.start_cli("backfill", str(path), "--chunk-items", "1000", env=client_env(tenant), cwd=tmp_path)
    assert backfill.wait(240) == 1  # 1: some values failed (and went to the failures file)

    rows = tab.page.locator("#jobs tbody tr[data-job]")
    jobs = tenant.sql("SELECT job_id FROM jobs WHERE org_id = %s", tenant.org_id)
    assert len(jobs) >= 4
    expect(rows).to_have_count(len(jobs), timeout=20_000)

    def all_final() -> bool:
        states = rows.locator(".state").all_inner_texts()
        return len(states) == len(jobs) and set(states) <= {"succeeded", "completed_with_errors"}

    wait_until(all_final, 20, "every backfill job to show its final state")
    succeeded = sum(int(t.replace(",", "")) for t in rows.locator("td:nth-child(5)").all_inner_texts())
    failed = sum(int(t.replace(",", "")) for t in rows.locator("td:nth-child(6)").all_inner_texts())
    assert (succeeded, failed) == (4000, 3)
    assert tab.page.evaluate("window.__notReloaded === true")
    assert tab.weight() < 300_000

    tab.page.locator("#jobs tbody tr", has=tab.page.locator(".state-completed_with_errors")).locator("a").click()
    tab.page.wait_for_url(re.compile(r".*/console/jobs/jb_\w+$"))
    expect(tab.page.locator("#failures tbody tr")).to_have_count(3)
