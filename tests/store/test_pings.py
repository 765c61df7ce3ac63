"""store.pings: WebSub pings still to send, safe for two pingers at once."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from publisher.store import PendingPing

RSS = "https://gazette.example/news/feeds/rss.xml"
ATOM = "https://gazette.example/news/feeds/atom.xml"


def test_queued_pings_are_due_at_once_in_url_order(store, now):
    with store.transaction():
        store.queue_pings([RSS, ATOM, RSS], now=now)
    due = store.due_pings(now)
    assert due == [
        PendingPing(ATOM, 0, now.isoformat(timespec="microseconds")),
        PendingPing(RSS, 0, now.isoformat(timespec="microseconds")),
    ]
    assert store.due_pings(now - timedelta(microseconds=1)) == []


def test_times_in_other_zones_compare_as_instants(store, now):
    with store.transaction():
        store.queue_pings([RSS], now=now.astimezone(ZoneInfo("America/New_York")))
    assert [ping.url for ping in store.due_pings(now.astimezone(ZoneInfo("Asia/Tokyo")))] == [RSS]
    earlier = (now - timedelta(seconds=1)).astimezone(ZoneInfo("Europe/Vienna"))
    assert store.due_pings(earlier) == []


def test_a_failed_ping_waits_for_its_retry_and_a_new_change_is_due_at_once(store, now):
    with store.transaction():
        store.queue_pings([RSS], now=now)
    (ping,) = store.due_pings(now)
    retry = now + timedelta(minutes=1)
    with store.transaction():
        store.ping_failed(ping, error="answered 503", retry_at=retry)
    assert store.due_pings(retry - timedelta(seconds=1)) == []
    assert [p.attempts for p in store.due_pings(retry)] == [1]
    changed = now + timedelta(seconds=10)
    with store.transaction():
        store.queue_pings([RSS], now=changed)  # the feed changed again: due now, count kept
    assert [p.attempts for p in store.due_pings(changed)] == [1]


def test_a_pinger_whose_row_changed_after_it_read_it_changes_nothing(store, now):
    with store.transaction():
        store.queue_pings([RSS, ATOM], now=now)
    mine = store.due_pings(now)
    theirs = store.due_pings(now)
    with store.transaction():
        store.ping_failed(theirs[0], error="answered 503", retry_at=now + timedelta(minutes=1))
        store.ping_accepted(theirs[1])
    with store.transaction():  # the slower pinger, with what it read before
        store.ping_accepted(mine[0])
        store.ping_failed(mine[1], error="no answer within 5 s", retry_at=now)
    rows = store.conn.execute("SELECT url, attempts, last_error FROM websub_pings").fetchall()
    assert rows == [(ATOM, 1, "answered 503")]
