"""A real browser for the console tests: Debian's Chromium driven by playwright (never `playwright install`)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a closed network: no sandbox (root in CI), no GPU, none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "console-screenshots"
VIEWPORT = {"width": 1200, "height": 800}


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed from Debian's packages when missing and we are root; else the test skips."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0:
        pytest.skip("needs /usr/bin/chromium (as root: apt-get install -y chromium); not root, so not installed")
    done = subprocess.run(
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium",
        shell=True,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if not CHROMIUM.exists():
        pytest.fail(f"apt-get install chromium failed: {done.stderr[-2000:]}")
    return CHROMIUM


@dataclass
class Tab:
    """One browser context (its own cookies) with one page, recording what the page's console reports."""

    context: object
    page: object
    base_url: str
    problems: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # console errors a test provokes on purpose

    def __post_init__(self) -> None:
        def on_console(message) -> None:
            if message.type in ("error", "warning"):
                self.problems.append(f"console {message.type}: {message.text}")

        self.page.on("console", on_console)
        self.page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def expect_status(self, status: int) -> None:
        """The next page answers `status` on purpose: Chromium logs that as a console error."""
        self.expected.append(f"status of {status}")

    def unexpected_problems(self) -> list[str]:
        return [p for p in self.problems if not any(e in p for e in self.expected)]

    def sign_in(self, token: str, org: str | None = None, then: str = "/console/jobs", open_form: bool = True) -> None:
        """Fill the sign-in form (opened first, unless the page already shows it) and land on `then`."""
        if open_form:
            self.goto("/console")
        self.page.fill("input[name=token]", token)
        if org:
            self.page.fill("input[name=org]", org)
        self.page.click("form[action='/console/sign-in'] button[type=submit]")
        self.page.wait_for_url(re.compile(re.escape(self.base_url + then) + r"$"))

    def weight(self) -> int:
        """Bytes of the page: the document and every script, style sheet and icon it references, each fetched
        again (whatever the browser cache holds) and counted uncompressed."""
        urls = self.page.evaluate(
            "() => [location.href, ...Array.from(document.querySelectorAll('script[src], link[href]'),"
            " e => e.src || e.href)]"
        )
        return sum(len(self.context.request.get(url).body()) for url in urls)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def storage(self) -> str:
        """Everything the page's scripts could have kept: localStorage, sessionStorage and readable cookies."""
        return self.page.evaluate(
            "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])"
        )
