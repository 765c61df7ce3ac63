"""mail.signups: double opt-in at the library level: links, limits, a second click."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.subscribers import SECRET

from publisher import tokens
from publisher.errors import SubscriberError
from publisher.mail import signups, subscribers


def _request(store, address, now, client="203.0.113.7"):
    with store.transaction():
        return signups.request_signup(store, SECRET, address, "", client=client, now=now)


def test_confirm_activates_and_a_second_click_is_harmless(store, now):
    request = _request(store, "Ada@Example.org", now)
    assert request.email == "Ada@example.org"
    with store.transaction():
        first = signups.confirm(store, SECRET, request.token, now=now + timedelta(hours=1))
        second = signups.confirm(store, SECRET, request.token, now=now + timedelta(hours=2))
    assert first == second
    assert first.status == "active"


def test_the_subscriber_a_confirmation_makes_has_what_the_sign_up_chose(store, now):
    with store.transaction():
        request = signups.request_signup(
            store,
            SECRET,
            "ada@example.org",
            "",
            client="203.0.113.7",
            now=now,
            topics=("oceans",),
            cadence="each article",
        )
    checked = signups.check_confirmation(store, SECRET, request.token, now=now)
    assert (checked.topics, checked.cadence) == (("oceans",), "each article")
    with store.transaction():
        subscriber = signups.confirm(store, SECRET, request.token, now=now)
    assert (subscriber.topics, subscriber.cadence) == (("oceans",), "each article")


def test_a_former_subscriber_confirming_again_gets_the_new_choices(store, now):
    with store.transaction():
        added, _ = subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
        store.set_subscriber_choices(added.id, topics=("oceans",), cadence=None, now=now)
        token = tokens.make_token(SECRET, added.id, added.email)
        subscribers.unsubscribe(store, SECRET, token, now=now)
        request = signups.request_signup(
            store, SECRET, "ada@example.org", "", client="x", now=now, cadence="daily at 07:00"
        )
        again = signups.confirm(store, SECRET, request.token, now=now)
    assert (again.id, again.status) == (added.id, "active")
    assert (again.topics, again.cadence) == (None, "daily at 07:00")


def test_checking_a_link_changes_nothing(store, now):
    request = _request(store, "ada@example.org", now)
    before = [
        store.conn.execute(f"SELECT * FROM {table}").fetchall()
        for table in ("signups", "subscribers", "suppressions")
    ]
    for _ in range(2):
        checked = signups.check_confirmation(store, SECRET, request.token, now=now)
        assert (checked.email, checked.subscriber) == ("ada@example.org", None)
    after = [
        store.conn.execute(f"SELECT * FROM {table}").fetchall()
        for table in ("signups", "subscribers", "suppressions")
    ]
    assert after == before
    assert store.find_subscriber("ada@example.org") is None


def test_a_used_link_does_not_resubscribe_after_an_unsubscribe(store, now):
    request = _request(store, "ada@example.org", now)
    with store.transaction():
        subscriber = signups.confirm(store, SECRET, request.token, now=now)
        token = tokens.make_token(SECRET, subscriber.id, subscriber.email)
        subscribers.unsubscribe(store, SECRET, token, now=now)
    for step in (signups.check_confirmation, signups.confirm):
        with pytest.raises(SubscriberError) as raised, store.transaction():
            step(store, SECRET, request.token, now=now)
        assert raised.value.message == signups.USED_LINK
    assert store.find_subscriber("ada@example.org").status == "unsubscribed"


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda t: t[:-1], signups.INVALID_LINK),
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), signups.INVALID_LINK),
        (lambda t: "9" + t, signups.INVALID_LINK),
        (lambda _t: "", signups.INVALID_LINK),
    ],
)
def test_spoiled_links(store, now, spoil, message):
    request = _request(store, "ada@example.org", now)
    with pytest.raises(SubscriberError) as raised, store.transaction():
        signups.confirm(store, SECRET, spoil(request.token), now=now)
    assert raised.value.message == message
    assert store.find_subscriber("ada@example.org") is None


def test_every_link_works_when_the_address_signs_up_again_in_other_capitals(store, now):
    # One sign-up (the column ignores case) keeps the capitals it was first given;
    # the link sent for "ada@" is checked against it, and must work all the same.
    first = _request(store, "Ada@example.org", now)
    second = _request(store, "ada@example.org", now + timedelta(minutes=1))
    for request in (second, first):
        checked = signups.check_confirmation(store, SECRET, request.token, now=now)
        assert checked.email == "Ada@example.org"
    with store.transaction():
        subscriber = signups.confirm(store, SECRET, second.token, now=now)
        again = signups.confirm(store, SECRET, first.token, now=now)
    assert again == subscriber
    assert (subscriber.email, subscriber.status) == ("Ada@example.org", "active")


def test_expired_link(store, now):
    request = _request(store, "ada@example.org", now)
    with pytest.raises(SubscriberError) as raised, store.transaction():
        signups.confirm(store, SECRET, request.token, now=now + timedelta(hours=48, seconds=1))
    assert raised.value.message == signups.EXPIRED_LINK


def test_at_most_three_confirmations_a_day_per_address(store, now):
    tokens = [
        _request(store, "ada@example.org", now + timedelta(minutes=i)).token for i in range(5)
    ]
    assert [t is not None for t in tokens] == [True, True, True, False, False]
    later = _request(store, "ada@example.org", now + timedelta(hours=25))
    assert later.token is not None


def test_an_active_subscriber_gets_no_confirmation(store, now):
    with store.transaction():
        subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
    assert _request(store, "ADA@example.org", now).token is None


def _suppressed(store) -> list[str]:
    return [row[0] for row in store.conn.execute("SELECT reason FROM suppressions")]


def test_a_removed_address_can_sign_up_again_and_its_confirmation_lifts_the_suppression(store, now):
    with store.transaction():
        subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
        subscribers.remove_subscriber(store, SECRET, "ada@example.org", now=now)
    assert _suppressed(store) == ["removed"]
    request = _request(store, "Ada@example.org", now)
    assert request.token is not None  # the confirmation still goes out
    with store.transaction():
        subscriber = signups.confirm(store, SECRET, request.token, now=now)
    assert (subscriber.email, subscriber.status) == ("Ada@example.org", "active")
    assert _suppressed(store) == []
    with store.transaction():  # and the operator's add sees an ordinary subscriber
        _again, outcome = subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
    assert outcome == "already subscribed"


@pytest.mark.parametrize("status", ["unsubscribed", "bounced"])
def test_a_confirmed_sign_up_reactivates_an_opted_out_row(store, now, status):
    with store.transaction():
        ada, _ = subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
        for _ in range(3):
            store.record_hard_failure(ada.id, bounce_after=9, now=now)
        store.set_subscriber_status(ada.id, status, now=now)
        subscribers.suppress(store, SECRET, ada.email, status, now=now)
    with pytest.raises(SubscriberError), store.transaction():
        subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
    request = _request(store, "ada@example.org", now)
    with store.transaction():
        subscriber = signups.confirm(store, SECRET, request.token, now=now)
    assert (subscriber.id, subscriber.status, subscriber.hard_failures) == (ada.id, "active", 0)
    assert _suppressed(store) == []


@pytest.mark.parametrize(("kind", "status"), [("hard", "bounced"), ("complaint", "unsubscribed")])
def test_only_a_confirmed_sign_up_lifts_a_bounce_or_complaint_and_says_so(store, now, kind, status):
    from publisher.delivery.bounces.actions import Bounce, apply_bounce

    with store.transaction():
        ada, _ = subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
        token = tokens.bounce_token(SECRET, 0, ada.id)
        bounce = Bounce(kind, "event 1", "webhook postmark event 1", status="5.1.1", token=token)
        apply_bounce(store, SECRET, bounce, soft_limit=3, now=now)
    assert store.get_subscriber(ada.id).status == status
    with pytest.raises(SubscriberError), store.transaction():
        subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
    request = _request(store, "ada@example.org", now)
    with store.transaction():
        confirmed = signups.confirm(store, SECRET, request.token, now=now + timedelta(hours=1))
    assert (confirmed.id, confirmed.status) == (ada.id, "active")
    key = tokens.suppression_key(SECRET, "ada@example.org")
    assert store.suppression_reason(key) is None
    last = store.subscriber_events(key)[-1]
    reason = "complained" if kind == "complaint" else "bounced"
    assert (last.change, last.reason, last.source) == (
        f"{status}→active",
        f"confirmed a sign-up (lifts the suppression: {reason})",
        "web",
    )
