"""Test helpers: the real app served by uvicorn on a free loopback port, and
Debian's headless Chromium driven by Playwright (never Playwright's own browser
download: this machine has no network for it); a tab that loads nothing from
elsewhere, and axe-core's verdict on what it shows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from starlette.types import ASGIApp

from support.web_server import AppServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_VARIABLE = "PUBLISHER_REQUIRE_BROWSER"
# A closed network: without the background-networking flags Chromium keeps
# trying (and failing) to reach Google's hosts at every start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> Path:
    """Debian's Chromium, or skip (fail when PUBLISHER_REQUIRE_BROWSER=1, as in CI)."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = (
        f"{CHROMIUM} is missing: install Debian's chromium package "
        "(apt-get install chromium; .ci/run does) to run the browser test"
    )
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}; {REQUIRE_VARIABLE}=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve *app* over real HTTP on 127.0.0.1; yield the origin, http://127.0.0.1:PORT.

    The block begins once uvicorn says it is listening (support.web_server).
    """
    with AppServer(app) as server:
        yield server.origin


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium; Playwright gives each launch a new empty profile."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


# WCAG 2.0 and 2.1, levels A and AA: the rules a violation of which is a failure to conform.
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}


class Visit:
    """A browser tab on the local server that refuses other hosts and keeps its errors."""

    def __init__(self, browser: Browser, origin: str, **options: Any) -> None:
        self.origin = origin
        self.context = browser.new_context(**options)
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_local)
        self.page = self.context.new_page()
        self.page.on("console", self._console)

    def _only_local(self, route: Any) -> None:
        if route.request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def _console(self, message: Any) -> None:
        # Chromium asks for /favicon.ico at the host's root, outside the site's base path.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            self.errors.append(f"{message.text} ({message.location['url']})")

    def open(self, path: str) -> Page:
        response = self.page.goto(self.origin + path)
        assert response is not None
        assert response.status == 200, f"{path}: {response.status}"
        return self.page

    def assert_clean(self) -> None:
        """Nothing was asked of another host, and no error (a refused style, say) was logged."""
        refused, errors = self.refused[:], self.errors[:]
        self.refused.clear()
        self.errors.clear()
        assert refused == [], f"requests to other hosts: {refused}"
        assert errors == [], f"errors in the console: {errors}"

    def close(self) -> None:
        self.context.close()
        self.assert_clean()


def axe_results(page: Page) -> dict[str, Any]:
    """axe-core's results for what *page* shows now (injected once per document)."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        # Evaluated, not added as a <script>: the page's policy refuses inline scripts.
        page.evaluate(AXE_SCRIPT)
    results: dict[str, Any] = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return results


def violations(results: dict[str, Any]) -> list[str]:
    """Each violation axe-core found, with where: "label: Form elements must have labels at …"."""
    return [
        f"{violation['id']}: {violation['help']} at "
        + ", ".join(" ".join(node["target"]) for node in violation["nodes"])
        for violation in results["violations"]
    ]
