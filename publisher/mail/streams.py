"""Who gets which articles next: subscribers grouped by segment and by where their stream is.

Every subscriber has a stream: the latest digest that covered them. Their
next digest holds the articles of their topics numbered after that digest's
range, plus what it held back (numbered, but not public when it was made).
So an article reaches a subscriber once (a range is never covered twice for
them) and is never skipped (every number is in some range), whatever they
change in between: a new segment starts where their own stream is.

A subscriber joining a segment (new, or active again) starts where the
segment is, at its latest digest, or where their own stream is if that is
further on, so a returning subscriber never gets again what they had; but
never after the moment they became active, so that nothing published while
they were subscribed is skipped. A segment's first digest takes the newest
`max_articles` of its topics.

Those who share a segment and a start share one digest: normally a whole
segment is one group, and a digest is rendered once per segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from publisher.config import SiteConfig
from publisher.mail.digest import select_articles
from publisher.mail.segments import Segment, TopicMatcher, default_segment, segment_for
from publisher.model import Article, DigestArticle
from publisher.store.digests import StreamRow, StreamStart


@dataclass(frozen=True, slots=True)
class Group:
    """Subscribers of one segment whose next digest starts at the same place."""

    segment: Segment
    start: StreamStart | None  # None: the segment's first digest
    subscriber_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Choice:
    """What a group's next digest holds, and what it holds back for the one after."""

    articles: tuple[DigestArticle, ...]  # newest first
    held: tuple[str, ...]  # numbered in its range but not public now


def needed_starts(rows: Sequence[StreamRow], positions: Mapping[str | None, int]) -> set[int]:
    """The digests the groups may start from: each stream's, and each segment's latest."""
    return {r.stream_digest for r in rows if r.stream_digest is not None} | set(positions.values())


def group_streams(
    site: SiteConfig,
    rows: Iterable[StreamRow],
    positions: Mapping[str | None, int],
    starts: Mapping[int, StreamStart],
) -> list[Group]:
    """Active subscribers by (segment, start), in the order their segments first appear."""
    default_key = default_segment(site).key
    read: dict[tuple[tuple[str, ...] | None, str | None], tuple[str, StreamStart | None]] = {}
    groups: dict[tuple[str, StreamStart | None], list[int]] = {}
    segments: dict[str, Segment] = {}
    for row in rows:
        found = read.get((row.topics, row.cadence))  # choices repeat: each is read once
        if found is None:
            segment = segment_for(site, row.topics, row.cadence)
            segments[segment.key] = segment
            where = positions.get(segment.key)
            if segment.key == default_key and None in positions:
                where = max(where or 0, positions[None])
            found = read[row.topics, row.cadence] = (segment.key, starts.get(where or 0))
        segment_key, position = found
        own = starts.get(row.stream_digest or 0)
        start = _further(own, _joining_at(position, row.joined_seq)) if row.joining else own
        groups.setdefault((segment_key, start), []).append(row.subscriber_id)
    return [Group(segments[key], start, tuple(ids)) for (key, start), ids in groups.items()]


def _joining_at(position: StreamStart | None, joined_seq: int | None) -> StreamStart | None:
    """Where one joining a segment starts: where it is, unless it moved on after they joined.

    A segment further on than the moment they became active would skip what
    was published while they were subscribed; then they start from that moment.
    """
    if position is None or joined_seq is None or position.last_seq <= joined_seq:
        return position
    return StreamStart(0, joined_seq, ())


def _further(one: StreamStart | None, other: StreamStart | None) -> StreamStart | None:
    if one is None or other is None:
        return one or other
    return one if (one.last_seq, one.digest_id) >= (other.last_seq, other.digest_id) else other


def choose(
    group: Group,
    candidates: Sequence[Article],
    matcher: TopicMatcher,
    *,
    now: datetime,
    limit: int,
) -> Choice:
    """The articles of *candidates* (the group's range and held, in publication order) it gets.

    What is not public now (a draft again, or dated later by an edit) is held
    for the next digest; what is outside the segment's topics is not theirs.
    A segment's first digest takes only the newest *limit*, and holds nothing.
    """
    public = [a for a in candidates if a.is_published(now)]
    held = () if group.start is None else tuple(a.id for a in candidates if not a.is_published(now))
    mine = [a for a in public if matcher.matches(group.segment.topics, (t.slug for t in a.tags))]
    chosen = select_articles(mine, now=now, limit=limit if group.start is None else None)
    return Choice(chosen, held)


def each_article_batches(
    articles: Sequence[DigestArticle], allowance: int
) -> list[tuple[DigestArticle, ...]]:
    """One message per article, oldest first, the last of *allowance* holding all the rest."""
    if allowance <= 0 or not articles:
        return []
    oldest_first = list(reversed(articles))
    if len(oldest_first) <= allowance:
        return [(article,) for article in oldest_first]
    singles = [(article,) for article in oldest_first[: allowance - 1]]
    rest = tuple(reversed(oldest_first[allowance - 1 :]))  # a digest lists newest first
    return [*singles, rest]


def day_start(now: datetime, timezone: ZoneInfo) -> datetime:
    """Midnight of *now*'s day in the site's time zone: where max_per_day counts from."""
    local = now.astimezone(timezone)
    return datetime.combine(local.date(), time(0, 0), tzinfo=timezone)
