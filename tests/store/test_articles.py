"""store.articles: articles and files as rows, and the HTML cache."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from publisher.model import Article, ArticleMeta, Author, Tag
from publisher.store import ArticleKey, FileRow, OutputRow, encode, from_row, open_store, restamp
from publisher.store.articles import ARTICLE_KEYS_QUERY

SEEN = datetime(2024, 5, 3, 10, 0, tzinfo=UTC)
ARTICLE = Article(
    id="urn:uuid:00000000-0000-4000-8000-000000000001",
    meta=ArticleMeta(
        path="2024-05-03-story.txt",
        title="Harbour reopens",
        date=datetime(2024, 5, 3, 9, 0, tzinfo=UTC),
        updated=None,
        authors=(Author("Lena Hofbauer", "lena@example.org"), Author("Aiko Watanabe")),
        tags=(Tag("Arms Control", "arms-control"), Tag("Wien", "wien")),
        summary="The harbour reopened.",
        link="https://gazette.example/news/2024/05/story/",
        slug="story",
        body_format="text",
    ),
    first_seen=SEEN,
    text_hash="0" * 64,
)


def test_an_article_reads_back_as_it_was_stored(store):
    row = encode(ARTICLE)
    with store.transaction():
        store.save_articles([row])
    assert store.articles() == {ARTICLE.id: replace(ARTICLE, version=row.version)}
    assert store.articles([ARTICLE.id, "urn:missing"]) == store.articles()
    assert from_row(row) == replace(ARTICLE, version=row.version)
    assert [key._replace(shape="") for key in store.article_keys()] == [
        ArticleKey(
            ARTICLE.id,
            ARTICLE.date,
            False,
            ARTICLE.tags,
            row.version,
            ARTICLE.link,
            ARTICLE.date,
            ARTICLE.path,
        )
    ]


def test_a_keys_shape_changes_with_every_column_it_holds_and_not_with_the_version(store):
    def shape_of(article: Article) -> str:
        with store.transaction():
            store.save_articles([encode(article)])
        (key,) = store.article_keys()  # the same id: the row is replaced
        return key.shape

    shape = shape_of(ARTICLE)
    assert shape
    meta = ARTICLE.meta
    assert shape_of(replace(ARTICLE, meta=replace(meta, title="Harbour reopens at last"))) == shape
    assert shape_of(replace(ARTICLE, text_hash="1" * 64)) == shape  # a new version, no more
    # The last change is left out: the version tells it (see the test below).
    assert shape_of(replace(ARTICLE, meta=replace(meta, updated=meta.date + timedelta(1)))) == shape
    assert shape_of(replace(ARTICLE, edited_at=meta.date + timedelta(days=2))) == shape
    for changed in (
        replace(meta, date=meta.date - timedelta(hours=1)),
        replace(meta, is_draft=True),
        replace(meta, tags=meta.tags[:1]),
        replace(meta, tags=(Tag("Arms control", "arms-control"), Tag("Wien", "wien"))),
        replace(meta, link="https://gazette.example/news/2024/05/story-2/"),
        replace(meta, path="2024-05-03-story-2.txt"),
    ):
        assert shape_of(replace(ARTICLE, meta=changed)) != shape, changed
    assert shape_of(ARTICLE) == shape


def test_the_version_changes_with_what_is_stored_and_only_then():
    version = encode(ARTICLE).version
    assert encode(ARTICLE).version == version
    assert encode(replace(ARTICLE, first_seen=SEEN + timedelta(days=1))).version == version
    for changed in (
        replace(ARTICLE, meta=replace(ARTICLE.meta, title="Harbour reopens at last")),
        replace(ARTICLE, meta=replace(ARTICLE.meta, tags=())),
        replace(ARTICLE, text_hash="1" * 64),
        # What the last change is made of (pages.memo relies on these three).
        replace(ARTICLE, edited_at=SEEN + timedelta(hours=1)),
        replace(ARTICLE, meta=replace(ARTICLE.meta, updated=SEEN + timedelta(days=1))),
        replace(ARTICLE, meta=replace(ARTICLE.meta, date=ARTICLE.date - timedelta(hours=1))),
    ):
        assert encode(changed).version != version


def test_a_restamped_row_is_the_article_the_store_already_had():
    edited = SEEN + timedelta(days=2)
    row = restamp(encode(ARTICLE), article_id="urn:uuid:kept", first_seen=SEEN, edited_at=edited)
    expected = replace(ARTICLE, id="urn:uuid:kept", edited_at=edited)
    assert from_row(row) == replace(expected, version=encode(expected).version)


def test_the_html_cache_keeps_what_each_body_was_made_from(store):
    row = encode(ARTICLE)
    with store.transaction():
        store.save_articles([row])
    assert list(store.cached_html([ARTICLE.id])) == [
        (ARTICLE.id, "text", None, None, ARTICLE.text_hash)
    ]
    with store.transaction():
        store.save_html(ARTICLE.id, "<p>The harbour reopened.</p>", "key-1")
        store.save_articles([encode(replace(ARTICLE, text_hash="1" * 64))])  # an edit
    # An edit keeps the old HTML until the new one is rendered: the last good version.
    assert list(store.cached_html([ARTICLE.id, "urn:missing"])) == [
        (ARTICLE.id, "text", "<p>The harbour reopened.</p>", "key-1", "1" * 64)
    ]


def test_articles_are_numbered_once_oldest_first_when_they_publish(store, now):
    later = replace(ARTICLE, id="urn:later", meta=replace(ARTICLE.meta, date=now))
    future = replace(
        ARTICLE, id="urn:future", meta=replace(ARTICLE.meta, date=now + timedelta(days=1))
    )
    draft = replace(ARTICLE, id="urn:draft", meta=replace(ARTICLE.meta, is_draft=True))
    with store.transaction():
        store.save_articles(encode(a) for a in (later, ARTICLE, future, draft))
        assert store.number_publications(now) == 2
    assert store.publication_seq() == 2
    assert store.numbered_after(None, upto=2) == [ARTICLE.id, "urn:later"]
    with store.transaction():
        assert store.number_publications(now + timedelta(days=2)) == 1  # the future one, now
        assert store.number_publications(now + timedelta(days=2)) == 0
    assert store.numbered_after(2, upto=3) == ["urn:future"]
    assert store.numbered_after(1, upto=2) == ["urn:later"]
    assert store.numbered_article_ids() == {ARTICLE.id, "urn:later", "urn:future"}


def test_a_file_row_keeps_its_problem_lines(store):
    broken = FileRow("a.md", 10, 5, "f" * 64, None, ("content/a.md: title: missing",), "b" * 64)
    good = FileRow("b.md", 20, 6, "e" * 64, ARTICLE.id, None, None)
    with store.transaction():
        store.save_files([broken, good])
    assert store.files() == {"a.md": broken, "b.md": good}
    assert store.files_for(["b.md", "gone.md"]) == {"b.md": good}
    assert store.file_stats() == {("a.md", 10, 5), ("b.md", 20, 6)}
    assert store.problem_files() == [broken]
    with store.transaction():
        store.delete_file("a.md")
    assert list(store.files()) == ["b.md"]


def test_the_output_stats_are_what_the_writes_recorded(store):
    feed = OutputRow("a" * 64, 120, 7, "s" * 64)
    page = OutputRow("b" * 64, 300, 9, "t" * 64)
    with store.transaction():
        store.update_outputs({"rss.xml": feed})
        store.update_page_outputs({"2024/05/story/index.html": page})
    assert store.output_stats() == [("rss.xml", 120, 7)]
    assert store.page_output_stats() == [("2024/05/story/index.html", 300, 9)]
    with store.transaction():
        store.delete_page_outputs(["2024/05/story/index.html"])
    assert store.page_output_stats() == []
    assert store.outputs() == {"rss.xml": feed}


def test_planning_reads_the_keys_from_an_index_not_the_rows(tmp_path):
    # SQLite's rows hold each article's HTML before these columns: a scan would read it all.
    with open_store(tmp_path / "state.db") as store:
        plan = store.conn.execute(f"EXPLAIN QUERY PLAN {ARTICLE_KEYS_QUERY}").fetchall()
    assert "USING COVERING INDEX articles_keys" in " ".join(str(step[-1]) for step in plan)


def test_the_html_cache_is_read_for_many_articles_at_once(store):
    many = [replace(ARTICLE, id=f"urn:many:{n:04d}") for n in range(1201)]  # 3 queries
    with store.transaction():
        store.save_articles(encode(article) for article in many)
    wanted = [article.id for article in reversed(many)] + ["urn:missing"]
    assert [row.id for row in store.cached_html(wanted)] == sorted(a.id for a in many)
