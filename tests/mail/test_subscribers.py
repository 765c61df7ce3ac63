"""mail.subscribers: addresses, adding, removing, unsubscribing.

A removal or an opt-out leaves a suppression entry, so an old list cannot bring the address
back.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.subscribers import (
    BAD_ADDRESSES,
    BAD_TOKEN_KINDS,
    SECRET,
    bad_tokens,
    dump_subscribers,
    make_subscriber,
)

from publisher.errors import SubscriberError
from publisher.mail.subscribers import (
    add_subscriber,
    normalise_address,
    normalise_name,
    remove_subscriber,
)
from publisher.mail.subscribers import unsubscribe as unsubscribe_token
from publisher.tokens import make_token, suppression_key

pytestmark = pytest.mark.usefixtures("no_env_secret")

# -- addresses and names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ada@example.org", "ada@example.org"),
        ("  ada@example.org ", "ada@example.org"),
        ("Ada@EXAMPLE.ORG", "Ada@example.org"),
        ("juergen@exämple.org", "juergen@xn--exmple-cua.org"),
        ("first.last+news@mail.example.co.uk", "first.last+news@mail.example.co.uk"),
    ],
)
def test_normalise_address(text, expected):
    assert normalise_address(text, "EMAIL") == expected


@pytest.mark.parametrize(("text", "message"), BAD_ADDRESSES)
def test_normalise_address_rejects(text, message):
    with pytest.raises(SubscriberError) as caught:
        normalise_address(text, "people.csv:4")
    assert str(caught.value) == f"people.csv:4: {message}"
    assert caught.value.exit_code == 1


def test_normalise_name():
    assert normalise_name("  Ada \n\t Lovelace ", "EMAIL") == "Ada Lovelace"
    assert normalise_name("", "EMAIL") == ""
    with pytest.raises(SubscriberError) as caught:
        normalise_name("\x1b[31mRed", "EMAIL")
    assert str(caught.value) == "EMAIL: name '\\x1b[31mRed' contains a control character"
    with pytest.raises(SubscriberError) as caught:
        normalise_name("\x9b31mRed", "EMAIL")
    assert str(caught.value) == "EMAIL: name '\\x9b31mRed' contains a control character"
    with pytest.raises(SubscriberError) as caught:
        normalise_name("x" * 201, "EMAIL")
    assert str(caught.value) == "EMAIL: name is longer than 200 characters (201)"


# -- unsubscribe tokens -----------------------------------------------------------------


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_unsubscribe_rejects_bad_tokens(store, now, kind):
    ada = make_subscriber(store, "ada@example.org", now=now)
    token = bad_tokens(SECRET, ada.id, ada.email)[kind]
    before = dump_subscribers(store)
    with pytest.raises(SubscriberError) as caught, store.transaction():
        unsubscribe_token(store, SECRET, token, now=now)
    assert str(caught.value) == "TOKEN: not a valid unsubscribe token"
    assert dump_subscribers(store) == before


def test_unsubscribe_is_idempotent(store, now):
    ada = make_subscriber(store, "ada@example.org", now=now)
    token = make_token(SECRET, ada.id, ada.email)
    with store.transaction():
        first = unsubscribe_token(store, SECRET, token, now=now)
    later = now + timedelta(days=1)
    with store.transaction():
        second = unsubscribe_token(store, SECRET, token, now=later)
    assert first.status == second.status == "unsubscribed"
    assert store.get_subscriber(ada.id) == first
    row = store.conn.execute("SELECT updated_at FROM subscribers WHERE id = ?", (ada.id,))
    assert row.fetchone()[0] == now.isoformat()  # the second call wrote nothing


def test_token_does_not_pass_to_a_reused_id(store, now):
    # SQLite reuses the highest rowid after a delete (PostgreSQL does not); the
    # address in the MAC keeps an old link from unsubscribing whoever gets the id next.
    ada = make_subscriber(store, "ada@example.org", now=now)
    with store.transaction():
        remove_subscriber(store, SECRET, "ada@example.org", now=now)
    grace = make_subscriber(store, "grace@example.org", now=now)
    assert grace.id == ada.id or store.conn.backend == "postgresql"
    token = make_token(SECRET, grace.id, ada.email)  # Ada's old link, had she had this id
    with pytest.raises(SubscriberError), store.transaction():
        unsubscribe_token(store, SECRET, token, now=now)
    assert store.get_subscriber(grace.id) == grace


# -- add and remove ---------------------------------------------------------------


def test_add_outcomes(store, now):
    later = now + timedelta(hours=1)
    with store.transaction():
        ada, outcome = add_subscriber(store, SECRET, "Ada@EXAMPLE.org", " Ada ", now=now)
    assert (ada.email, ada.name, ada.status, ada.created_at, outcome) == (
        "Ada@example.org",
        "Ada",
        "active",
        now,
        "added",
    )
    with store.transaction():
        again, outcome = add_subscriber(store, SECRET, "ada@example.org", "", now=later)
    assert (again, outcome) == (ada, "already subscribed")
    with store.transaction():
        renamed, outcome = add_subscriber(
            store, SECRET, "ada@example.org", "Ada Lovelace", now=later
        )
    assert (renamed.name, outcome) == ("Ada Lovelace", "name updated")


@pytest.mark.parametrize(
    ("status", "why"),
    [
        ("unsubscribed", "asked not to receive the digest"),
        ("bounced", "bounced earlier"),
    ],
)
def test_add_refuses_an_address_that_opted_out(store, now, status, why):
    ada = make_subscriber(store, "ada@example.org", now=now, status=status)
    before = dump_subscribers(store)
    with pytest.raises(SubscriberError) as caught, store.transaction():
        add_subscriber(store, SECRET, "ADA@example.org", "Ada", now=now)
    assert str(caught.value) == (
        f"EMAIL: ADA@example.org {why}; skipped (only a sign-up they confirm themselves lifts this)"
    )
    assert dump_subscribers(store) == before
    assert store.get_subscriber(ada.id).status == status


def test_remove_deletes_the_ledger_rows(store, now):
    ada = make_subscriber(store, "ada@example.org", now=now)
    grace = make_subscriber(store, "grace@example.org", now=now)
    with store.transaction():
        digest_id = store.insert_digest((), last_seq=0, now=now)
        store.create_deliveries(digest_id, lambda d, s: f"<{d}.{s}@x>", now=now)
    with store.transaction():
        removed = remove_subscriber(store, SECRET, "ADA@example.org", now=now)
    assert removed == ada
    assert store.get_subscriber(ada.id) is None
    deliveries = store.conn.execute("SELECT subscriber_id FROM deliveries").fetchall()
    assert deliveries == [(grace.id,)]


def _suppressions(store) -> list[tuple[str, str]]:
    return store.conn.execute("SELECT key, reason FROM suppressions ORDER BY key").fetchall()


@pytest.mark.parametrize(
    ("status", "reason"),
    [("active", "removed"), ("unsubscribed", "unsubscribed"), ("bounced", "bounced")],
)
def test_remove_keeps_a_suppression_with_the_reason(store, now, status, reason):
    # Rows set by hand: as in a database from before suppressions existed.
    make_subscriber(store, "ada@example.org", now=now, status=status)
    with store.transaction():
        remove_subscriber(store, SECRET, "ada@example.org", now=now)
    assert _suppressions(store) == [(suppression_key(SECRET, "ada@example.org"), reason)]


def test_unsubscribe_writes_the_suppression_and_remove_keeps_its_reason(store, now):
    ada = make_subscriber(store, "ada@example.org", now=now)
    token = make_token(SECRET, ada.id, ada.email)
    with store.transaction():
        unsubscribe_token(store, SECRET, token, now=now)
    key = suppression_key(SECRET, "ada@example.org")
    assert _suppressions(store) == [(key, "unsubscribed")]
    with store.transaction():
        unsubscribe_token(store, SECRET, token, now=now + timedelta(days=1))  # again: no change
        remove_subscriber(store, SECRET, "ada@example.org", now=now + timedelta(days=2))
    assert store.conn.execute("SELECT * FROM suppressions").fetchall() == [
        (key, "unsubscribed", now.isoformat())
    ]


def test_a_suppressed_address_is_refused_whatever_its_spelling(store, now):
    make_subscriber(store, "Ada@example.org", now=now)
    with store.transaction():
        remove_subscriber(store, SECRET, "ada@EXAMPLE.org", now=now)
    for spelling in ("Ada@example.org", "ada@example.org", "ADA@example.ORG"):
        with pytest.raises(SubscriberError) as caught:
            add_subscriber(store, SECRET, spelling, "", now=now)
        assert "asked not to receive the digest; skipped" in str(caught.value)
    assert list(store.iter_subscribers()) == []


def test_remove_unknown(store, now):
    make_subscriber(store, "ada@example.org", now=now)
    with pytest.raises(SubscriberError) as caught:
        remove_subscriber(store, SECRET, "grace@example.org", now=now)
    assert str(caught.value) == "EMAIL: no subscriber has the address 'grace@example.org'"
