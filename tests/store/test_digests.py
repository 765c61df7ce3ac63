"""store.digests: each digest's frozen article list, and which articles went out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from publisher.model import DigestArticle, RenderedDigest
from publisher.pipelines.build import build
from publisher.store import open_store
from publisher.store.digests import StreamRow, StreamStart


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


def test_each_segments_latest_digest_and_where_a_stream_starts(store, now):
    assert (store.latest_digest_id(), store.latest_digest(), store.segment_positions()) == (
        None,
        None,
        {},
    )
    with store.transaction():
        old = store.insert_digest((_article(1), _article(2)), last_seq=5, now=now)
        store.insert_digest((_article(3),), last_seq=6, now=now, segment="*|daily at 07:00")
        later = store.insert_digest(
            (_article(4),),
            last_seq=9,
            now=now + timedelta(days=7),
            segment="*|daily at 07:00",
            first_seq=6,
            held=("urn:example:8",),
        )
    assert store.segment_positions() == {None: old, "*|daily at 07:00": later}
    assert store.stream_starts([old, later, 99]) == {
        old: StreamStart(old, 5, ()),
        later: StreamStart(later, 9, ("urn:example:8",)),
    }
    assert store.latest_digest_id() == later
    assert store.latest_digest().articles == (_article(4),)


def test_streams_move_past_the_digest_that_covered_them(store, now):
    with store.transaction():
        one = store.insert_subscriber("one@example.org", "", status="active", now=now)
        two = store.insert_subscriber(
            "two@example.org", "", status="active", now=now, topics=("b", "a"), cadence="x"
        )
        store.insert_subscriber("gone@example.org", "", status="unsubscribed", now=now)
        digest = store.insert_digest((_article(1),), last_seq=1, now=now)
        store.advance_streams([two], digest)
    assert list(store.iter_streams()) == [
        StreamRow(one, None, None, None, joining=True, joined_seq=0),
        StreamRow(two, ("a", "b"), "x", digest, joining=False, joined_seq=0),
    ]
    with store.transaction():
        store.set_setting("publication_seq", "7")
        store.set_subscriber_status(two, "unsubscribed", now=now)
        store.set_subscriber_status(two, "active", now=now)  # back: joining again, from 7
        store.set_subscriber_status(one, "active", now=now)  # no change: not joining anew
    assert [(r.subscriber_id, r.joining, r.joined_seq) for r in store.iter_streams()] == [
        (one, True, 0),
        (two, True, 7),
    ]


def test_each_article_messages_are_counted_per_subscriber_since_a_moment(store, now):
    with store.transaction():
        sid = store.insert_subscriber("one@example.org", "", status="active", now=now)
        for hours, segment in (
            (-30, "*|each article"),
            (1, "*|each article"),
            (2, "*|daily at 07:00"),
        ):
            digest = store.insert_digest(
                (_article(1),), last_seq=1, now=now + timedelta(hours=hours), segment=segment
            )
            store.create_deliveries(
                digest, lambda d, s: f"<{d}.{s}@x>", now=now, subscriber_ids=[sid]
            )
    assert store.each_article_counts(since=now) == {sid: 1}
    assert store.each_article_counts(since=now - timedelta(days=2)) == {sid: 2}


def test_a_digest_is_finished_once(store, now):
    with store.transaction():
        first = store.insert_digest((_article(1),), last_seq=1, now=now)
        second = store.insert_digest((_article(2),), last_seq=2, now=now)
        store.finish_digest(first, now=now)
        store.finish_digest(first, now=now + timedelta(hours=1))  # again: the first time stays
    assert store.get_digest(first).finished_at == now
    assert store.unfinished_digests() == [second]


def test_numbered_articles_in_publication_order(site, now):
    build(site, now=now)  # numbers the three published articles, oldest first
    with open_store(site.state) as store:
        numbered = store.numbered_after(None, upto=store.publication_seq())
        dates = {key.id: key.date for key in store.article_keys()}
        assert len(numbered) == 3
        assert [dates[i] for i in numbered] == sorted(dates[i] for i in numbered)
        assert store.numbered_after(1, upto=store.publication_seq()) == numbered[1:]
        assert store.numbered_after(1, upto=2) == numbered[1:2]
        assert store.numbered_after(store.publication_seq(), upto=99) == []
