"""web.pages: what every page carries, the busy page, and the whole flow in Chromium.

Sign up, confirm, receive a digest and unsubscribe in Debian's Chromium, on a phone and a
desktop.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest
from support.browser import chromium, require_chromium, serve
from support.web import (
    FORM,
    ONE_CLICK,
    base_path,
    confirmations_sent,
    link_token,
    local_path,
    pending_link,
    sign_up,
    unsubscribe_path,
)

from publisher.config import SiteConfig
from publisher.pipelines import build, digests
from publisher.store import open_store
from publisher.web import create_app


def test_pages_carry_a_csp_and_the_log_carries_no_tokens(built, client, mailed, caplog):
    caplog.set_level(logging.INFO, logger="publisher.web")
    link = pending_link(client, built, "dee@example.org")
    unsubscribe = mailed["ada@example.org"]
    pages = [
        client.get(base_path(built)),
        client.get(base_path(built) + "digests/"),
        client.get(local_path(link)),
        client.get(local_path(unsubscribe)),
        client.post(local_path(unsubscribe), content=ONE_CLICK, headers={"Content-Type": FORM}),
        client.get(base_path(built) + "confirm", params={"token": "1.2.nonsense"}),
    ]
    assert [p.status_code for p in pages] == [200, 200, 200, 200, 200, 400]
    for response in pages:
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
    lines = [record.getMessage() for record in caplog.records if record.name == "publisher.web"]
    assert any(f"GET {base_path(built)}confirm 200" in line for line in lines), lines
    assert any(f"POST {unsubscribe_path(built)} 200" in line for line in lines), lines
    secrets_ = [link_token(link), link_token(unsubscribe), "nonsense"]
    for line in lines:
        assert "?" not in line
        for secret in secrets_:
            assert secret not in line


@pytest.mark.sqlite_only
def test_an_unusable_state_database_gets_503(built, client):
    database = built.state_db
    for path in built.state_dir.glob(built.state_db.name + "*"):
        path.unlink()
    database.mkdir()  # cannot be opened as a database
    confirm = client.get(base_path(built) + "confirm", params={"token": "1.2.x"})
    for response in (confirm, sign_up(client, built, "ada@example.org")):
        assert response.status_code == 503
        assert "Please try again later" in response.text
        assert response.headers["retry-after"] == "60"
    assert confirmations_sent(built) == []
    # The pages are files: they need no database.
    home = client.get(base_path(built))
    assert home.status_code == 200
    assert built.title in home.text


# -- in a browser ----------------------------------------------------------------------

if TYPE_CHECKING:
    from datetime import datetime

    from playwright.sync_api import Page, ViewportSize

PHONE: ViewportSize = {"width": 375, "height": 812}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
# Long enough to overflow a phone screen unless the pages let it wrap.
ADDRESS = "ada.lovelace.byron.reader+gazettedigest@mail.example.org"


@pytest.fixture
def needs_chromium() -> None:
    require_chromium()  # before any setup: skip (or fail in CI) with the reason


def _message(path: Path) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def _recipient(message: email.message.EmailMessage) -> str:
    return str(message["To"].addresses[0].addr_spec)


def _text(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None, "the message has no text part"
    return str(part.get_content())


def _local(link: str, site_url: str, origin: str) -> str:
    """*link* (under the site's public URL) pointed at the local server instead."""
    assert link.startswith(site_url), f"{link} is not under {site_url}"
    local = urlsplit(origin)
    parts = urlsplit(link)
    return urlunsplit((local.scheme, local.netloc, parts.path, parts.query, ""))


def _shoot(page: Page, tmp_path: Path, name: str) -> list[Path]:
    """Full-page screenshots of what is shown, at phone then desktop width."""
    shots = []
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        shot = tmp_path / f"{name}-{label}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 1000
        shots.append(shot)
    return shots


def _no_horizontal_scroll(page: Page) -> None:
    assert page.viewport_size is not None
    width = page.viewport_size["width"]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page scrolls sideways: {scroll_width}px > {width}px"


@pytest.mark.usefixtures("needs_chromium")
def test_sign_up_confirm_receive_a_digest_and_unsubscribe_in_chromium(
    site: SiteConfig, now: datetime, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    build.build(site, now=now)
    app = create_app(site, now=lambda: now)
    site_origin = site.base_url
    with serve(app) as origin, chromium() as browser:
        home_url = _local(site.base_url, site_origin, origin)
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()

        # The home page on a phone: the form, the articles, the feed links, no sideways scroll.
        response = page.goto(home_url)
        assert response is not None
        assert response.status == 200
        page.screenshot(path=str(tmp_path / "home-phone.png"), full_page=True)
        assert page.locator("html").get_attribute("lang") == "en"
        expect(page.get_by_role("heading", level=1, name="Test Gazette")).to_be_visible()
        expect(page.get_by_role("link", name="Observers find an orderly vote")).to_be_visible()
        _no_horizontal_scroll(page)
        alternates = page.locator("head link[rel=alternate]")
        assert sorted(
            (alternates.nth(i).get_attribute("type"), alternates.nth(i).get_attribute("href"))
            for i in range(alternates.count())
        ) == sorted(
            (kind, f"{site.feeds.url}{name}")
            for kind, name in (
                ("application/rss+xml", "rss.xml"),
                ("application/atom+xml", "atom.xml"),
                ("application/feed+json", "feed.json"),
            )
        )
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(tmp_path / "home-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE)

        # From the keyboard, the first Tab shows a way past the masthead.
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()

        # Sign up: fields found by their labels, as a screen reader would announce them.
        page.get_by_label("Email address").fill(ADDRESS)
        page.get_by_label("Name").fill("Ada Reader")
        page.get_by_role("button", name="Subscribe").click()
        expect(page.get_by_role("heading", level=1, name="Check your inbox")).to_be_visible()
        _no_horizontal_scroll(page)
        _shoot(page, tmp_path, "check-inbox")

        # The confirmation message in the outbox, its link pointed at the local server.
        confirmations = sorted((site.delivery.outbox_dir / "confirmations").glob("*.eml"))
        assert len(confirmations) == 1
        confirmation = _message(confirmations[0])
        assert _recipient(confirmation) == ADDRESS
        found = re.search(r"https://\S+/confirm\?token=\S+", _text(confirmation))
        assert found, "no confirmation link in the text part"
        # Opening the link shows one button and changes nothing (a link scanner
        # does as much); pressing the button subscribes.
        page.goto(_local(found.group(0), site_origin, origin))
        expect(
            page.get_by_role("heading", level=1, name="Confirm your subscription")
        ).to_be_visible()
        expect(page.get_by_text(ADDRESS)).to_be_visible()
        expect(page.get_by_role("button")).to_have_count(1)
        _no_horizontal_scroll(page)
        _shoot(page, tmp_path, "confirm")
        with open_store(site.state) as store:
            assert store.find_subscriber(ADDRESS) is None
        page.get_by_role("button", name="Confirm subscription").click()
        expect(page.get_by_role("heading", level=1, name="You are subscribed")).to_be_visible()
        expect(page.get_by_text(f"{ADDRESS} will receive the next Test Gazette")).to_be_visible()
        _no_horizontal_scroll(page)
        _shoot(page, tmp_path, "subscribed")

        # A digest goes out; the new subscriber's copy carries their unsubscribe link.
        report = digests.send_digests(site, now=lambda: now + timedelta(hours=1))
        assert report.sent == 1
        copies = sorted((site.delivery.outbox_dir / "digest-0001").glob("*.eml"))
        digest = [message for message in map(_message, copies) if _recipient(message) == ADDRESS]
        assert len(digest) == 1
        header = digest[0]["List-Unsubscribe"]
        unsubscribe_link = next(
            part.strip(" <>")
            for part in header.split(",")
            if part.strip(" <>").startswith(site.digest.unsubscribe_url)
        )
        assert unsubscribe_link in _text(digest[0])

        # The archive lists it, and its web copy carries nobody's address.
        page.get_by_role("link", name="Past digests").click()
        expect(page.get_by_role("heading", level=1, name="Past digests")).to_be_visible()
        _no_horizontal_scroll(page)
        _shoot(page, tmp_path, "digests")
        archived = page.get_by_role("link", name="Issue 1").get_attribute("href")
        assert archived == base_path(site) + "digests/1/"  # the site's own page
        page.goto(origin + archived)
        expect(page.get_by_role("heading", name="Observers find an orderly vote")).to_be_visible()
        assert ADDRESS not in page.content()

        # The unsubscribe page on a desktop: one button; pressing it unsubscribes at once.
        page.set_viewport_size(DESKTOP)
        page.goto(_local(unsubscribe_link, site_origin, origin))
        expect(page.get_by_role("heading", level=1, name="Unsubscribe")).to_be_visible()
        expect(page.get_by_text(ADDRESS)).to_be_visible()
        buttons = page.get_by_role("button")
        expect(buttons).to_have_count(1)
        page.screenshot(path=str(tmp_path / "unsubscribe-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE)
        _no_horizontal_scroll(page)
        page.screenshot(path=str(tmp_path / "unsubscribe-phone.png"), full_page=True)
        page.set_viewport_size(DESKTOP)
        with open_store(site.state) as store:
            subscriber = store.find_subscriber(ADDRESS)
            assert subscriber is not None
            assert subscriber.status == "active"  # showing the page changed nothing
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.get_by_role("heading", level=1, name="You are unsubscribed")).to_be_visible()
        expect(page.get_by_text(f"{ADDRESS} will receive no more digests")).to_be_visible()
        _shoot(page, tmp_path, "unsubscribed")
        context.close()

    with open_store(site.state) as store:
        subscriber = store.find_subscriber(ADDRESS)
        assert subscriber is not None
        assert subscriber.status == "unsubscribed"
    names = (
        "home",
        "check-inbox",
        "confirm",
        "subscribed",
        "digests",
        "unsubscribe",
        "unsubscribed",
    )
    for name in names:
        for width in ("phone", "desktop"):
            assert (tmp_path / f"{name}-{width}.png").is_file()
