"""Test helpers: the real app served by uvicorn on a free loopback port, and
Debian's headless Chromium driven by Playwright (never Playwright's own browser
download: this machine has no network for it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp

from support.web_server import AppServer

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
