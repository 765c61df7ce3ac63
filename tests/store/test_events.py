"""store.events: subscriber history, bounce events counted once, nonces, soft-bounce rows."""

from __future__ import annotations

from datetime import timedelta


def _subscriber(store, email, now):
    with store.transaction():
        return store.insert_subscriber(email, "", status="active", now=now)


def _digest_sent(store, digest_id, subscriber_id, now, *, bounce=None):
    with store.transaction():
        store.conn.execute(
            "INSERT INTO digests (id, created_at, watermark, articles) VALUES (?, ?, ?, '[]') "
            "ON CONFLICT DO NOTHING",
            (digest_id, now.isoformat(), now.isoformat()),
        )
        store.conn.execute(
            "INSERT INTO deliveries (digest_id, subscriber_id, status, message_id, updated_at, "
            "bounce) VALUES (?, ?, 'sent', ?, ?, ?)",
            (digest_id, subscriber_id, f"<{digest_id}.{subscriber_id}@x>", now.isoformat(), bounce),
        )


def test_an_event_is_counted_once_by_its_key(store, now):
    ada = _subscriber(store, "ada@example.org", now)
    with store.transaction():
        first = store.claim_bounce_event(
            "postmark 1", "hard", subscriber_id=ada, digest_id=None, source="w", now=now
        )
        again = store.claim_bounce_event(
            "postmark 1", "hard", subscriber_id=ada, digest_id=None, source="w", now=now
        )
    assert (first, again) == (True, False)
    assert store.has_bounce_event("postmark 1")
    assert store.count_bounce_events() == 1


def test_a_nonce_is_accepted_once_and_old_ones_are_forgotten(store, now):
    with store.transaction():
        assert store.claim_nonce("n1", now=now, forget_before=now - timedelta(minutes=5))
        assert not store.claim_nonce("n1", now=now, forget_before=now - timedelta(minutes=5))
    later = now + timedelta(minutes=10)
    with store.transaction():
        assert store.claim_nonce("n1", now=later, forget_before=later - timedelta(minutes=5))


def test_the_history_outlives_the_subscriber_row(store, now):
    ada = _subscriber(store, "ada@example.org", now)
    with store.transaction():
        store.record_event("key-a", ada, change="→active", reason="added", source="cli", now=now)
        store.delete_subscriber(ada)
    (event,) = store.subscriber_events("key-a")
    assert (event.change, event.reason, event.source, event.at) == ("→active", "added", "cli", now)
    row = store.conn.execute("SELECT subscriber_id FROM subscriber_events").fetchone()
    assert row[0] is None


def test_soft_bounces_count_in_a_row_and_a_clean_delivery_between_starts_again(store, now):
    ada = _subscriber(store, "ada@example.org", now)
    for digest_id in (1, 2, 3, 4):
        _digest_sent(store, digest_id, ada, now)
    with store.transaction():
        counts = [store.count_soft_bounce(ada, 1), store.count_soft_bounce(ada, 1)]
        counts.append(store.count_soft_bounce(ada, 2))
        store.set_delivery_bounce(2, ada, "soft 4.2.2")
        counts.append(store.count_soft_bounce(ada, 4))  # 3 went out and did not bounce
        counts.append(store.count_soft_bounce(ada, None))  # no digest known: one more
    assert counts == [1, 1, 2, 1, 2]
    with store.transaction():
        store.reset_soft_bounces(ada)
    assert store.soft_bounces(ada) == 0


def test_the_ledger_shows_the_worst_that_came_back(store, now):
    ada = _subscriber(store, "ada@example.org", now)
    _digest_sent(store, 1, ada, now)
    with store.transaction():
        assert store.set_delivery_bounce(1, ada, "soft 4.2.2")
        assert store.set_delivery_bounce(1, ada, "hard 5.1.1")
        assert store.set_delivery_bounce(1, ada, "soft 4.4.7")  # a hard bounce stays
        assert store.delivery_bounce(1, ada) == "hard 5.1.1"
        assert store.set_delivery_bounce(1, ada, "complaint")
        assert store.set_delivery_bounce(1, ada, "hard 5.1.1")
        assert not store.set_delivery_bounce(2, ada, "hard 5.1.1")  # no such row
    assert store.delivery_bounce(1, ada) == "complaint"
    (counts,) = store.delivery_counts()
    assert (counts.sent, counts.bounced, counts.failed) == (1, 1, 0)
