"""store.claims: senders sharing one digest claim disjoint rows; a silent one's claims go back.

Run on both backends; the last test holds two PostgreSQL transactions open at
once, which SQLite (one writer at a time) cannot.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from publisher.store import open_store

LEASE = timedelta(seconds=60)


def _digest(store, now, subscribers: int) -> int:
    with store.transaction():
        for number in range(1, subscribers + 1):
            store.insert_subscriber(f"reader{number}@example.org", "", status="active", now=now)
        digest_id = store.insert_digest((), last_seq=0, now=now)
        store.create_deliveries(digest_id, lambda d, s: f"<{d}.{s}@x>", now=now)
    return digest_id


def _claim(store, digest_id, worker, now, limit=3, **options):
    with store.transaction():
        claimed = store.claim_deliveries(
            digest_id, worker, limit=limit, silent_before=now - LEASE, **options
        )
    return [row.subscriber.id for row in claimed]


def _register(store, now, *workers):
    with store.transaction():
        for worker in workers:
            store.register_sender(worker, now=now)


def test_senders_claim_disjoint_rows_in_subscriber_order(store, now):
    digest_id = _digest(store, now, 7)
    _register(store, now, "a", "b")
    assert _claim(store, digest_id, "a", now) == [1, 2, 3]
    assert _claim(store, digest_id, "b", now) == [4, 5, 6]
    assert _claim(store, digest_id, "a", now) == [7]  # its own claims are not free to it
    assert _claim(store, digest_id, "b", now) == []
    assert store.held_elsewhere(digest_id, "a", silent_before=now - LEASE) == 3
    assert store.held_elsewhere(digest_id, "b", silent_before=now - LEASE) == 4


def test_a_claim_is_sent_only_by_its_holder(store, now):
    digest_id = _digest(store, now, 2)
    _register(store, now, "a", "b")
    assert _claim(store, digest_id, "a", now, limit=1) == [1]
    with store.transaction():
        assert store.mark_sending(digest_id, 1, "b", now=now) is False
        assert store.mark_sending(digest_id, 1, "a", now=now) is True
    rows = store.conn.execute(
        "SELECT subscriber_id, status, worker, attempts FROM deliveries ORDER BY 1"
    ).fetchall()
    assert [tuple(row) for row in rows] == [(1, "sending", "a", 1), (2, "pending", None, 0)]


def test_a_silent_senders_claims_go_back_and_its_sending_rows_stay_uncertain(store, now):
    digest_id = _digest(store, now, 4)
    _register(store, now, "dead")
    assert _claim(store, digest_id, "dead", now, limit=3) == [1, 2, 3]
    with store.transaction():
        store.mark_sending(digest_id, 1, "dead", now=now)  # then it died
    later = now + LEASE + timedelta(seconds=1)
    _register(store, later, "alive")
    assert store.live_senders(since=later - LEASE) == ["alive"]
    # Not before the lease ends, then only its claims that never left: 2 and 3, and 4.
    assert _claim(store, digest_id, "alive", now + timedelta(seconds=30)) == [4]
    assert _claim(store, digest_id, "alive", later, limit=10) == [2, 3]
    stale = store.stale_sending(digest_id, silent_before=later - LEASE)
    assert [row.subscriber.id for row in stale] == [1]
    (counts,) = store.delivery_counts(live=["alive"])
    assert (counts.pending, counts.sending, counts.uncertain) == (3, 0, 1)
    # --resend-uncertain takes the uncertain row too.
    assert _claim(store, digest_id, "alive", later, limit=10, uncertain_too=True) == [1]


def test_sending_rows_are_in_flight_while_their_sender_lives(store, now):
    digest_id = _digest(store, now, 2)
    _register(store, now, "a")
    _claim(store, digest_id, "a", now)
    with store.transaction():
        store.mark_sending(digest_id, 1, "a", now=now)
    (live,) = store.delivery_counts(live=["a"])
    assert (live.pending, live.sending, live.uncertain) == (1, 1, 0)
    assert list(store.iter_failures(live=["a"])) == []
    (gone,) = store.delivery_counts(live=[])
    assert (gone.pending, gone.sending, gone.uncertain) == (1, 0, 1)
    assert [f.email for f in store.iter_failures()] == ["reader1@example.org"]


def test_a_retired_sender_leaves_its_unsent_claims_to_the_others(store, now):
    digest_id = _digest(store, now, 3)
    _register(store, now, "a", "b")
    assert _claim(store, digest_id, "a", now) == [1, 2, 3]
    with store.transaction():
        store.mark_sending(digest_id, 1, "a", now=now)
        store.set_delivery(digest_id, 1, "sent", now=now, reply="250 ok")
        store.retire_sender("a")
    assert store.senders_named("a") == []
    assert _claim(store, digest_id, "b", now) == [2, 3]


def test_the_send_slot_spaces_every_senders_messages(store, now):
    digest_id = _digest(store, now, 1)
    interval = timedelta(milliseconds=250)
    with store.transaction():
        slots = [store.reserve_send_slot(digest_id, now=now, interval=interval) for _ in range(3)]
    assert slots == [now, now + interval, now + 2 * interval]
    with store.transaction():  # a sender arriving late starts from its own now
        late = now + timedelta(seconds=10)
        assert store.reserve_send_slot(digest_id, now=late, interval=interval) == late


@pytest.fixture
def two_stores(postgres_server):
    """Two connections to one PostgreSQL database, as two sending machines have."""
    name = postgres_server.create_database()
    stores = [open_store(postgres_server.url(name)) for _ in range(2)]
    yield stores
    for opened in stores:
        opened.close()
    postgres_server.drop_database(name)


def test_two_open_transactions_skip_each_others_rows_without_waiting(two_stores, now):
    store, second = two_stores
    digest_id = _digest(store, now, 6)
    _register(store, now, "a", "b")
    claimed: list[int] = []
    done = threading.Event()
    with store.transaction():
        first = store.claim_deliveries(digest_id, "a", limit=3, silent_before=now - LEASE)

        def claim_beside() -> None:
            with second.transaction():
                rows = second.claim_deliveries(digest_id, "b", limit=3, silent_before=now - LEASE)
            claimed.extend(row.subscriber.id for row in rows)
            done.set()

        beside = threading.Thread(target=claim_beside)
        beside.start()
        assert done.wait(10), "the second claim waited for the first transaction"
        beside.join(10)
    assert [row.subscriber.id for row in first] == [1, 2, 3]
    assert claimed == [4, 5, 6]
