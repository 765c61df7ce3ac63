"""store.signups: pending sign-ups and the log the rate limit reads."""

from __future__ import annotations

from datetime import timedelta

from publisher.store import Signup


def test_a_sign_up_made_again_keeps_its_id_and_waits_for_confirmation_again(store, now):
    with store.transaction():
        first = store.save_signup("ada@example.org", "Ada", now=now)
        store.mark_signup_confirmed(first, now=now)
    assert store.get_signup(first) == Signup("ada@example.org", "Ada", now.isoformat())
    with store.transaction():
        again = store.save_signup("ADA@example.org", "Ada L", now=now + timedelta(hours=1))
    assert again == first  # addresses are compared without case
    assert store.get_signup(first) == Signup("ada@example.org", "Ada L", None)
    assert store.get_signup(first + 1) is None


def test_only_confirmations_sent_since_the_window_began_count(store, now):
    with store.transaction():
        for hours_ago, was_sent in ((25, True), (1, True), (0, False)):
            store.record_signup_request(
                "Ada@example.org",
                client="203.0.113.7",
                now=now - timedelta(hours=hours_ago),
                was_sent=was_sent,
            )
        store.record_signup_request("bo@example.org", client="x", now=now, was_sent=True)
    assert store.confirmations_sent("ADA@EXAMPLE.ORG", since=now - timedelta(hours=24)) == 1


def test_forgetting_drops_old_requests_and_expired_sign_ups(store, now):
    with store.transaction():
        old = store.save_signup("old@example.org", "", now=now - timedelta(days=3))
        new = store.save_signup("new@example.org", "", now=now)
        for address, age in (("old@example.org", 2), ("new@example.org", 0)):
            when = now - timedelta(days=age)
            store.record_signup_request(address, client="x", now=when, was_sent=True)
        store.forget_signups(
            requests_before=now - timedelta(days=1), signups_before=now - timedelta(days=2)
        )
    assert store.get_signup(old) is None
    assert store.get_signup(new) == Signup("new@example.org", "", None)
    emails = store.conn.execute("SELECT email FROM signup_requests").fetchall()
    assert emails == [("new@example.org",)]


def test_an_address_s_sign_ups_are_deleted_in_any_case(store, now):
    with store.transaction():
        ada = store.save_signup("Ada@example.org", "", now=now)
        bo = store.save_signup("bo@example.org", "", now=now)
        store.record_signup_request("ada@example.org", client="x", now=now, was_sent=True)
        store.record_signup_request("bo@example.org", client="x", now=now, was_sent=True)
        store.delete_signups("ADA@EXAMPLE.ORG")
    assert store.get_signup(ada) is None
    assert store.get_signup(bo) is not None
    emails = store.conn.execute("SELECT email FROM signup_requests").fetchall()
    assert emails == [("bo@example.org",)]


def test_a_sign_up_keeps_what_its_form_chose_and_a_renewed_one_the_latest_choice(store, now):
    with store.transaction():
        first = store.save_signup(
            "ada@example.org", "", now=now, topics=("oceans", "diplomacy"), cadence="daily at 07:00"
        )
    assert store.get_signup(first) == Signup(
        "ada@example.org", "", None, ("diplomacy", "oceans"), "daily at 07:00"
    )
    with store.transaction():
        store.save_signup("ada@example.org", "", now=now + timedelta(hours=1))
    assert store.get_signup(first) == Signup("ada@example.org", "", None, None, None)
