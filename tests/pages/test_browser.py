"""The static pages in Debian's Chromium: accessible to axe-core and readable, on a phone and
a desktop, in the light and the dark colour scheme.

One build (support.showcase: a title in Arabic and English with an emoji, a body of tables
and code, a digest sent), served by `publisher serve`'s application over real HTTP with its
Content-Security-Policy, and one browser for the module. Requests that would leave
127.0.0.1 are refused and reported: a page may load nothing from anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from support.browser import Visit, axe_results, chromium, require_chromium, serve, violations
from support.showcase import (
    DIGEST,
    RICH_ARTICLE,
    RICH_TITLE,
    RTL_ARTICLE,
    RTL_TAG,
    RTL_TITLE,
    SENT,
    build_showcase,
)
from support.web import base_path

from publisher.config import SiteConfig
from publisher.web import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

PHONE: ViewportSize = {"width": 375, "height": 812}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PAGES = {
    "home": "",
    "article": RTL_ARTICLE,
    "rich-article": RICH_ARTICLE,
    "tag": RTL_TAG,
    "digest": DIGEST,
}


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> SiteConfig:
    require_chromium()  # before the build: skip (or fail in CI) with the reason
    site, _links = build_showcase(tmp_path_factory.mktemp("browser") / "site")
    return site


@pytest.fixture(scope="module")
def origin(showcase: SiteConfig) -> Iterator[str]:
    with serve(create_app(showcase, now=lambda: SENT)) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def _path(site: SiteConfig, page: str) -> str:
    return base_path(site) + PAGES[page]


def _scroll_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


# -- accessibility -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tabs(browser: Browser, origin: str) -> Iterator[dict[str, Visit]]:
    """A tab in the light colour scheme and one in the dark, for the module."""
    opened = {
        scheme: Visit(browser, origin, viewport=PHONE, color_scheme=scheme)
        for scheme in ("light", "dark")
    }
    yield opened
    for tab in opened.values():
        tab.context.close()


@pytest.mark.parametrize("page_name", PAGES)
def test_axe_finds_no_wcag_violation(
    showcase: SiteConfig, tabs: dict[str, Visit], page_name: str
) -> None:
    found = []
    for scheme, tab in tabs.items():
        page = tab.open(_path(showcase, page_name))
        # The scheme asked for is the one shown: the dark run checks the dark colours.
        dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        assert dark is (scheme == "dark")
        for viewport in (PHONE, DESKTOP):
            page.set_viewport_size(viewport)
            results = axe_results(page)
            assert results["testEngine"]["version"].startswith("4.")
            found += [f"{scheme}, {viewport['width']}px: {v}" for v in violations(results)]
        tab.assert_clean()
    assert found == [], f"{page_name}: {len(found)} violations:\n" + "\n".join(found)


def test_axe_reports_a_violation_where_there_is_one(browser: Browser, origin: str) -> None:
    visit = Visit(browser, origin)
    visit.page.set_content(
        '<!doctype html><html lang="en"><title>t</title><main>'
        '<p style="color:#999;background:#aaa">faint</p><input type="text"></main></html>'
    )
    ids = {violation["id"] for violation in axe_results(visit.page)["violations"]}
    assert {"color-contrast", "label"} <= ids
    visit.close()


# -- what is shown ---------------------------------------------------------------------


def _shoot(page: Page, tmp_path: Path, name: str) -> None:
    """Full-page screenshots at phone and desktop width; neither scrolls sideways.

    (The dark colour scheme is axe-core's to check: test_axe_finds_no_wcag_violation.)
    """
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        width = _scroll_width(page)
        assert width <= viewport["width"], f"{name} scrolls sideways: {width}px wide"
        shot = tmp_path / f"{name}-{viewport['width']}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 5000, shot


def test_an_article_shows_its_title_date_and_tags(
    showcase: SiteConfig, origin: str, browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    visit = Visit(browser, origin, viewport=PHONE)
    page = visit.open(_path(showcase, "article"))
    assert page.title() == f"{RTL_TITLE} · {showcase.title}"
    heading = page.get_by_role("heading", level=1, name=RTL_TITLE)
    expect(heading).to_be_visible()
    expect(heading).to_be_in_viewport()
    date = page.locator("article.post header time").first
    expect(date).to_have_text("1 May 2024")
    expect(date).to_have_attribute("datetime", "2024-05-01T10:00:00+02:00")
    expect(date).to_be_visible()
    tags = page.get_by_role("list", name="Tags").get_by_role("link")
    expect(tags).to_have_text(["שלום", "🕊️ peace"])
    expect(page.get_by_role("heading", name="Get the digest by email")).to_be_visible()
    expect(page.get_by_role("button", name="Subscribe")).to_be_visible()
    assert "<script>" not in page.locator("main").inner_text()
    _shoot(page, tmp_path, "article")
    visit.close()


def test_a_rich_article_keeps_its_tables_code_and_alignment(
    showcase: SiteConfig, origin: str, browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    visit = Visit(browser, origin, viewport=PHONE)
    page = visit.open(_path(showcase, "rich-article"))
    expect(page.get_by_role("heading", level=1, name=RICH_TITLE)).to_be_visible()
    expect(page.locator("article.post header time").first).to_have_text("3 June 2024")
    expect(page.get_by_role("heading", level=2, name="The figures")).to_be_visible()
    expect(page.get_by_role("table").first).to_be_visible()
    expect(page.get_by_text("Households, by size")).to_be_visible()
    expect(page.locator("pre code").first).to_contain_text("def count_residents(rows):")
    expect(page.get_by_role("img", name="A bar for each district")).to_be_visible()
    expect(page.get_by_role("blockquote").first).to_contain_text("The count was careful.")
    # The column alignments are inline styles the page's policy lets apply (a refused one
    # would leave the stylesheet's "start" and an error in the console).
    aligned = page.get_by_role("cell", name="105,848")
    assert aligned.evaluate("cell => getComputedStyle(cell).textAlign") == "right"
    centred = page.get_by_role("cell", name="+1.2 %")
    assert centred.evaluate("cell => getComputedStyle(cell).textAlign") == "center"
    _shoot(page, tmp_path, "rich-article")
    visit.close()


def test_a_tag_page_shows_its_heading_right_to_left(
    showcase: SiteConfig, origin: str, browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    visit = Visit(browser, origin, viewport=PHONE)
    page = visit.open(_path(showcase, "tag"))
    heading = page.get_by_role("heading", level=1, name="שלום")
    expect(heading).to_be_visible()
    assert heading.evaluate("h => getComputedStyle(h).direction") == "rtl"
    expect(page.get_by_role("link", name=RTL_TITLE)).to_be_visible()
    _shoot(page, tmp_path, "tag")
    visit.close()


def test_a_digest_web_copy_shows_its_issue_and_articles(
    showcase: SiteConfig, origin: str, browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    visit = Visit(browser, origin, viewport=PHONE)
    page = visit.open(_path(showcase, "digest"))
    expect(page.get_by_role("heading", level=1, name="Issue 1")).to_be_visible()
    for title in (RICH_TITLE, RTL_TITLE):
        expect(page.get_by_role("heading", level=2, name=title)).to_be_visible()
    link = page.get_by_role("link", name="Every past digest")
    expect(link).to_have_attribute("href", base_path(showcase) + "digests/")
    _shoot(page, tmp_path, "digest")
    visit.close()


def test_the_home_page_shows_the_site_and_its_articles(
    showcase: SiteConfig, origin: str, browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    visit = Visit(browser, origin, viewport=PHONE)
    page = visit.open(_path(showcase, "home"))
    expect(page.get_by_role("heading", level=1, name=showcase.title)).to_be_visible()
    for title in (RICH_TITLE, RTL_TITLE):
        expect(page.get_by_role("link", name=title)).to_be_visible()
    assert urlsplit(page.url).path == base_path(showcase)
    _shoot(page, tmp_path, "home")
    visit.close()
