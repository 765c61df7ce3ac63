"""Every item link in every feed, every card on the home page and every "Read more" in a
digest answers 200 with the article's title from `publisher serve`, over real HTTP.

The links are read as a reader's programs read them: the feeds with feedparser (RSS,
Atom) and json (JSON Feed), the home page as served, page after page through its
pagination, and the digest from the .eml files of the outbox. Each absolute link is
asked of the local server by its path. What each link must show is the title the store
holds for the article at that address, escaped as the page escapes it.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx
import pytest
from markupsafe import escape
from support.clock import Clock
from support.mailing import add_subscribers
from support.web import base_path
from support.web_server import WebServer

from publisher.config import SiteConfig, load_config
from publisher.pipelines import build, digests
from publisher.store import open_store

# A title the pages must escape: an ampersand and quotes.
ESCAPED_TITLE = 'Saury & mackerel: the "nine-year" accord'
_HEADING = re.compile(r'<h1 id="article-title"[^>]*>(.*?)</h1>', re.S)


@dataclass(frozen=True)
class Served:
    site: SiteConfig
    client: httpx.Client
    titles: dict[str, str]  # each published article's link -> its title


class _Cards(HTMLParser):
    """The article links of a list page (each card's heading) and its "older" page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.older: str | None = None
        self._in_card = self._in_heading = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "article" and "card" in (found.get("class") or "").split():
            self._in_card = True
        elif tag == "h2" and self._in_card:
            self._in_heading = True
        elif tag == "a" and self._in_heading and found.get("href"):
            self.links.append(str(found["href"]))
        elif tag == "a" and found.get("rel") == "next" and found.get("href"):
            self.older = found["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self._in_card = False
        elif tag == "h2":
            self._in_heading = False


class _ReadMore(HTMLParser):
    """The target of every link whose text is "Read more" (a digest's cards)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self._href: str | None = None
        self._text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            if self._text.strip().startswith("Read more"):
                self.links.append(self._href)
            self._href = None


@pytest.fixture
def served(site_dir, now) -> Iterator[Served]:
    """The basic site with one more article, two to a page, built, mailed and served."""
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[pages]\nper_page = 2\n", encoding="utf-8"
    )
    (site_dir / "content" / "2024-05-01-saury.md").write_text(
        f"---\ntitle: '{ESCAPED_TITLE}'\ndate: \"2024-05-01T10:00:00+02:00\"\n"
        "tags: [asia-pacific]\n---\n\nQuotas for nine years.\n",
        encoding="utf-8",
    )
    site = load_config(config)
    build.build(site, now=now)
    add_subscribers(site, ["ada@example.org"], now)
    assert digests.send_digests(site, now=lambda: now + timedelta(hours=1)).made == [1]
    with open_store(site.state) as store:
        titles = {a.link: a.title for a in store.articles().values() if a.is_published(now)}
    assert len(titles) == 4
    assert titles[f"{site.base_url}2024/05/saury/"] == ESCAPED_TITLE
    with (
        WebServer(site, now=Clock(now)) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        yield Served(site, client, titles)


def _assert_shows_its_article(served: Served, link: str) -> None:
    """*link* answers 200 from the local server with the page of the article it names."""
    assert link.startswith(served.site.base_url), link
    title = served.titles[link]
    response = served.client.get(urlsplit(link).path)
    assert response.status_code == 200, link
    assert str(escape(title)) in response.text
    heading = _HEADING.search(response.text)
    assert heading is not None, f"{link} is not an article's page"
    assert heading.group(1) == str(escape(title))


def _feed_item_links(site: SiteConfig) -> dict[str, list[str]]:
    """Each feed file's item links, as feedparser (RSS, Atom) and json (JSON Feed) read them."""
    found = {}
    for path in sorted(site.output_dir.rglob("*")):
        relative = path.relative_to(site.output_dir).as_posix()
        if path.name == "feed.json":
            document = json.loads(path.read_bytes())
            found[relative] = [item["url"] for item in document["items"]]
        elif path.name in ("rss.xml", "atom.xml"):
            parsed = feedparser.parse(path.read_bytes())
            assert not parsed.bozo, (relative, parsed.get("bozo_exception"))
            found[relative] = [entry.link for entry in parsed.entries]
    return found


def test_every_item_link_of_every_feed_answers_with_its_article(served):
    feeds = _feed_item_links(served.site)
    tag_feeds = {"arms-control", "asia-pacific", "elections", "europe", "vienna"}
    assert set(feeds) == {
        f"{folder}{name}"
        for folder in ("", *(f"tags/{tag}/" for tag in tag_feeds))
        for name in ("rss.xml", "atom.xml", "feed.json")
    }
    for name in ("rss.xml", "atom.xml", "feed.json"):
        assert set(feeds[name]) == set(served.titles)  # the site's feeds hold every article
    for links in feeds.values():
        assert links
        for link in links:
            _assert_shows_its_article(served, link)


def test_every_card_of_every_home_page_answers_with_its_article(served):
    seen: list[str] = []
    pages = []
    path: str | None = base_path(served.site)
    while path is not None:
        response = served.client.get(path)
        assert response.status_code == 200, path
        pages.append(path)
        cards = _Cards(response.text)
        seen += [urljoin(served.site.base_url, link) for link in cards.links]
        path = cards.older
    assert pages == [base_path(served.site), f"{base_path(served.site)}page/2/"]
    assert sorted(seen) == sorted(served.titles)  # each article once, across the pages
    for link in seen:
        _assert_shows_its_article(served, link)


def test_every_read_more_of_the_digest_answers_with_its_article(served):
    (message_file,) = sorted((served.site.delivery.outbox_dir / "digest-0001").glob("*.eml"))
    message = email.message_from_bytes(message_file.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    read_more = _ReadMore(html).links
    assert sorted(read_more) == sorted(served.titles)
    for link in read_more:
        _assert_shows_its_article(served, link)
    (web_copy,) = re.findall(r'href="([^"]+)"[^>]*>View in your browser', html)
    response = served.client.get(urlsplit(web_copy).path)
    assert response.status_code == 200
    assert "<h1>Issue 1</h1>" in response.text
