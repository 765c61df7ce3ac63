"""What `publisher status` reports: the last build, the service, the digests and the subscribers.

Read from what the runs left in the store, from the lock file and from the
digest cadence; nothing is written. A site never built has no state
database, and looking must not make one (opening the store creates it), so
then the status says "never" and "none" without opening it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from publisher.config import SiteConfig
from publisher.delivery import send
from publisher.mail import segments
from publisher.mail.segments import Segment
from publisher.model import DeliveryCounts
from publisher.service.lock import holder
from publisher.service.scheduler import next_slot
from publisher.store import Store, open_store, settings, state_exists
from publisher.store.subscribers import topics_from


@dataclass(frozen=True, slots=True)
class BuildCounts:
    """The articles the last build loaded, and what became of them."""

    loaded: int
    published: int
    drafts: int
    scheduled: int


@dataclass(frozen=True, slots=True)
class SegmentStatus:
    """One segment: who is in it, when its next digest is due, and its latest digest."""

    description: str  # "Energy · daily at 07:00"
    active: int
    upcoming: datetime | None  # None for "each article": whenever something is published
    last_digest: DeliveryCounts | None = None


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """One site's state at one moment; times are aware, None where there is none yet."""

    upcoming_digest: datetime  # the next digest time by the cadence, in the site's time zone
    last_build: datetime | None = None
    counts: BuildCounts | None = None  # of the last build
    next_article: datetime | None = None  # when the next scheduled article comes due
    lock_holder: str | None = None  # "pid 42, `publisher run`, since …", while held
    next_rebuild: datetime | None = None  # as the service noted it
    next_digest: datetime | None = None  # the digest slot the service noted next
    last_digest: DeliveryCounts | None = None  # the latest digest and its ledger
    active: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    suppressed: int = 0  # addresses on the suppression list (a count: it holds none readable)
    segments: tuple[SegmentStatus, ...] = ()  # those with active subscribers, largest first

    @property
    def service_running(self) -> bool:
        """Whether the lock is held by `publisher run` (not `run --once`, a build or a send)."""
        return self.lock_holder is not None and "`publisher run`" in self.lock_holder


def site_status(site: SiteConfig, *, now: datetime) -> SiteStatus:
    """The status of *site* at *now*, creating nothing (no state folder, database or secret)."""
    upcoming = next_slot(site.digest.cadence, site.timezone, now)
    running = holder(site.state_dir, state_url=site.state_url)
    if not state_exists(site.state):
        return SiteStatus(upcoming_digest=upcoming, lock_holder=running)
    live_since = now - timedelta(seconds=site.delivery.sender_timeout)
    with open_store(site.state) as store:
        live = send.live_senders(store, since=live_since)
        found = _from_store(store, upcoming_digest=upcoming, lock_holder=running, live=live)
        return replace(found, segments=segment_statuses(site, store, now=now, live=live))


def segment_statuses(
    site: SiteConfig, store: Store, *, now: datetime, live: list[str]
) -> tuple[SegmentStatus, ...]:
    """Each segment with active subscribers: how many, its next digest time, its latest digest."""
    sizes: dict[Segment, int] = {}
    for (topics, cadence), count in store.choice_counts().items():
        segment = segments.segment_for(site, topics_from(topics), cadence)
        sizes[segment] = sizes.get(segment, 0) + count
    positions = store.segment_positions()
    default = segments.default_segment(site)
    found = []
    for segment, count in sorted(sizes.items(), key=lambda item: (-item[1], item[0].key)):
        latest = positions.get(segment.key)
        if segment == default and None in positions:
            latest = max(latest or 0, positions[None])
        when = segment.cadence
        upcoming = None if when.each_article else next_slot(when, site.timezone, now)
        counts = store.delivery_counts(latest, live=live) if latest else []
        found.append(
            SegmentStatus(segment.describe(site), count, upcoming, counts[0] if counts else None)
        )
    return tuple(found)


def _from_store(
    store: Store, *, upcoming_digest: datetime, lock_holder: str | None, live: list[str]
) -> SiteStatus:
    counts = json.loads(store.get_setting(settings.COUNTS) or "{}")
    digests = store.delivery_counts(live=live)
    by_status = store.subscriber_counts()
    return SiteStatus(
        upcoming_digest=upcoming_digest,
        last_build=_moment(store.get_setting(settings.LAST_BUILD)),
        counts=_build_counts(counts) if counts else None,
        next_article=_moment(store.get_setting(settings.NEXT_DUE)),
        lock_holder=lock_holder,
        next_rebuild=_moment(store.get_setting(settings.NEXT_REBUILD)),
        next_digest=_moment(store.get_setting(settings.NEXT_DIGEST)),
        last_digest=digests[0] if digests else None,
        active=by_status.get("active", 0),
        unsubscribed=by_status.get("unsubscribed", 0),
        bounced=by_status.get("bounced", 0),
        suppressed=store.count_suppressions(),
    )


def _build_counts(counts: dict[str, int]) -> BuildCounts:
    return BuildCounts(
        loaded=counts["loaded"],
        published=counts["published"],
        drafts=counts["drafts"],
        scheduled=counts["scheduled"],
    )


def _moment(text: str | None) -> datetime | None:
    """A time the runs stored as ISO text; None for none (NEXT_DUE is "" when nothing is due)."""
    return datetime.fromisoformat(text) if text else None
