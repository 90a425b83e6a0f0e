"""Browser fixtures: one headless Chromium for the whole test session, a fresh context (own cookies) per tab.
Every tab's console must stay free of errors (CSP refusals, script errors, failed loads) unless a test provokes one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import CHROMIUM_ARGS, VIEWPORT, Tab, ensure_chromium


@pytest.fixture(scope="session")
def browser() -> Iterator:
    chromium = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_tab(browser) -> Iterator:
    """`open_tab(base_url)`: a new browser context and page on that service."""
    tabs: list[Tab] = []

    def open_(base_url: str) -> Tab:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(30_000)
        tab = Tab(context, context.new_page(), base_url)
        tabs.append(tab)
        return tab

    yield open_
    problems = [p for tab in tabs for p in tab.unexpected_problems()]
    for tab in tabs:
        tab.context.close()
    assert problems == [], "the browser console reported problems"


@pytest.fixture
def tab(open_tab, stack) -> Tab:
    """A tab on the shared service."""
    return open_tab(stack.url)
