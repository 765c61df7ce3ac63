"""Hand-made feed items and the checks every rendered feed must pass."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from publisher.config import SiteConfig, load_config
from publisher.feeds import render
from publisher.model import FEED_FILES, Article, ArticleMeta, Author, FeedItem, FeedSpec, Tag
from support import feedcheck

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
FORMATS = ("rss", "atom", "json")

SPEC = FeedSpec(
    title="Test Gazette",
    description="A small site for the test suite.",
    home_url="https://gazette.example/news/",
    folder_url="https://gazette.example/news/feeds/",
    folder="",
    language="en",
    author=Author("Gazette Desk", "desk@gazette.example"),
    generator_version="9.9",
)
DESK = Author("Gazette Desk", "desk@gazette.example")
# Later than every hand-made date, so that no date is implausible.
CHECK_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def make_item(n: int, content_html: str | None = "", **changes: Any) -> FeedItem:
    """Article n of March 2021 (dated the nth, 09:00 UTC), with a link and an image.

    *changes* replace the article's metadata fields (or its id).
    """
    link = f"https://gazette.example/news/2021/03/article-{n}/"
    article_id = changes.pop("id", f"urn:uuid:00000000-0000-4000-8000-{n:012d}")
    meta = ArticleMeta(
        path=f"2021-03-0{n}-article-{n}.md",
        title=f"Article {n}",
        date=datetime(2021, 3, n, 9, 0, tzinfo=UTC),
        updated=None,
        authors=(Author("Lena Hofbauer"),),
        tags=(Tag("Europe", "europe"),),
        summary=f"Summary {n}.",
        link=link,
        slug=f"article-{n}",
    )
    if content_html == "":
        content_html = (
            f'<p>Body {n}, <a href="{link}#fn-1">a note</a>.</p>\n'
            f'<p><img src="{link}figure-{n}.png" alt="Figure {n}"></p>\n'
        )
    meta = replace(meta, **changes)
    return FeedItem(Article(article_id, meta, first_seen=meta.date), content_html)


def render_all(items: list[FeedItem], spec: FeedSpec = SPEC) -> dict[str, bytes]:
    return {fmt: render.render(fmt, spec, items) for fmt in FORMATS}


def problems(fmt: str, data: bytes, spec: FeedSpec = SPEC) -> list[str]:
    """feedcheck's report for one rendered format, its self URL included."""
    url = spec.url(FEED_FILES[fmt])
    if fmt == "rss":
        return feedcheck.rss_problems(data, now=CHECK_NOW, self_url=url)
    if fmt == "atom":
        return feedcheck.atom_problems(data, now=CHECK_NOW, self_url=url)
    return feedcheck.json_feed_problems(data, now=CHECK_NOW, feed_url=url)


def assert_valid(rendered: dict[str, bytes], atom_schema: etree.RelaxNG) -> None:
    for fmt, data in rendered.items():
        assert problems(fmt, data) == [], fmt
    assert feedcheck.atom_schema_problems(rendered["atom"], atom_schema) == []
    assert feedcheck.json_schema_problems(rendered["json"]) == []


def rss_items(data: bytes) -> list[etree._Element]:
    return etree.fromstring(data).findall("channel/item")


def atom_entries(data: bytes) -> list[etree._Element]:
    return etree.fromstring(data).findall(f"{ATOM}entry")


def site_with_hub(site_dir: Path, hub_url: str) -> SiteConfig:
    config = site_dir / "publisher.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + f'\n[feeds]\nwebsub_hub = "{hub_url}"\n', encoding="utf-8")
    return load_config(config)
