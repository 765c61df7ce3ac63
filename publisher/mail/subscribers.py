"""Subscribers: validated addresses, and adding, removing and unsubscribing them.

Library code for the `publisher subscribers …` and `publisher unsubscribe`
commands. Functions that write take an open Store and expect the caller to
hold `store.transaction()`, so that one command is one transaction.

Addresses are matched case-insensitively (RFC 5321 §2.4 allows a case-sensitive
local part but discourages relying on it): `Bob@example.org` and
`bob@example.org` are one subscriber, so an unsubscribe can never be undone by
re-importing the same address in other capitals.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Literal

from email_validator import EmailNotValidError, validate_email

from publisher.config import Cadence, SiteConfig
from publisher.errors import SubscriberError
from publisher.mail.segments import offered_cadence, parse_choice_cadence, parse_topics
from publisher.model import Subscriber
from publisher.store import Store, SubscriberEvent
from publisher.tokens import (
    BAD_TOKEN,
    TOKEN_WHERE,
    check_token,
    parse_token,
    suppression_key,
)

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200

AddOutcome = Literal[
    "added", "name updated", "choices updated", "name and choices updated", "already subscribed"
]

# C0 and C1 control characters and DEL: in an address they can only be a
# header injection attempt (CR/LF) or garbage; in a name, terminal escapes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# -- addresses and names -------------------------------------------------------------


def normalise_address(text: str, where: str) -> str:
    """The address in the form we store and send to: domain lower-case, ASCII only.

    An internationalised domain is stored in its IDNA (``xn--``) form and a
    non-ASCII local part is refused, because messages are composed as 7-bit
    headers and sent without SMTPUTF8.

    :raises SubscriberError: naming *where*, quoting the text and saying why.
    """
    stripped = text.strip(" ")
    reason = None
    if not stripped:
        reason = "it is empty"
    elif _CONTROL.search(stripped):
        reason = "it contains a line break or control character"
    else:
        try:
            info = validate_email(stripped, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as err:
            reason = str(err)
        else:
            return str(info.ascii_email or info.normalized)
    message = f"{text!r} is not a valid email address ({reason})"
    raise SubscriberError(where, message)


def normalise_name(text: str, where: str) -> str:
    """A display name on one line: whitespace runs (line breaks too) become one space.

    :raises SubscriberError: for other control characters or an overlong name.
    """
    name = " ".join(text.split())
    if _CONTROL.search(name):
        message = f"name {text!r} contains a control character"
        raise SubscriberError(where, message)
    if len(name) > MAX_NAME_LENGTH:
        message = f"name is longer than {MAX_NAME_LENGTH} characters ({len(name)})"
        raise SubscriberError(where, message)
    return name


def address_key(address: str) -> str:
    """The form two addresses are compared in: case does not matter (module docstring)."""
    return address.lower()


# -- choices: topics and cadence ----------------------------------------------------


class Keep(Enum):
    """A choice the operator did not mention: the stored one stays as it is."""

    STORED = "stored"


KEEP = Keep.STORED
TopicsChoice = tuple[str, ...] | None  # topic slugs; None: everything
CadenceChoice = str | None  # a cadence as stored; None: the site's default
DEFAULT_WORDS = frozenset({"", "default"})


def read_topics(site: SiteConfig, text: str) -> TopicsChoice:
    """Topics as an operator writes them: slugs between commas or spaces; empty: everything.

    "energy,danube", "energy danube" and "Energy, Danube" are one choice;
    "everything" (or an empty text) is everything, and so is every topic.

    :raises ValueError: naming an unknown topic and the ones there are.
    """
    words = [word.lower() for word in re.split(r"[\s,]+", text) if word]
    return parse_topics(site, ",".join(words))


def read_cadence(site: SiteConfig, text: str) -> CadenceChoice:
    """A cadence as an operator writes it; empty or "default": the site's default.

    :raises ValueError: for a cadence that is not written right or not offered.
    """
    if text.strip().lower() in DEFAULT_WORDS:
        return None
    return parse_choice_cadence(site, text)


def chosen_cadence(site: SiteConfig, stored: CadenceChoice) -> Cadence | None:
    """The offered cadence *stored* names; None when they follow the site's default.

    They follow it when they chose none, and when what they chose is no
    longer offered (mail.segments.cadence_of gives them the default then).
    """
    return offered_cadence(site, stored)


def choice_text(topics: TopicsChoice, cadence: CadenceChoice) -> str:
    """Choices in words, for the history: "topics danube, energy; cadence daily at 07:00".

    Topics in the order the store keeps them (sorted), so one choice reads one way.
    """
    shown_topics = "everything" if topics is None else ", ".join(sorted(topics))
    return f"topics {shown_topics}; cadence {'the default' if cadence is None else cadence}"


def set_choices(
    store: Store,
    secret: bytes,
    address: str,
    *,
    topics: TopicsChoice | Keep = KEEP,
    cadence: CadenceChoice | Keep = KEEP,
    now: datetime,
    where: str = "EMAIL",
) -> tuple[Subscriber, bool]:
    """Change what *address* chose, as the operator asked; False when nothing changed.

    Takes values read by `read_topics` and `read_cadence`; KEEP leaves one as
    it is. A change is a line of the address's history. The subscriber's
    status does not matter: choosing changes nothing about being mailed.

    :raises SubscriberError: for an invalid address or one that is not subscribed.
    """
    existing = _subscribed(store, address, where)
    changed = _change_choices(store, secret, existing, topics, cadence, now=now)
    return (_get(store, existing.id) if changed else existing), changed


def _subscribed(store: Store, address: str, where: str) -> Subscriber:
    """The subscriber with *address*, in any capitals.

    :raises SubscriberError: for an invalid address or one that is not subscribed.
    """
    email = normalise_address(address, where)
    existing = store.find_subscriber_any_case(email)
    if existing is None:
        message = f"no subscriber has the address {email!r}"
        raise SubscriberError(where, message)
    return existing


def _change_choices(
    store: Store,
    secret: bytes,
    subscriber: Subscriber,
    topics: TopicsChoice | Keep,
    cadence: CadenceChoice | Keep,
    *,
    now: datetime,
) -> bool:
    new_topics = subscriber.topics if isinstance(topics, Keep) else topics
    new_cadence = subscriber.cadence if isinstance(cadence, Keep) else cadence
    reason = f"choices set by the operator: {choice_text(new_topics, new_cadence)}"
    return store_choices(
        store, secret, subscriber, new_topics, new_cadence, reason=reason, source="cli", now=now
    )


def store_choices(
    store: Store,
    secret: bytes,
    subscriber: Subscriber,
    topics: TopicsChoice,
    cadence: CadenceChoice,
    *,
    reason: str,
    source: str,
    now: datetime,
) -> bool:
    """Store what *subscriber* chose now, and *reason* as a line of their history.

    False, and nothing written, when it is what they have already.
    """
    if _same_topics(topics, subscriber.topics) and cadence == subscriber.cadence:
        return False
    store.set_subscriber_choices(subscriber.id, topics=topics, cadence=cadence, now=now)
    status = subscriber.status
    record(store, secret, subscriber, subscriber.email, status, reason, source=source, now=now)
    return True


def _same_topics(one: TopicsChoice, other: TopicsChoice) -> bool:
    """Whether two choices of topics are one (the store keeps them sorted)."""
    if one is None or other is None:
        return one is other
    return sorted(set(one)) == sorted(set(other))


# -- suppressions -------------------------------------------------------------------

# Why an address may not be subscribed by the operator or an import, by the
# suppression entry's reason or the subscriber row's status.
_REFUSALS = {
    "unsubscribed": "asked not to receive the digest",
    "removed": "asked not to receive the digest",
    "complained": "reported the digest as spam",
    "bounced": "bounced earlier",
}
_ONLY_THEY = "only a sign-up they confirm themselves lifts this"


def suppress(store: Store, secret: bytes, email: str, reason: str, *, now: datetime) -> None:
    """Keep *email* from being subscribed again except by their own confirmed sign-up."""
    store.insert_suppression(suppression_key(secret, email), reason, now=now)


def refusal(store: Store, secret: bytes, email: str, status: str | None) -> str | None:
    """Why *email* must not be subscribed for the operator, or None when it may be.

    An active row may be; otherwise the suppression entry says why (a
    complaint outranks the unsubscribe it caused), and a row from before
    suppressions existed, which has no entry, speaks for itself.
    """
    if status == "active":
        return None
    reason = store.suppression_reason(suppression_key(secret, email)) or status
    return None if reason is None else f"{email} {_REFUSALS[reason]}; skipped"


def record(
    store: Store,
    secret: bytes,
    subscriber: Subscriber | None,
    email: str,
    change: str,
    reason: str,
    *,
    source: str,
    now: datetime,
) -> None:
    """A line of the address's history (`subscribers show`), kept past the row's removal."""
    store.record_event(
        suppression_key(secret, email),
        None if subscriber is None else subscriber.id,
        change=change,
        reason=reason,
        source=source,
        now=now,
    )


# -- operations -----------------------------------------------------------------------


def add_subscriber(
    store: Store,
    secret: bytes,
    address: str,
    name: str,
    *,
    now: datetime,
    where: str = "EMAIL",
    topics: TopicsChoice | Keep = KEEP,
    cadence: CadenceChoice | Keep = KEEP,
) -> tuple[Subscriber, AddOutcome]:
    """Subscribe *address*, as the operator asked.

    An address that unsubscribed, bounced or was removed is refused: consent
    to mail it again can only come from the person, through a sign-up they
    confirm (`subscribe_confirmed`). A non-empty *name* replaces the stored
    one, and *topics* or *cadence*, when given, the stored choice (as
    `set_choices` does); a new subscriber without them gets everything at the
    site's default cadence.

    :raises SubscriberError: for an invalid address or name, or a suppressed address.
    """
    email = normalise_address(address, where)
    name = normalise_name(name, where)
    existing = store.find_subscriber_any_case(email)
    refused = refusal(store, secret, email, existing.status if existing else None)
    if refused is not None:
        message = f"{refused} ({_ONLY_THEY})"
        raise SubscriberError(where, message)
    if existing is None:
        subscriber_id = store.insert_subscriber(
            email,
            name,
            status="active",
            now=now,
            topics=None if isinstance(topics, Keep) else topics,
            cadence=None if isinstance(cadence, Keep) else cadence,
        )
        added = _get(store, subscriber_id)
        reason = "added by the operator"
        if not (isinstance(topics, Keep) and isinstance(cadence, Keep)):
            reason += f" ({choice_text(added.topics, added.cadence)})"
        record(store, secret, added, email, "→active", reason, source="cli", now=now)
        return added, "added"
    renamed = bool(name) and name != existing.name
    if renamed:
        store.set_subscriber_name(existing.id, name, now=now)
    chose = _change_choices(store, secret, existing, topics, cadence, now=now)
    outcomes: dict[tuple[bool, bool], AddOutcome] = {
        (True, True): "name and choices updated",
        (True, False): "name updated",
        (False, True): "choices updated",
        (False, False): "already subscribed",
    }
    outcome = outcomes[renamed, chose]
    return (existing if outcome == "already subscribed" else _get(store, existing.id)), outcome


def subscribe_confirmed(
    store: Store,
    secret: bytes,
    email: str,
    name: str,
    *,
    now: datetime,
    source: str = "web",
    topics: tuple[str, ...] | None = None,
    cadence: str | None = None,
) -> Subscriber:
    """Make *email* active because its owner confirmed a sign-up; lifts any suppression.

    The one path that may undo an unsubscribe, a bounce or a removal (and
    forget the hard failures): the person proved they hold the address and
    asked for the digest. A non-empty *name* replaces the stored one; the
    sign-up's *topics* and *cadence* replace what a former subscriber had.

    :raises SubscriberError: for an invalid address or name.
    """
    email = normalise_address(email, "email")
    name = normalise_name(name, "name")
    lifted = store.suppression_reason(suppression_key(secret, email))
    store.delete_suppression(suppression_key(secret, email))
    reason = "confirmed a sign-up" + (f" (lifts the suppression: {lifted})" if lifted else "")
    existing = store.find_subscriber_any_case(email)
    if existing is None:
        made = store.insert_subscriber(
            email, name, status="active", now=now, topics=topics, cadence=cadence
        )
        added = _get(store, made)
        record(store, secret, added, email, "→active", reason, source=source, now=now)
        return added
    if name and name != existing.name:
        store.set_subscriber_name(existing.id, name, now=now)
    store.set_subscriber_choices(existing.id, topics=topics, cadence=cadence, now=now)
    if existing.status != "active":
        store.set_subscriber_status(existing.id, "active", now=now)
        store.reset_hard_failures(existing.id)
        store.reset_soft_bounces(existing.id)
        change = f"{existing.status}→active"
        record(store, secret, existing, email, change, reason, source=source, now=now)
    return _get(store, existing.id)


def remove_subscriber(
    store: Store,
    secret: bytes,
    address: str,
    *,
    now: datetime,
    where: str = "EMAIL",
    source: str = "cli",
) -> Subscriber:
    """Delete the subscriber, their delivery rows and sign-ups; returns who was removed.

    What stays is a suppression entry (a keyed hash, no address), so that
    neither an old list nor an `add` can subscribe them again. An entry made
    when they unsubscribed or bounced keeps that reason; a row from before
    entries existed gets one from its status.

    :raises SubscriberError: for an invalid address or one that is not subscribed.
    """
    existing = _subscribed(store, address, where)
    reason = "removed" if existing.status == "active" else existing.status
    suppress(store, secret, existing.email, reason, now=now)
    change = f"{existing.status}→removed"
    record(
        store,
        secret,
        existing,
        existing.email,
        change,
        "removed by the operator",
        source=source,
        now=now,
    )
    store.delete_subscriber(existing.id)
    store.delete_signups(existing.email)
    return existing


def token_owner(store: Store, secret: bytes, token: str) -> Subscriber:
    """The subscriber an unsubscribe token was made for.

    :raises SubscriberError: the same message for a malformed, forged or foreign
        token and for an unknown id.
    """
    subscriber_id, _ = parse_token(token)
    subscriber = store.get_subscriber(subscriber_id)
    if subscriber is None or not check_token(secret, token, subscriber):
        raise SubscriberError(TOKEN_WHERE, BAD_TOKEN)
    return subscriber


def unsubscribe(
    store: Store, secret: bytes, token: str, *, now: datetime, source: str = "web"
) -> Subscriber:
    """Mark the token's subscriber unsubscribed and suppressed; doing it again changes nothing.

    Every failure gives the same message, so a token cannot be used to learn
    whether an id or an address exists.

    :raises SubscriberError: for a malformed, forged or foreign token, or an unknown id.
    """
    subscriber = token_owner(store, secret, token)
    suppress(store, secret, subscriber.email, "unsubscribed", now=now)
    if subscriber.status == "unsubscribed":
        return subscriber
    store.set_subscriber_status(subscriber.id, "unsubscribed", now=now)
    change = f"{subscriber.status}→unsubscribed"
    reason = "unsubscribe link" if source == "web" else "unsubscribe token given by the operator"
    record(store, secret, subscriber, subscriber.email, change, reason, source=source, now=now)
    return replace(subscriber, status="unsubscribed")


@dataclass(frozen=True, slots=True)
class History:
    """What is known of an address: its row (None once removed), suppression, events."""

    email: str
    subscriber: Subscriber | None
    suppression: str | None
    soft_bounces: int
    events: tuple[SubscriberEvent, ...]


def history(store: Store, secret: bytes, address: str, *, where: str = "EMAIL") -> History:
    """The address's status and history, kept by its suppression key past a removal.

    :raises SubscriberError: for an invalid address.
    """
    email = normalise_address(address, where)
    subscriber = store.find_subscriber_any_case(email)
    key = suppression_key(secret, email)
    soft = 0 if subscriber is None else store.soft_bounces(subscriber.id)
    events = tuple(store.subscriber_events(key))
    return History(email, subscriber, store.suppression_reason(key), soft, events)


def _get(store: Store, subscriber_id: int) -> Subscriber:
    subscriber = store.get_subscriber(subscriber_id)
    assert subscriber is not None, subscriber_id  # written in this same transaction
    return subscriber
