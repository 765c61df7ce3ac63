"""store.subscribers: subscribers, hard failures and the suppression list."""

from __future__ import annotations

from datetime import timedelta


def _insert(store, email: str, status: str = "active", *, now) -> int:
    with store.transaction():
        return store.insert_subscriber(email, "", status=status, now=now)


def test_an_address_is_found_in_any_case_its_exact_spelling_first(store, now):
    first = _insert(store, "Ada@Example.org", now=now)
    second = _insert(store, "ada@example.org", "unsubscribed", now=now)
    assert store.find_subscriber("ADA@example.org") is None  # the exact spelling only
    assert store.find_subscriber_any_case("ada@example.org").id == second
    assert store.find_subscriber_any_case("ADA@EXAMPLE.ORG").id == first  # the oldest
    assert store.find_subscriber_any_case("bo@example.org") is None
    assert store.is_active_subscriber("ADA@EXAMPLE.ORG")  # one spelling of it is
    assert not store.is_active_subscriber("bo@example.org")


def test_hard_failures_mark_an_active_subscriber_bounced_once_at_the_limit(store, now):
    ada = _insert(store, "ada@example.org", now=now)
    with store.transaction():
        marked = [store.record_hard_failure(ada, bounce_after=3, now=now) for _ in range(4)]
    assert marked == [False, False, True, False]  # the third; the fourth finds them bounced
    subscriber = store.get_subscriber(ada)
    assert (subscriber.status, subscriber.hard_failures) == ("bounced", 4)


def test_a_delivery_between_hard_failures_starts_the_count_again(store, now):
    ada = _insert(store, "ada@example.org", now=now)
    with store.transaction():
        store.record_hard_failure(ada, bounce_after=2, now=now)
        store.reset_hard_failures(ada)
        assert not store.record_hard_failure(ada, bounce_after=2, now=now)
    subscriber = store.get_subscriber(ada)
    assert (subscriber.status, subscriber.hard_failures) == ("active", 1)


def test_a_change_of_name_or_status_keeps_when_they_subscribed(store, now):
    ada = _insert(store, "ada@example.org", now=now)
    later = now + timedelta(hours=1)
    with store.transaction():
        store.set_subscriber_name(ada, "Ada Lovelace", now=later)
        store.set_subscriber_status(ada, "unsubscribed", now=later)
    subscriber = store.get_subscriber(ada)
    assert (subscriber.name, subscriber.status, subscriber.created_at) == (
        "Ada Lovelace",
        "unsubscribed",
        now,
    )
    updated = store.conn.execute("SELECT updated_at FROM subscribers").fetchone()[0]
    assert updated == later.isoformat()


def test_a_suppression_keeps_its_first_reason(store, now):
    with store.transaction():
        store.insert_suppression("key-1", "unsubscribed", now=now)
        store.insert_suppression("key-1", "removed", now=now + timedelta(days=1))
        store.insert_suppression("key-2", "bounced", now=now)
    assert store.suppression_reason("key-1") == "unsubscribed"
    assert store.suppression_reason("key-3") is None
    assert store.count_suppressions() == 2
    with store.transaction():
        store.delete_suppression("key-1")
    assert (store.suppression_reason("key-1"), store.count_suppressions()) == (None, 1)


def test_subscribers_stream_by_id_past_one_page_and_count_by_status(store, now):
    with store.transaction():
        for number in range(1, 1203):
            status = "unsubscribed" if number % 3 == 0 else "active"
            store.insert_subscriber(f"reader{number}@example.org", "", status=status, now=now)
    assert [s.id for s in store.iter_subscribers()] == list(range(1, 1203))
    unsubscribed = [s.id for s in store.iter_subscribers(status="unsubscribed")]
    assert unsubscribed == list(range(3, 1203, 3))
    assert store.subscriber_counts() == {"active": 802, "unsubscribed": 400}
