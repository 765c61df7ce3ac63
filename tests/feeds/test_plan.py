"""feeds.plan: which articles go in which feed.

Published ones only, newest first, at most max_items; one feed per tag slug, named as the
newest article with it spells the tag.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from publisher.feeds import plan
from publisher.model import Article, ArticleMeta, Tag
from publisher.version import __version__

WHEN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
VIENNA = Tag("Vienna", "vienna")


def _article(name: str, age: timedelta, *tags: Tag, is_draft: bool = False) -> Article:
    date = WHEN - age
    meta = ArticleMeta(
        path=f"{name}.md",
        title=name,
        date=date,
        updated=None,
        authors=(),
        tags=tags,
        summary="",
        link=f"https://gazette.example/news/{name}/",
        slug=name,
        is_draft=is_draft,
    )
    return Article(f"urn:example:{name}", meta, first_seen=date)


def _names(items: tuple[Article, ...]) -> list[str]:
    return [article.id.removeprefix("urn:example:") for article in items]


def test_the_site_feed_holds_the_published_articles_newest_first(site):
    articles = [
        _article("old", timedelta(days=30)),
        _article("new", timedelta(hours=1)),
        _article("draft", timedelta(days=1), is_draft=True),
        _article("scheduled", -timedelta(hours=1)),  # published by the first build after it
        _article("middle", timedelta(days=2)),
        _article("now", timedelta(0)),
    ]
    without_tags = replace(site, feeds=replace(site.feeds, tag_feeds=False))
    ((spec, items),) = plan.plan(without_tags, articles, now=WHEN)
    assert _names(items) == ["now", "new", "middle", "old"]
    assert (spec.folder, spec.folder_url, spec.tag, spec.hub) == ("", site.feeds.url, None, None)
    assert (spec.title, spec.description, spec.home_url) == (
        site.title,
        site.description,
        site.base_url,
    )
    assert (spec.language, spec.author, spec.generator_version) == (
        site.language,
        site.author,
        __version__,
    )


def test_articles_of_one_moment_are_ordered_by_id(site):
    articles = [_article(name, timedelta(hours=1)) for name in ("b", "c", "a")]
    (_site_feed, items), *_tag_feeds = plan.plan(site, articles, now=WHEN)
    assert _names(items) == ["c", "b", "a"]


def test_each_feed_holds_at_most_max_items_the_newest(site):
    articles = [_article(f"a{n}", timedelta(days=n), VIENNA) for n in range(5)]
    limited = replace(site, feeds=replace(site.feeds, max_items=2))
    (_spec, items), (tag_spec, tag_items) = plan.plan(limited, articles, now=WHEN)
    assert _names(items) == ["a0", "a1"]
    assert (tag_spec.tag, _names(tag_items)) == (VIENNA, ["a0", "a1"])


def test_one_feed_per_tag_slug_named_as_the_newest_article_spells_it(site):
    articles = [
        _article("old", timedelta(days=3), Tag("arms control", "arms-control")),
        _article(
            "new", timedelta(days=1), Tag("Arms Control", "arms-control"), Tag("Wien", "wien")
        ),
        _article("draft", timedelta(days=2), Tag("Drafts only", "drafts-only"), is_draft=True),
    ]
    plans = plan.plan(site, articles, now=WHEN)
    assert [(spec.folder, spec.tag, _names(items)) for spec, items in plans] == [
        ("", None, ["new", "old"]),
        ("tags/arms-control", Tag("Arms Control", "arms-control"), ["new", "old"]),
        ("tags/wien", Tag("Wien", "wien"), ["new"]),
    ]
    arms = plans[1][0]
    assert arms.title == "Test Gazette: Arms Control"
    assert arms.description == "A small site for the test suite. Articles tagged “Arms Control”."
    assert arms.folder_url == "https://gazette.example/news/feeds/tags/arms-control/"


def test_a_tag_feed_s_url_quotes_its_slug_and_its_folder_keeps_it(site):
    tag = Tag("Überraschung в Wien", "uberraschung-в-wien")
    _site_feed, (spec, _items) = plan.plan(site, [_article("a", timedelta(0), tag)], now=WHEN)
    assert spec.folder == "tags/uberraschung-в-wien"
    assert spec.folder_url == "https://gazette.example/news/feeds/tags/uberraschung-%D0%B2-wien/"


def test_a_feed_s_signature_moves_with_its_spec_its_articles_and_their_versions(site):
    articles = [_article("a", timedelta(days=1)), _article("b", timedelta(days=2))]
    without_tags = replace(site, feeds=replace(site.feeds, tag_feeds=False))
    ((spec, items),) = plan.plan(without_tags, articles, now=WHEN)
    feed = plan.FeedPlan(spec, items)
    versions = {article.id: "v1" for article in items}
    signature = plan.signature("settings", feed, versions)
    assert plan.signature("settings", plan.FeedPlan(spec, items), dict(versions)) == signature
    for changed in (
        plan.signature("other settings", feed, versions),
        plan.signature("settings", plan.FeedPlan(replace(spec, title="Other"), items), versions),
        plan.signature("settings", plan.FeedPlan(spec, items[:1]), versions),
        plan.signature("settings", plan.FeedPlan(spec, items[::-1]), versions),
        plan.signature("settings", feed, {**versions, items[0].id: "v2"}),
    ):
        assert changed != signature
