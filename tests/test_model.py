"""publisher.model: the few values the frozen records derive."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from publisher.model import Article, ArticleMeta, Author, BuildReport, ContentProblem, FeedSpec, Tag

DATE = datetime(2024, 5, 3, 9, 0, tzinfo=UTC)
META = ArticleMeta(
    path="2024-05-03-story.md",
    title="Harbour reopens",
    date=DATE,
    updated=None,
    authors=(Author("Lena Hofbauer"),),
    tags=(Tag("Vienna", "vienna"),),
    summary="The harbour reopened.",
    link="https://gazette.example/news/2024/05/story/",
    slug="story",
)


def test_updated_is_the_front_matters_else_an_edit_seen_after_the_date():
    written = DATE + timedelta(days=2)
    edited = DATE + timedelta(days=5)
    assert Article("a", replace(META, updated=written), DATE, edited_at=edited).updated == written
    assert Article("a", META, DATE, edited_at=edited).updated == edited
    # An edit before the date (an article written ahead of its publication) is no update.
    assert Article("a", META, DATE, edited_at=DATE - timedelta(hours=1)).updated is None
    assert Article("a", META, DATE).updated is None


def test_last_modified_is_the_update_or_else_the_date():
    assert Article("a", META, DATE).last_modified == DATE
    edited = DATE + timedelta(days=1)
    assert Article("a", META, DATE, edited_at=edited).last_modified == edited


def test_an_article_publishes_at_its_date_and_a_draft_never():
    article = Article("a", META, DATE)
    assert not article.is_published(DATE - timedelta(seconds=1))
    assert article.is_published(DATE)
    draft = Article("a", replace(META, is_draft=True), DATE)
    assert not draft.is_published(DATE + timedelta(days=365))


def test_the_metadata_reads_through_the_article():
    article = Article("a", META, DATE)
    assert (article.path, article.title, article.date, article.link, article.slug) == (
        META.path,
        META.title,
        META.date,
        META.link,
        META.slug,
    )
    assert (article.authors, article.tags, article.summary) == (
        META.authors,
        META.tags,
        META.summary,
    )


def test_a_report_counts_the_files_with_problems_as_skipped():
    problems = tuple(ContentProblem(f"content/{n}.md", (f"content/{n}.md: x",)) for n in range(3))
    assert BuildReport(5, 2, 0, 0, problems=problems).skipped == 3
    assert BuildReport(5, 5, 0, 0).skipped == 0


def test_a_feed_spec_gives_the_urls_of_its_files():
    spec = FeedSpec(
        title="Test Gazette: Vienna",
        description="Articles tagged “Vienna”.",
        home_url="https://gazette.example/news/",
        folder_url="https://gazette.example/news/feeds/tags/vienna/",
        folder="tags/vienna",
        language="en",
        author=Author("Gazette Desk"),
        generator_version="1.0",
    )
    assert spec.url("atom.xml") == "https://gazette.example/news/feeds/tags/vienna/atom.xml"


def test_newest_first_orders_by_instant_whatever_the_offset_then_by_id():
    from datetime import timezone
    from types import SimpleNamespace

    from publisher.model import newest_first

    vienna = timezone(timedelta(hours=1))
    noon_utc = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    items = [
        SimpleNamespace(id="b", date=noon_utc),
        SimpleNamespace(id="c", date=noon_utc.astimezone(vienna)),  # the same moment
        SimpleNamespace(id="a", date=datetime(2024, 5, 1, 12, 30, tzinfo=vienna)),  # earlier
        SimpleNamespace(id="d", date=noon_utc + timedelta(microseconds=1)),
    ]
    assert [item.id for item in newest_first(items)] == ["d", "c", "b", "a"]
