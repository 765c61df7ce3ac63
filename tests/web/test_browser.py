"""The subscriber's pages of `publisher serve` in Debian's Chromium: the preferences page and
the sign-up form's choices, used by clicking, checked by axe-core and shown at phone width.

A site with topics and cadences (support.web.CHOICES) built in tmp_path on SQLite, served
by the real application over HTTP with its Content-Security-Policy; requests that would
leave 127.0.0.1 are refused and reported.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from support.browser import Visit, axe_results, chromium, require_chromium, serve, violations
from support.clock import NOW
from support.paths import SITES
from support.web import (
    base_path,
    choosing_site,
    confirmation_link,
    confirmations_sent,
    local_path,
    personal_token,
    preferences_path,
    query_rows,
    stored_choices,
)

from publisher.config import SiteConfig
from publisher.web import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

PHONE: ViewportSize = {"width": 375, "height": 812}
ADA = "ada@example.org"


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    require_chromium()  # before the build: skip (or fail in CI) with the reason
    return choosing_site(shutil.copytree(SITES / "basic", tmp_path / "site"), NOW)


@pytest.fixture
def origin(site: SiteConfig) -> Iterator[str]:
    with serve(create_app(site, now=lambda: NOW)) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def _assert_accessible(page: Page, name: str) -> None:
    found = violations(axe_results(page))
    assert found == [], f"{name}: {len(found)} violations:\n" + "\n".join(found)


def _shoot(page: Page, tmp_path: Path, name: str) -> Path:
    width = int(page.evaluate("document.documentElement.scrollWidth"))
    assert width <= PHONE["width"], f"{name} scrolls sideways: {width}px wide"
    shot = tmp_path / f"{name}-{PHONE['width']}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000, shot
    return shot


def test_choosing_topics_and_cadence_by_clicking_saves_them(
    site: SiteConfig, origin: str, browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    token = personal_token(site, ADA)
    for scheme in ("light", "dark"):
        look = Visit(browser, origin, viewport=PHONE, color_scheme=scheme)
        _assert_accessible(look.open(f"{preferences_path(site)}?token={token}"), scheme)
        look.close()

    visit = Visit(browser, origin, viewport=PHONE)
    page = visit.open(f"{preferences_path(site)}?token={token}")
    expect(page.get_by_role("heading", level=1, name="Choose what you receive")).to_be_visible()
    topics = page.get_by_role("group", name="Topics")
    for title in ("Diplomacy", "Elections", "Oceans & fisheries"):
        expect(topics.get_by_role("checkbox", name=title)).to_be_checked()
    expect(page.get_by_role("radio", name="Every Monday at 07:00")).to_be_checked()
    _shoot(page, tmp_path, "preferences")

    topics.get_by_text("Elections", exact=True).click()  # the label ticks the box
    topics.get_by_role("checkbox", name="Oceans & fisheries").uncheck()
    page.get_by_role("group", name="How often").get_by_text("Every day at 07:00").click()
    page.get_by_role("button", name="Save my choices").click()

    expect(page.get_by_role("status")).to_contain_text("Saved.")
    assert urlsplit(page.url).path == preferences_path(site)  # back by GET, after a 303
    expect(topics.get_by_role("checkbox", name="Diplomacy")).to_be_checked()
    expect(topics.get_by_role("checkbox", name="Elections")).not_to_be_checked()
    expect(topics.get_by_role("checkbox", name="Oceans & fisheries")).not_to_be_checked()
    expect(page.get_by_role("radio", name="Every day at 07:00")).to_be_checked()
    assert stored_choices(site)[ADA] == ("diplomacy", "daily at 07:00")
    _assert_accessible(page, "saved")
    _shoot(page, tmp_path, "preferences-saved")

    page.reload()  # a GET: nothing is sent again, nothing is recorded again
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    chosen = query_rows(site, "SELECT reason FROM subscriber_events WHERE reason LIKE 'chose%'")
    assert chosen == [("chose Diplomacy · daily at 07:00",)]
    visit.close()


def test_signing_up_with_choices_by_clicking_gives_the_subscriber_them(
    site: SiteConfig, origin: str, browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    visit = Visit(browser, origin, viewport=PHONE)
    page = visit.open(base_path(site))
    form = page.locator("form.signup")
    for title in ("Diplomacy", "Elections", "Oceans & fisheries"):
        expect(form.get_by_role("checkbox", name=title)).to_be_checked()
    expect(form.get_by_role("radio", name="Every Monday at 07:00")).to_be_checked()
    form.get_by_label("Email address").fill("dee@example.org")
    form.get_by_role("checkbox", name="Diplomacy").uncheck()
    form.get_by_role("radio", name="A message for each new article (at most 5 a day)").check()
    _shoot(page, tmp_path, "signup")
    form.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1, name="Check your inbox")).to_be_visible()

    (message,) = confirmations_sent(site)
    visit.open(local_path(confirmation_link(message)))
    page.get_by_role("button", name="Confirm subscription").click()
    expect(page.get_by_role("heading", level=1, name="You are subscribed")).to_be_visible()
    assert stored_choices(site)["dee@example.org"] == ("elections,oceans", "each article")
    visit.close()
