"""mail.subscribers: addresses, adding, removing, unsubscribing, and what each one chose.

A removal or an opt-out leaves a suppression entry, so an old list cannot bring the address
back.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.subscribers import (
    BAD_ADDRESSES,
    BAD_TOKEN_KINDS,
    CHOOSING_SITE,
    PLAIN_SITE,
    SECRET,
    bad_tokens,
    dump_subscribers,
    make_subscriber,
)

from publisher.config import EACH_ARTICLE, Cadence
from publisher.errors import SubscriberError
from publisher.mail.subscribers import (
    KEEP,
    add_subscriber,
    chosen_cadence,
    normalise_address,
    normalise_name,
    read_cadence,
    read_topics,
    remove_subscriber,
    set_choices,
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


# -- choices: topics and cadence ----------------------------------------------------------

UNKNOWN = "(topics: energy, danube, arms-control; or 'everything')"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("energy", ("energy",)),
        ("danube,energy", ("energy", "danube")),  # the config's order
        ("danube energy", ("energy", "danube")),
        (" Energy ,  Danube ", ("energy", "danube")),
        ("energy,,energy", ("energy",)),
        ("energy,danube,arms-control", None),  # every topic is everything
        ("", None),
        ("   ", None),
        ("everything", None),
        ("All", None),
        ("*", None),
    ],
)
def test_read_topics(text, expected):
    assert read_topics(CHOOSING_SITE, text) == expected


@pytest.mark.parametrize(
    ("site", "text", "message"),
    [
        (CHOOSING_SITE, "sport", f"unknown topic 'sport' {UNKNOWN}"),
        (CHOOSING_SITE, "energy;danube", f"unknown topic 'energy;danube' {UNKNOWN}"),
        (CHOOSING_SITE, "everything,energy", f"unknown topic 'everything' {UNKNOWN}"),
        (
            PLAIN_SITE,
            "energy",
            "unknown topic 'energy' (topics: none: this site has no [topics]; or 'everything')",
        ),
    ],
)
def test_read_topics_refuses(site, text, message):
    with pytest.raises(ValueError, match=r".") as caught:
        read_topics(site, text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("default", None),
        (" Default ", None),
        ("daily at 7:00", "daily at 07:00"),
        ("EACH   article", "each article"),
        ("weekly on Monday at 07:00", "weekly on monday at 07:00"),  # chosen, not the default
    ],
)
def test_read_cadence(text, expected):
    assert read_cadence(CHOOSING_SITE, text) == expected


@pytest.mark.parametrize(
    ("site", "text", "message"),
    [
        (
            CHOOSING_SITE,
            "daily at 09:00",
            "'daily at 09:00' is not offered ([digest] cadences: "
            "'weekly on monday at 07:00', 'daily at 07:00', 'each article')",
        ),
        (
            PLAIN_SITE,
            "each article",
            "'each article' is not offered ([digest] cadences: 'weekly on monday at 07:00')",
        ),
        (
            CHOOSING_SITE,
            "hourly",
            "expected 'daily at HH:MM', 'weekly on <day> at HH:MM' or 'each article' ('hourly')",
        ),
    ],
)
def test_read_cadence_refuses(site, text, message):
    with pytest.raises(ValueError, match=r".") as caught:
        read_cadence(site, text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, None),
        ("daily at 07:00", Cadence(None, 7, 0)),
        ("each article", EACH_ARTICLE),
        ("weekly on monday at 07:00", Cadence(0, 7, 0)),
        ("daily at 09:00", None),  # no longer offered: the default
        ("now and then", None),  # not a cadence at all (written by hand)
    ],
)
def test_chosen_cadence(stored, expected):
    assert chosen_cadence(CHOOSING_SITE, stored) == expected


def _events(store, email: str) -> list[tuple[str, str]]:
    return [(e.change, e.reason) for e in store.subscriber_events(suppression_key(SECRET, email))]


def test_set_choices_changes_them_and_records_each_change(store, now):
    ada = make_subscriber(store, "ada@example.org", now=now)
    later = now + timedelta(hours=1)
    with store.transaction():
        changed, did = set_choices(store, SECRET, "ADA@example.org", topics=("energy",), now=later)
    assert did
    assert (changed.topics, changed.cadence, changed.status) == (("energy",), None, "active")
    with store.transaction():
        changed, did = set_choices(
            store, SECRET, "ada@example.org", cadence="each article", now=later
        )
    assert (changed.topics, changed.cadence, did) == (("energy",), "each article", True)
    with store.transaction():  # the same again: nothing written, nothing recorded
        same, did = set_choices(
            store, SECRET, "ada@example.org", topics=("energy",), cadence=KEEP, now=later
        )
    assert (same, did) == (changed, False)
    with store.transaction():
        reset, did = set_choices(
            store, SECRET, "ada@example.org", topics=None, cadence=None, now=later
        )
    assert (reset.topics, reset.cadence, did) == (None, None, True)
    assert _events(store, ada.email) == [
        ("→active", "added by the operator"),
        ("active", "choices set by the operator: topics energy; cadence the default"),
        ("active", "choices set by the operator: topics energy; cadence each article"),
        ("active", "choices set by the operator: topics everything; cadence the default"),
    ]


def test_set_choices_of_one_who_unsubscribed_keeps_them_unsubscribed(store, now):
    gone = make_subscriber(store, "gone@example.org", now=now, status="unsubscribed")
    with store.transaction():
        changed, _ = set_choices(store, SECRET, gone.email, cadence="daily at 07:00", now=now)
    assert (changed.status, changed.cadence) == ("unsubscribed", "daily at 07:00")
    assert _events(store, gone.email)[-1] == (
        "unsubscribed",
        "choices set by the operator: topics everything; cadence daily at 07:00",
    )


def test_set_choices_of_nobody(store, now):
    before = dump_subscribers(store)
    with pytest.raises(SubscriberError) as caught:
        set_choices(store, SECRET, "bo@example.org", topics=None, now=now)
    assert str(caught.value) == "EMAIL: no subscriber has the address 'bo@example.org'"
    with pytest.raises(SubscriberError) as caught:
        set_choices(store, SECRET, "bo", topics=None, now=now, where="people.csv:3")
    assert str(caught.value).startswith("people.csv:3: 'bo' is not a valid email address (")
    assert dump_subscribers(store) == before


def test_add_with_choices(store, now):
    with store.transaction():
        ada, outcome = add_subscriber(
            store, SECRET, "ada@example.org", "", topics=("danube", "energy"), now=now
        )
    assert (ada.topics, ada.cadence, outcome) == (("danube", "energy"), None, "added")
    with store.transaction():
        again, outcome = add_subscriber(
            store, SECRET, "ada@example.org", "", topics=("energy", "danube"), now=now
        )
    assert (again, outcome) == (ada, "already subscribed")
    with store.transaction():
        changed, outcome = add_subscriber(
            store, SECRET, "ada@example.org", "Ada", cadence="each article", now=now
        )
    assert (changed.name, changed.topics, changed.cadence, outcome) == (
        "Ada",
        ("danube", "energy"),
        "each article",
        "name and choices updated",
    )
    assert _events(store, ada.email)[0] == (
        "→active",
        "added by the operator (topics danube, energy; cadence the default)",
    )
