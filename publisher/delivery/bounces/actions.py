"""One bounce or complaint applied to the store: the thresholds, the history, the suppression list.

Hard bounce: `bounced` at once. Soft bounce: `bounced` after `[bounces]
soft_limit` in a row. Complaint: `unsubscribed` at once and suppressed as
`complained`. Each is counted once by its idempotency key, recorded in the
subscriber's history with its reason and source, and shown on the ledger
row of the delivery it answers (only when a valid token names that row).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from publisher import tokens
from publisher.model import Subscriber
from publisher.store import Store

logger = logging.getLogger(__name__)

BounceKind = Literal["hard", "soft", "complaint"]
Outcome = Literal["hard bounce", "soft bounce", "complaint", "duplicate", "not attributable"]

# RFC 3463 §3: the subject and detail of the commonest enhanced status codes.
_STATUS_TEXT = {
    "1.1": "user unknown",
    "1.2": "bad destination domain",
    "1.3": "bad destination address syntax",
    "1.10": "recipient address has null MX",
    "2.1": "mailbox disabled",
    "2.2": "mailbox full",
    "2.3": "message too long",
    "4.1": "no answer from host",
    "4.4": "unable to route",
    "4.7": "delivery time expired",
    "7.1": "delivery not authorised, message refused",
    "7.26": "authentication failed (DMARC, SPF or DKIM)",
}
_SUBJECT_TEXT = {
    "0": "other or undefined status",
    "1": "addressing status",
    "2": "mailbox status",
    "3": "mail system status",
    "4": "network and routing status",
    "5": "mail delivery protocol status",
    "6": "message content or media status",
    "7": "security or policy status",
}


_OUTCOMES: dict[BounceKind, Outcome] = {
    "hard": "hard bounce",
    "soft": "soft bounce",
    "complaint": "complaint",
}


@dataclass(frozen=True, slots=True)
class Bounce:
    """A bounce or complaint, as a mailbox message or a provider's event reported it."""

    kind: BounceKind
    key: str  # idempotency key: "message <Message-ID>", "postmark 12345", …
    source: str  # where it came from, for the history: "webhook postmark event 12345"
    status: str = ""  # the enhanced status code, "5.1.1"; "" when none was given
    detail: str = ""  # a short description, when the status code says nothing
    token: str | None = None  # the bounce token it carried (VERP or X-Publisher-Delivery)
    recipient: str | None = None  # the address it names (used without a token, see apply)

    @property
    def reason(self) -> str:
        """ "hard bounce 5.1.1 user unknown": the line the history and the ledger show."""
        if self.kind == "complaint":
            return f"spam complaint{' (' + self.detail + ')' if self.detail else ''}"
        parts = [f"{self.kind} bounce"]
        if self.status:
            parts.append(self.status)
        parts.append(self.detail or status_text(self.status))
        return " ".join(part for part in parts if part)

    @property
    def ledger_text(self) -> str:
        """What the ledger row shows: "hard 5.1.1", "soft 4.2.2", "complaint"."""
        return (
            self.kind
            if self.kind == "complaint" or not self.status
            else f"{self.kind} {self.status}"
        )


def status_text(status: str) -> str:
    """RFC 3463's words for an enhanced status code ("" for none)."""
    _class, _dot, rest = status.partition(".")
    if not rest:
        return ""
    subject, _dot, _detail = rest.partition(".")
    return _STATUS_TEXT.get(rest, _SUBJECT_TEXT.get(subject, ""))


@dataclass(frozen=True, slots=True)
class Applied:
    """What one bounce did: the outcome, whom it concerned, and what changed."""

    outcome: Outcome
    email: str | None = None
    change: str = ""  # "active→bounced", or "" when the status stayed

    def line(self) -> str:
        if self.email is None:
            return self.outcome
        if self.outcome == "duplicate":
            return f"duplicate ({self.email}): counted before, nothing changed"
        return f"{self.outcome} ({self.email}{': ' + self.change if self.change else ''})"


def apply_bounce(
    store: Store,
    secret: bytes,
    bounce: Bounce,
    *,
    soft_limit: int,
    now: datetime,
    by_recipient: bool = False,
) -> Applied:
    """Count *bounce* once, in the caller's transaction; returns what it did.

    It is attributed by its token (only a valid MAC counts); with
    *by_recipient* (an authenticated provider's event), by the recipient
    address when it is an active subscriber's. The ledger row is updated
    only through a token, which names exactly one delivery.
    """
    found = _attribute(store, secret, bounce, by_recipient=by_recipient)
    if found is None:
        return Applied("not attributable")
    subscriber, digest_id = found
    if not store.claim_bounce_event(
        bounce.key,
        bounce.kind,
        subscriber_id=subscriber.id,
        digest_id=digest_id,
        source=bounce.source,
        now=now,
    ):
        return Applied("duplicate", subscriber.email)
    if digest_id:
        store.set_delivery_bounce(digest_id, subscriber.id, bounce.ledger_text)
    new_status, reason = _decide(store, subscriber, bounce, digest_id, soft_limit)
    key = tokens.suppression_key(secret, subscriber.email)
    change = subscriber.status if new_status is None else f"{subscriber.status}→{new_status}"
    if new_status is not None:
        store.set_subscriber_status(subscriber.id, new_status, now=now)
    if bounce.kind == "complaint":
        store.set_suppression(key, "complained", now=now)
    elif new_status == "bounced":
        store.insert_suppression(key, "bounced", now=now)
    store.record_event(
        key, subscriber.id, change=change, reason=reason, source=bounce.source, now=now
    )
    outcome: Outcome = _OUTCOMES[bounce.kind]
    logger.info("%s: %s: %s (%s)", bounce.source, subscriber.email, reason, change)
    return Applied(outcome, subscriber.email, change if new_status else "")


def _decide(
    store: Store, subscriber: Subscriber, bounce: Bounce, digest_id: int | None, soft_limit: int
) -> tuple[str | None, str]:
    """The status the subscriber moves to (None: stays) and the reason the history records."""
    reason = bounce.reason
    if bounce.kind == "complaint":
        return (None if subscriber.status == "unsubscribed" else "unsubscribed"), reason
    if bounce.kind == "hard":
        return (None if subscriber.status != "active" else "bounced"), reason
    count = store.count_soft_bounce(subscriber.id, digest_id)
    reason = f"{reason} ({count} of {soft_limit} in a row)"
    if count >= soft_limit and subscriber.status == "active":
        return "bounced", reason
    return None, reason


def _attribute(
    store: Store, secret: bytes, bounce: Bounce, *, by_recipient: bool
) -> tuple[Subscriber, int | None] | None:
    """(subscriber, digest id or None) the bounce is about, or None when nothing says."""
    if bounce.token is not None:
        ids = tokens.read_bounce_token(secret, bounce.token)
        if ids is not None:
            digest_id, subscriber_id = ids
            subscriber = store.get_subscriber(subscriber_id)
            if subscriber is not None:
                return subscriber, digest_id
            return None  # removed since: its suppression entry already holds
        logger.info("%s: token %r is forged or from another site", bounce.source, bounce.token)
    if by_recipient and bounce.recipient:
        subscriber = store.find_subscriber_any_case(bounce.recipient)
        if subscriber is not None and subscriber.status == "active":
            return subscriber, None
    return None
