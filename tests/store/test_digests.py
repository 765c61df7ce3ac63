"""store.digests: each digest's frozen article list, and which articles went out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from publisher.model import DigestArticle, RenderedDigest
from publisher.pipelines.build import build
from publisher.store import open_store


def _article(number: int) -> DigestArticle:
    return DigestArticle(
        id=f"urn:example:{number}",
        title=f"Talks in Vienna, round {number}",
        link=f"https://gazette.example/news/2026/11/round-{number}/",
        date=datetime(2026, 11, number, 9, 0, tzinfo=UTC),
        authors=("Lena Hofbauer", "Tomás Ferreira"),
        summary="Delegates agreed on “recommendations”.",
    )


def test_a_digest_keeps_its_frozen_article_list_and_then_its_rendering(store, now):
    articles = (_article(2), _article(1))
    with store.transaction():
        digest_id = store.insert_digest(articles, last_seq=7, now=now)
    digest = store.get_digest(digest_id)
    assert digest is not None
    assert (digest.id, digest.created_at, digest.last_seq) == (digest_id, now, 7)
    assert (digest.articles, digest.rendered, digest.finished_at) == (articles, None, None)
    rendered = RenderedDigest(subject="2 new", html="<p>h</p>", text="t\n", web_html="<p>w</p>")
    with store.transaction():
        store.save_rendered(digest_id, rendered)
    assert store.get_digest(digest_id).rendered == rendered
    assert store.get_digest(digest_id + 1) is None


def test_which_articles_went_out_and_where_the_first_digest_stopped(store, now):
    assert (store.first_digest_cutoff(), store.latest_digest_id(), store.latest_digest()) == (
        None,
        None,
        None,
    )
    with store.transaction():
        store.insert_digest((_article(1), _article(2)), last_seq=5, now=now)
        second = store.insert_digest((_article(3),), last_seq=9, now=now + timedelta(days=7))
    assert store.digested_article_ids() == {"urn:example:1", "urn:example:2", "urn:example:3"}
    assert store.first_digest_cutoff() == 5
    assert store.latest_digest_id() == second
    assert store.latest_digest().articles == (_article(3),)


def test_a_digest_is_finished_once(store, now):
    with store.transaction():
        first = store.insert_digest((_article(1),), last_seq=1, now=now)
        second = store.insert_digest((_article(2),), last_seq=2, now=now)
        store.finish_digest(first, now=now)
        store.finish_digest(first, now=now + timedelta(hours=1))  # again: the first time stays
    assert store.get_digest(first).finished_at == now
    assert store.unfinished_digests() == [second]


def test_undigested_articles_are_the_numbered_ones_no_digest_holds(site, now):
    build(site, now=now)  # numbers the three published articles, oldest first
    with open_store(site.state) as store:
        numbered = store.undigested_article_ids(after=None)
        dates = {key.id: key.date for key in store.article_keys()}
        assert len(numbered) == 3
        assert [dates[i] for i in numbered] == sorted(dates[i] for i in numbered)
        with store.transaction():
            store.insert_digest(
                (replace(_article(1), id=numbered[0]),), last_seq=store.publication_seq(), now=now
            )
        assert store.undigested_article_ids(after=None) == numbered[1:]
        assert store.undigested_article_ids(after=store.publication_seq()) == []
