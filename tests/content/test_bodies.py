"""content.bodies: the HTML cache: a body is rendered once, then reused.

It renders again when its text, its link or the rendering rules change; a file changed since
it was indexed keeps the HTML last rendered from it.
"""

from __future__ import annotations

import pytest
from support.builds import bump_mtime, json_items

from publisher import version
from publisher.config import load_config
from publisher.content import bodies, markup
from publisher.model import Article
from publisher.pipelines.build import build, write_site_pages
from publisher.store import Store, open_store

OBSERVERS = "https://gazette.example/news/2021/03/observers/"
EDITED = "Election monitors said the vote was calm and the count transparent and quick."


def _published(store: Store, now) -> list[Article]:
    return [article for article in store.articles().values() if article.is_published(now)]


def _html_for(site, store: Store, articles: list[Article]) -> dict[str, str]:
    """The articles' HTML as a build gets it: cached, or rendered from the file and kept."""
    cache = bodies.BodyCache(site, store)
    html, stale = cache.split(articles)
    done = [(job, bodies.render_body(job)) for job in stale.values()]
    cache.keep(done)
    return html | {job.article_id: body.html for job, body in done if body.html is not None}


def _renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources markup.render_body is given from now on: one per body rendered."""
    rendered: list[str] = []
    real = markup.render_body

    def render_body(source: str, **options: str) -> str:
        rendered.append(source)
        return real(source, **options)

    monkeypatch.setattr(markup, "render_body", render_body)
    return rendered


def _edit_observers(site) -> None:
    path = site.content_dir / "2021-03-04-observers.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("the count transparent.", "the count transparent and quick."), encoding="utf-8"
    )
    bump_mtime(path)


def _one_item_feeds(site_dir) -> None:
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[feeds]\nmax_items = 1\ntag_feeds = false\n",
        encoding="utf-8",
    )


def test_a_page_renders_the_body_no_feed_showed_and_it_is_kept(site_dir, now, monkeypatch):
    _one_item_feeds(site_dir)
    site = load_config(site_dir / "publisher.toml")
    rendered = _renders(monkeypatch)
    build(site, now=now)
    assert len(rendered) == 3  # one for the feeds (the newest), two more for the pages
    page = site.site_dir / "2021/03/observers/index.html"
    assert "the count transparent.</p>" in page.read_text(encoding="utf-8")
    with open_store(site.state_db) as store:
        articles = _published(store, now)
        fresh, stale = bodies.BodyCache(site, store).split(articles)
    assert (len(fresh), stale) == (3, {})  # each kept: the next build renders none
    (observers,) = [article.id for article in articles if article.link == OBSERVERS]
    assert "the count transparent.</p>" in fresh[observers]


def test_a_page_whose_file_changed_since_indexing_shows_the_last_good_body(
    site_dir, now, monkeypatch
):
    _one_item_feeds(site_dir)
    site = load_config(site_dir / "publisher.toml")
    build(site, now=now)
    monkeypatch.setattr(version, "RENDER_RULES", "a later set of rules")  # every body is stale
    _edit_observers(site)  # and not indexed again: its page renders from what the store has
    rendered = _renders(monkeypatch)
    with open_store(site.state_db) as store:
        report = write_site_pages(site, store, now=now)
    assert report.writes is not None
    assert not any("quick" in source for source in rendered)
    page = site.site_dir / "2021/03/observers/index.html"
    assert "the count transparent.</p>" in page.read_text(encoding="utf-8")


def test_without_pages_the_feeds_keep_the_bodies_they_render(site_dir, now, monkeypatch):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[pages]\nenabled = false\n", encoding="utf-8"
    )
    site = load_config(config)
    rendered = _renders(monkeypatch)
    build(site, now=now)
    assert len(rendered) == 3  # the three published articles, with their entries
    item = json_items(site)[OBSERVERS]
    assert "the count transparent.</p>" in item["content_html"]
    with open_store(site.state_db) as store:
        fresh, stale = bodies.BodyCache(site, store).split(_published(store, now))
    assert (len(fresh), stale) == (3, {})


def test_a_cached_body_is_reused(site, now, monkeypatch):
    build(site, now=now)  # renders the three published bodies and caches them
    rendered = _renders(monkeypatch)
    with open_store(site.state_db) as store:
        articles = _published(store, now)
        html = _html_for(site, store, articles)
    assert rendered == []
    assert sorted(html) == sorted(article.id for article in articles)
    assert len(html) == 3
    (observers,) = [article.id for article in articles if article.link == OBSERVERS]
    assert "the count transparent.</p>" in html[observers]


def test_a_changed_text_renders_again_and_only_it(site, now, monkeypatch):
    build(site, now=now)
    _edit_observers(site)
    rendered = _renders(monkeypatch)
    build(site, now=now)
    assert [source.splitlines()[0] for source in rendered] == [EDITED]
    with open_store(site.state_db) as store:
        articles = _published(store, now)
        html = _html_for(site, store, articles)
    assert len(rendered) == 1  # the new HTML was cached in its turn
    (observers,) = [article.id for article in articles if article.link == OBSERVERS]
    assert "transparent and quick.</p>" in html[observers]


def test_a_file_changed_since_it_was_indexed_keeps_its_last_html(site, now, monkeypatch):
    build(site, now=now)
    monkeypatch.setattr(version, "RENDER_RULES", "a later set of rules")  # every body is stale
    _edit_observers(site)  # and not indexed again: no build ran since
    rendered = _renders(monkeypatch)
    with open_store(site.state_db) as store:
        articles = _published(store, now)
        html = _html_for(site, store, articles)
    assert len(rendered) == 2  # the two files that still hold what was indexed
    assert not any("quick" in source for source in rendered)
    (observers,) = [article.id for article in articles if article.link == OBSERVERS]
    assert "the count transparent.</p>" in html[observers]  # rendered before, from the indexed text
    assert "quick" not in html[observers]


def test_new_sanitising_rules_render_cached_html_again(site, now, monkeypatch):
    """HTML cached under older rules (a data: link a fix now removes) does not linger."""
    build(site, now=now)
    monkeypatch.setattr(version, "RENDER_RULES", "a later set of rules")
    rendered: list[str] = []
    original = markup.render_body
    monkeypatch.setattr(
        markup, "render_body", lambda *a, **k: rendered.append("x") or original(*a, **k)
    )
    report = build(site, now=now)
    assert len(rendered) == 3  # every published article, though none changed
    assert len(report.written) == 0  # the same rules' bytes: nothing to rewrite
    assert report.parsed == 0


def test_a_last_good_version_never_rendered_goes_out_as_its_summary(site_dir, now, caplog):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + "\n[feeds]\nmax_items = 1\ntag_feeds = false\n[pages]\nenabled = false\n",
        encoding="utf-8",
    )
    site = load_config(config)
    build(site, now=now)  # only the newest article (fisheries) is rendered: no page shows more
    older = site.content_dir / "2021-03-04-observers.md"
    older.write_text("---\ntitle: broken\n---\n", encoding="utf-8")
    bump_mtime(older)
    (site.content_dir / "2022-08-09-fisheries.txt").unlink()
    (site.content_dir / "2031-01-15-year-ahead.md").unlink()
    build(site, now=now)
    item = json_items(site)["https://gazette.example/news/2021/03/observers/"]
    assert item["title"] == "Observers find an orderly vote"  # the last good version
    assert item["content_text"] == "Monitors praised the count but criticised the campaign."
    assert "cannot render its last good version; summary only" in caplog.text
