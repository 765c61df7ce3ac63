"""Which articles go into which feed: the site feed and one per tag, newest first.

Planning reads only what the store keeps in columns (ArticleKey), so a build
after one edit decides every feed's items without decoding 10,000 articles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote

from publisher.config import SiteConfig
from publisher.model import Dated, FeedSpec, Listed, Tag, newest_first
from publisher.version import __version__


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """One feed and what it shows, newest first: the articles' keys (store.ArticleKey) are
    enough to tell whether it changed; its full articles are read only if it did."""

    spec: FeedSpec
    items: tuple[Dated, ...]


Item = TypeVar("Item", bound=Listed)  # an ArticleKey or an Article will do


def plan(
    site: SiteConfig, articles: Iterable[Item], *, now: datetime
) -> list[tuple[FeedSpec, tuple[Item, ...]]]:
    """Each feed's spec and items: newest first, at most `max_items`, tags sorted by slug."""
    published = newest_first(a for a in articles if a.is_published(now))
    limit = site.feeds.max_items
    base = site_feed(site)
    plans = [(base, tuple(published[:limit]))]
    if site.feeds.tag_feeds:
        for tag, items in _by_tag(published):
            plans.append((tag_feed(site, base, tag), tuple(items[:limit])))
    return plans


def site_feed(site: SiteConfig) -> FeedSpec:
    return FeedSpec(
        title=site.title,
        description=site.description,
        home_url=site.base_url,
        folder_url=site.feeds.url,
        folder="",
        language=site.language,
        author=site.author,
        generator_version=__version__,
        hub=site.feeds.websub_hub,
    )


def tag_feed(site: SiteConfig, base: FeedSpec, tag: Tag) -> FeedSpec:
    return replace(
        base,
        title=f"{site.title}: {tag.name}",
        description=f"{site.description} Articles tagged “{tag.name}”.",
        folder_url=f"{site.feeds.url}tags/{quote(tag.slug)}/",
        folder=f"tags/{tag.slug}",
        tag=tag,
    )


def _by_tag(published: Sequence[Item]) -> list[tuple[Tag, list[Item]]]:
    """Each tag (as the newest article spells it) with its articles, by slug."""
    by_tag: dict[str, list[Item]] = {}
    names: dict[str, Tag] = {}
    for article in published:
        for tag in article.tags:
            by_tag.setdefault(tag.slug, []).append(article)
            names.setdefault(tag.slug, tag)
    return [(names[slug], by_tag[slug]) for slug in sorted(by_tag)]


def signature(fingerprint: str, feed: FeedPlan, versions: Mapping[str, str]) -> str:
    """Changes when anything that goes into this feed's bytes changes.

    *fingerprint* stands for everything besides the articles (the site's
    settings, the program's version); *versions* for each article's stored
    version.
    """
    digest = hashlib.sha256(fingerprint.encode())
    digest.update(repr(feed.spec).encode())
    for article in feed.items:
        digest.update(f"\0{article.id}\0{versions.get(article.id, '')}".encode())
    return digest.hexdigest()
