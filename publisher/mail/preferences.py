"""A subscriber's choices as the forms send them: checked against the site, and saved.

The sign-up form and the preferences page send the same fields (named in
pages.layout): the topics ticked, whether the boxes were on the form at all
(so that none ticked is told apart from none offered), and a cadence. What
a form does not offer stays as it was. A choice that means what the
subscriber has already (every topic is everything; the site's default
cadence for one who never chose another) leaves the stored value alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from publisher.config import SiteConfig, parse_cadence
from publisher.errors import SubscriberError
from publisher.mail.segments import normalise_topics, parse_choice_cadence, segment_for
from publisher.mail.subscribers import store_choices
from publisher.model import Subscriber
from publisher.store import Store

TOPICS, CADENCE = "topics", "cadence"  # where a SubscriberError says the problem is
NO_TOPIC = "choose at least one topic (ticking them all means everything)"


@dataclass(frozen=True, slots=True)
class Choices:
    """Topic slugs (None: everything) and a cadence's text (None: the site's default)."""

    topics: tuple[str, ...] | None = None
    cadence: str | None = None

    @classmethod
    def of(cls, subscriber: Subscriber) -> Choices:
        return cls(subscriber.topics, subscriber.cadence)


def read_choices(
    site: SiteConfig,
    topics: Sequence[str] | None,
    cadence: str | None,
    *,
    current: Choices = Choices(),
) -> Choices:
    """What a form chose, over *current*: *topics* None (no boxes on the form) and
    *cadence* None (no buttons) keep what is there.

    :raises SubscriberError: naming the field: a topic the site does not offer,
        boxes shown and none ticked, or a cadence not offered.
    """
    return Choices(
        current.topics if topics is None else _topics(site, topics),
        current.cadence if cadence is None else _cadence(site, cadence, current.cadence),
    )


def _topics(site: SiteConfig, chosen: Sequence[str]) -> tuple[str, ...] | None:
    offered = [topic.slug for topic in site.topics]
    for slug in chosen:
        if slug not in offered:
            known = ", ".join(offered) if offered else "none: this site has no topics"
            message = f"there is no topic {slug!r} to choose (topics: {known})"
            raise SubscriberError(TOPICS, message)
    if not chosen:
        raise SubscriberError(TOPICS, NO_TOPIC)
    return normalise_topics(site, chosen)


def _cadence(site: SiteConfig, text: str, current: str | None) -> str | None:
    try:
        chosen = parse_choice_cadence(site, text)
    except ValueError as err:
        raise SubscriberError(CADENCE, str(err)) from None
    if current is None and chosen is not None and parse_cadence(chosen) == site.digest.cadence:
        return None  # the default they have: they keep following it
    return chosen


def save_choices(
    store: Store,
    secret: bytes,
    site: SiteConfig,
    subscriber: Subscriber,
    choices: Choices,
    *,
    now: datetime,
    source: str = "web",
) -> Subscriber:
    """Store *choices* for *subscriber*, a line in their history when anything changed.

    Expects the caller to hold the transaction; returns the subscriber as stored now.
    """
    chosen = segment_for(site, choices.topics, choices.cadence).describe(site)
    if not store_choices(
        store,
        secret,
        subscriber,
        choices.topics,
        choices.cadence,
        reason=f"chose {chosen}",
        source=source,
        now=now,
    ):
        return subscriber
    return replace(subscriber, topics=choices.topics, cadence=choices.cadence)
