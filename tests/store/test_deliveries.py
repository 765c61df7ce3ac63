"""store.deliveries: the delivery ledger's transitions and counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from publisher.errors import StoreError


def _digest_for(store, now, *statuses: str) -> int:
    """One subscriber per status (reader1@, reader2@, …), then digest 1 and its ledger."""
    with store.transaction():
        for number, status in enumerate(statuses, 1):
            store.insert_subscriber(f"reader{number}@example.org", "", status=status, now=now)
        digest_id = store.insert_digest((), last_seq=0, now=now)
        store.create_deliveries(digest_id, lambda d, s: f"<{d}.{s}@x>", now=now)
    return digest_id


def _row(store, digest_id: int, subscriber_id: int) -> tuple:
    return store.conn.execute(
        "SELECT status, attempts, last_error, reply, message_id, updated_at FROM deliveries "
        "WHERE digest_id = ? AND subscriber_id = ?",
        (digest_id, subscriber_id),
    ).fetchone()


def test_a_new_digest_gets_one_pending_row_per_active_subscriber(store, now):
    digest_id = _digest_for(store, now, "active", "unsubscribed", "active", "bounced")
    rows = list(store.iter_deliveries(digest_id, ("pending",)))
    assert [(r.subscriber.email, r.status, r.attempts, r.message_id) for r in rows] == [
        ("reader1@example.org", "pending", 0, f"<{digest_id}.1@x>"),
        ("reader3@example.org", "pending", 0, f"<{digest_id}.3@x>"),
    ]
    with store.transaction():  # made again, as a resumed run might: nothing doubles or changes
        store.create_deliveries(digest_id, lambda _d, _s: "<another@x>", now=now)
    assert store.count_deliveries(digest_id, ("pending", "sending", "sent", "failed")) == 2
    assert _row(store, digest_id, 1)[4] == f"<{digest_id}.1@x>"


def test_a_row_goes_pending_sending_sent_counting_its_attempts(store, now):
    digest_id = _digest_for(store, now, "active")
    later = now + timedelta(minutes=1)
    with store.transaction():
        store.set_delivery(digest_id, 1, "sending", now=now, count_attempt=True)
    assert _row(store, digest_id, 1)[:2] == ("sending", 1)
    with store.transaction():
        store.set_delivery(digest_id, 1, "pending", now=now, error="451 4.3.0 Try again later")
        store.set_delivery(digest_id, 1, "sending", now=later, count_attempt=True)
        store.set_delivery(digest_id, 1, "sent", now=later, reply="250 2.0.0 Ok: queued as 7")
    # The error of the failed attempt is kept beside the reply of the one that went through.
    assert _row(store, digest_id, 1) == (
        "sent",
        2,
        "451 4.3.0 Try again later",
        "250 2.0.0 Ok: queued as 7",
        f"<{digest_id}.1@x>",
        later.isoformat(),
    )


def test_a_row_that_is_not_in_the_ledger_cannot_be_set(store, now):
    digest_id = _digest_for(store, now, "active", "unsubscribed")
    for subscriber_id in (2, 99):  # not active when the digest was made; nobody
        with pytest.raises(StoreError) as raised, store.transaction():
            store.set_delivery(digest_id, subscriber_id, "sent", now=now)
        assert str(raised.value) == (
            f"{store.where}: no delivery row for digest {digest_id}, subscriber {subscriber_id}"
        )


def test_counts_per_digest_come_newest_first(store, now):
    first = _digest_for(store, now, "active", "active", "active", "active")
    with store.transaction():
        store.set_delivery(first, 1, "sent", now=now)
        store.set_delivery(first, 2, "failed", now=now, error="550 5.1.1 no such user")
        store.set_delivery(first, 3, "sending", now=now)
        second = store.insert_digest((), last_seq=0, now=now + timedelta(days=7))
    newest, oldest = store.delivery_counts()
    assert (newest.digest_id, newest.created_at, newest.articles) == (
        second,
        now + timedelta(days=7),
        0,
    )
    assert (newest.pending, newest.uncertain, newest.sent, newest.failed) == (0, 0, 0, 0)
    assert oldest.digest_id == first
    assert (oldest.pending, oldest.uncertain, oldest.sent, oldest.failed) == (1, 1, 1, 1)
    assert oldest.sending == 0  # no sender holds it: left by one that stopped
    assert store.delivery_counts(first) == [oldest]
    assert store.count_deliveries(first, ("sent", "sending")) == 2


def test_failures_are_the_failed_and_uncertain_rows_by_digest_then_address(store, now):
    first = _digest_for(store, now, "active", "active", "active")
    with store.transaction():
        store.insert_subscriber("Aaron@example.org", "", status="active", now=now)
        second = store.insert_digest((), last_seq=0, now=now)
        store.create_deliveries(second, lambda d, s: f"<{d}.{s}@x>", now=now)
        store.set_delivery(first, 3, "failed", now=now, error="550 5.1.1 no such user")
        store.set_delivery(first, 1, "sending", now=now)  # uncertain: no reply recorded
        store.set_delivery(first, 2, "sent", now=now, reply="250 2.0.0 Ok")
        store.set_delivery(second, 4, "failed", now=now, reply="554 5.7.1 refused")
        store.set_delivery(second, 1, "failed", now=now, error="552 5.2.2 mailbox full")
    assert [(f.digest_id, f.email, f.status, f.reply) for f in store.iter_failures()] == [
        (first, "reader1@example.org", "sending", None),
        (first, "reader3@example.org", "failed", "550 5.1.1 no such user"),
        (second, "Aaron@example.org", "failed", "554 5.7.1 refused"),
        (second, "reader1@example.org", "failed", "552 5.2.2 mailbox full"),
    ]
    assert [f.email for f in store.iter_failures(second)] == [
        "Aaron@example.org",
        "reader1@example.org",
    ]


def test_rows_stream_by_subscriber_id_past_one_page(store, now):
    digest_id = _digest_for(store, now, *["active"] * 1201)
    ids = [row.subscriber.id for row in store.iter_deliveries(digest_id, ("pending",))]
    assert ids == list(range(1, 1202))
