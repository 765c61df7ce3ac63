"""Sign-up with double opt-in: a request records a pending sign-up and yields a
confirmation link; the button on the page that link opens makes the address an
active subscriber (opening the link alone changes nothing, so a link scanner
cannot subscribe anyone).

Answers never depend on whether an address is known, so the sign-up form
cannot be used to find out who subscribes. Confirmation links expire, and an
address gets at most a few confirmation messages a day, however often
someone types it into the form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from publisher.errors import SubscriberError
from publisher.mail.subscribers import normalise_address, normalise_name, subscribe_confirmed
from publisher.model import Subscriber
from publisher.store import Store

CONFIRMATION_LIFETIME = timedelta(hours=48)
MAX_CONFIRMATIONS_PER_ADDRESS = 3  # per RATE_WINDOW
RATE_WINDOW = timedelta(hours=24)
_TOKEN = re.compile(r"^([1-9][0-9]{0,17})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})$")
_WHERE = "token"
INVALID_LINK = "this confirmation link is not valid; sign up again to get a new one"
USED_LINK = "this confirmation link was already used; sign up again to subscribe"
EXPIRED_LINK = "this confirmation link has expired; sign up again to get a new one"


@dataclass(frozen=True, slots=True)
class SignupRequest:
    """What the form handler does next: send `token` to `email`, or nothing."""

    email: str
    token: str | None  # None: nothing to send (already subscribed, or rate-limited)


def request_signup(
    store: Store,
    secret: bytes,
    address: str,
    name: str,
    *,
    client: str,
    now: datetime,
    topics: tuple[str, ...] | None = None,
    cadence: str | None = None,
) -> SignupRequest:
    """Record a sign-up for *address* with its choices and say whether to send a confirmation.

    *topics* and *cadence* are what the form chose, checked already
    (mail.preferences.read_choices); the confirmation makes the subscriber with them.

    :raises SubscriberError: for an address or name that is not valid.
    """
    email = normalise_address(address, "email")
    clean_name = normalise_name(name, "name")
    store.hold_address(email)
    sent_recently = store.confirmations_sent(email, since=now - RATE_WINDOW)
    # Any capitals: `Bob@example.org` is the subscriber `bob@example.org`.
    will_send = (
        not store.is_active_subscriber(email) and sent_recently < MAX_CONFIRMATIONS_PER_ADDRESS
    )
    store.record_signup_request(email, client=client, now=now, was_sent=will_send)
    # Unconfirmed addresses are kept no longer than their last link works.
    store.forget_signups(
        requests_before=now - RATE_WINDOW, signups_before=now - CONFIRMATION_LIFETIME
    )
    if not will_send:
        return SignupRequest(email, None)
    signup_id = store.save_signup(email, clean_name, now=now, topics=topics, cadence=cadence)
    # The link is checked against the stored sign-up, whose address keeps the
    # capitals it was first given: `Ada@…` then `ada@…` is one sign-up, two good links.
    signup = store.get_signup(signup_id)
    assert signup is not None  # saved in this same transaction
    expires = int((now + CONFIRMATION_LIFETIME).timestamp())
    return SignupRequest(email, _token(secret, signup_id, signup.email, expires))


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A confirmation link that checked out: whose it is, and whether it was used."""

    signup_id: int
    email: str
    name: str
    subscriber: Subscriber | None  # set when the link was used and they are still active
    topics: tuple[str, ...] | None = None  # what the sign-up chose: None is everything
    cadence: str | None = None  # None: the site's default


def check_confirmation(store: Store, secret: bytes, token: str, *, now: datetime) -> Confirmation:
    """Validate a confirmation link without changing anything (for GET and HEAD).

    A used link stays good while its subscriber is active, so a second
    click, or a mail scanner's, gets the same answer.

    :raises SubscriberError: for a forged, truncated, foreign or expired link,
        or a used one whose subscriber has since left.
    """
    match = _TOKEN.match(token.strip())
    if not match:
        raise SubscriberError(_WHERE, INVALID_LINK)
    signup_id, expires = int(match.group(1)), int(match.group(2))
    signup = store.get_signup(signup_id)
    if signup is None or not hmac.compare_digest(
        _token(secret, signup_id, signup.email, expires), token.strip()
    ):
        raise SubscriberError(_WHERE, INVALID_LINK)
    if now.timestamp() > expires:
        raise SubscriberError(_WHERE, EXPIRED_LINK)
    subscriber = None
    if signup.confirmed_at is not None:
        subscriber = store.find_subscriber(signup.email)
        if subscriber is None or subscriber.status != "active":
            raise SubscriberError(_WHERE, USED_LINK)
    return Confirmation(
        signup_id, signup.email, signup.name, subscriber, signup.topics, signup.cadence
    )


def confirm(store: Store, secret: bytes, token: str, *, now: datetime) -> Subscriber:
    """Activate the subscriber a confirmation link was made for (the page's POST).

    :raises SubscriberError: as check_confirmation does.
    """
    checked = check_confirmation(store, secret, token, now=now)
    if checked.subscriber is None:
        # Pressed on two replicas at once: one makes the subscriber, the other
        # waits here and then finds it (checking again), instead of failing on
        # the row the first one inserted.
        store.hold_address(checked.email)
        checked = check_confirmation(store, secret, token, now=now)
    if checked.subscriber is not None:
        return checked.subscriber
    # The person's own confirmation: it lifts an earlier opt-out, which the
    # operator's `subscribers add` and an import never can.
    subscriber = subscribe_confirmed(
        store,
        secret,
        checked.email,
        checked.name,
        now=now,
        topics=checked.topics,
        cadence=checked.cadence,
    )
    store.mark_signup_confirmed(checked.signup_id, now=now)
    return subscriber


def _token(secret: bytes, signup_id: int, email: str, expires: int) -> str:
    message = f"confirm\0{signup_id}\0{email}\0{expires}".encode()
    mac = hmac.new(secret, message, hashlib.sha256).digest()
    return f"{signup_id}.{expires}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
