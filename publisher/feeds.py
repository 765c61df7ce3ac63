"""Feed items to RSS 2.0 and Atom 1.0 bytes (feedgen) and JSON Feed 1.1 bytes (by hand).

Every renderer is deterministic: dates come from the items (never "now"),
items are added in the order given, and serialisation is stable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from publisher.markup import strip_forbidden
from publisher.model import Author, FeedItem, FeedSpec

if TYPE_CHECKING:
    from feedgen.feed import FeedGenerator

FEED_FILES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
GENERATOR_URI = "https://pypi.org/project/publisher/"
# An empty feed has no newest item to take its date from; a fixed date keeps
# the bytes deterministic instead of leaking the build time.
EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=UTC)


def feed_updated(items: Sequence[FeedItem]) -> datetime:
    """The feed's date: the newest item's last modification, never the build time."""
    if not items:
        return EMPTY_FEED_DATE
    return max(item.article.last_modified for item in items)


def render(fmt: str, spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """Render one format ('rss', 'atom' or 'json')."""
    if fmt == "rss":
        return render_rss(spec, items)
    if fmt == "atom":
        return render_atom(spec, items)
    if fmt == "json":
        return render_json_feed(spec, items)
    message = f"unknown feed format {fmt!r}"
    raise ValueError(message)


def render_rss(spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """RSS 2.0: summary in <description>, full HTML in <content:encoded>."""
    generator = _generator(spec, items, "rss")
    data: bytes = generator.rss_str(pretty=True)
    return data


def render_atom(spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """Atom 1.0 (RFC 4287): content type="html", summary type="text"."""
    generator = _generator(spec, items, "atom")
    data: bytes = generator.atom_str(pretty=True)
    return data


def _generator(spec: FeedSpec, items: Sequence[FeedItem], fmt: str) -> FeedGenerator:
    # Imported here so that a build with nothing to render never pays for lxml.
    from feedgen.feed import FeedGenerator

    self_url = spec.url(FEED_FILES[fmt])
    feed = FeedGenerator()
    feed.load_extension("dc")
    feed.id(self_url)
    feed.title(_clean(spec.title))
    feed.subtitle(_clean(spec.description))  # RSS <description>, Atom <subtitle>
    feed.link(
        href=self_url,
        rel="self",
        type="application/rss+xml" if fmt == "rss" else "application/atom+xml",
    )
    # feedgen takes RSS <link> from the last link added: the site must come last.
    feed.link(href=spec.home_url, rel="alternate", type="text/html")
    feed.language(spec.language)
    feed.generator("publisher", version=spec.generator_version, uri=GENERATOR_URI)
    feed.author(_author_dict(spec.author))
    if spec.author.email:
        feed.managingEditor(f"{spec.author.email} ({_clean(spec.author.name)})")
    updated = feed_updated(items)
    feed.updated(updated)
    feed.lastBuildDate(updated)
    if items:
        feed.pubDate(max(item.article.date for item in items))

    for item in items:
        article = item.article
        entry = feed.add_entry(order="append")
        is_permalink = article.id == article.link
        entry.guid(article.id, permalink=is_permalink)
        entry.title(_clean(article.title))
        entry.link(href=article.link, rel="alternate", type="text/html")
        entry.published(article.date)
        entry.updated(article.last_modified)
        summary = _clean(article.summary) or _clean(article.title)
        if item.content_html is not None:
            # One type serves both formats: Atom needs type="html" (feedgen's
            # "CDATA" type writes an invalid Atom type), and RSS then carries
            # the HTML escaped in content:encoded, which readers unescape.
            entry.content(_clean(item.content_html), type="html")
        # Sets Atom <summary> and, as nothing else set it, RSS <description>.
        # (feedgen's description() would overwrite the Atom content.)
        entry.summary(summary)
        for author in article.authors:
            if fmt == "atom":
                entry.author(_author_dict(author))
            elif author.email:
                entry.author(_author_dict(author))  # RSS <author>email (name)</author>
            else:
                entry.dc.dc_creator(_clean(author.name), replace=False)
        for tag in article.tags:
            entry.category(term=_clean(tag.name))
    return feed


def render_json_feed(spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/); key order is fixed."""
    document: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": _clean(spec.title),
        "home_page_url": spec.home_url,
        "feed_url": spec.url(FEED_FILES["json"]),
        "description": _clean(spec.description),
        "language": spec.language,
        "authors": [_json_author(spec.author)],
        "items": [_json_item(item) for item in items],
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _json_item(item: FeedItem) -> dict[str, Any]:
    article = item.article
    entry: dict[str, Any] = {"id": article.id, "url": article.link, "title": _clean(article.title)}
    if item.content_html is not None:
        entry["content_html"] = _clean(item.content_html)
    else:
        entry["content_text"] = _clean(article.summary) or _clean(article.title)
    if article.summary:
        entry["summary"] = _clean(article.summary)
    entry["date_published"] = _rfc3339(article.date)
    if article.updated is not None:
        entry["date_modified"] = _rfc3339(article.updated)
    entry["authors"] = [_json_author(a) for a in article.authors]
    if article.tags:
        entry["tags"] = [_clean(t.name) for t in article.tags]
    return entry


def _json_author(author: Author) -> dict[str, str]:
    result = {"name": _clean(author.name)}
    if author.email:
        result["url"] = f"mailto:{author.email}"
    return result


def _author_dict(author: Author) -> dict[str, str]:
    result = {"name": _clean(author.name)}
    if author.email:
        result["email"] = author.email
    return result


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _clean(text: str) -> str:
    return strip_forbidden(text)
