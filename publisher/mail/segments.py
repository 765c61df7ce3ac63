"""What each subscriber chose, read against the site's topics and cadences: their segment.

Subscribers with the same topics and cadence form a segment, and a digest
is made once per segment, never per person. What is stored is what they
chose; a topic or cadence the site no longer offers falls back here (topics
to the ones still offered, or everything; a cadence to the site's default),
so a change to publisher.toml never leaves anyone out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from publisher.config import Cadence, SiteConfig, parse_cadence
from publisher.model import Subscriber
from publisher.text import slugify

EVERYTHING = "*"  # a segment key's topics part when they chose no topic in particular
EVERYTHING_WORDS = frozenset({"", "*", "all", "everything"})


@dataclass(frozen=True, slots=True)
class Segment:
    """Topic slugs (None: everything) and a cadence: who gets which digest, and when."""

    topics: tuple[str, ...] | None
    cadence: Cadence

    @property
    def key(self) -> str:
        """How the store names the segment: "energy,danube|daily at 07:00", "*|each article"."""
        return f"{','.join(self.topics) if self.topics else EVERYTHING}|{self.cadence}"

    def describe(self, site: SiteConfig) -> str:
        """For people: "Energy, Danube region · daily at 07:00"."""
        return f"{topic_titles(site, self.topics)} · {self.cadence}"


def topic_titles(site: SiteConfig, topics: tuple[str, ...] | None) -> str:
    if topics is None:
        return "everything"
    titles = {topic.slug: topic.title for topic in site.topics}
    return ", ".join(titles.get(slug, slug) for slug in topics)


def normalise_topics(site: SiteConfig, chosen: Iterable[str] | None) -> tuple[str, ...] | None:
    """The offered ones among *chosen*, in the config's order; None when that is all or none.

    Choosing every topic is choosing everything (articles in no topic, and
    topics added later, too); an empty choice is no choice.
    """
    if chosen is None:
        return None
    wanted = set(chosen)
    kept = tuple(topic.slug for topic in site.topics if topic.slug in wanted)
    if not kept or len(kept) == len(site.topics):
        return None
    return kept


def parse_topics(site: SiteConfig, text: str) -> tuple[str, ...] | None:
    """Topics as an operator writes them ("energy,danube", "everything").

    :raises ValueError: naming an unknown topic and the ones there are.
    """
    words = [word.strip() for word in text.split(",")]
    if " ".join(words).lower() in EVERYTHING_WORDS:
        return None
    offered = [topic.slug for topic in site.topics]
    for word in words:
        if word not in offered:
            known = ", ".join(offered) if offered else "none: this site has no [topics]"
            message = f"unknown topic {word!r} (topics: {known}; or 'everything')"
            raise ValueError(message)
    return normalise_topics(site, words)


def parse_choice_cadence(site: SiteConfig, text: str) -> str | None:
    """A cadence a subscriber may choose, as stored; None (the default) for an empty text.

    :raises ValueError: for a cadence that is not written right or not offered.
    """
    if not text.strip():
        return None
    cadence = parse_cadence(text)
    if cadence not in site.digest.cadences:
        offered = ", ".join(f"'{c}'" for c in site.digest.cadences)
        message = f"'{cadence}' is not offered ([digest] cadences: {offered})"
        raise ValueError(message)
    return str(cadence)


def cadence_of(site: SiteConfig, stored: str | None) -> Cadence:
    """The cadence a stored choice means now: the site's default when none or not offered."""
    chosen = offered_cadence(site, stored)
    return site.digest.cadence if chosen is None else chosen


def offered_cadence(site: SiteConfig, stored: str | None) -> Cadence | None:
    """The offered cadence a stored choice names; None for no choice, or one no longer
    offered (or unreadable)."""
    if stored is None:
        return None
    try:
        cadence = parse_cadence(stored)
    except ValueError:
        return None
    return cadence if cadence in site.digest.cadences else None


def segment_of(site: SiteConfig, subscriber: Subscriber) -> Segment:
    return segment_for(site, subscriber.topics, subscriber.cadence)


def segment_for(site: SiteConfig, topics: tuple[str, ...] | None, cadence: str | None) -> Segment:
    return Segment(normalise_topics(site, topics), cadence_of(site, cadence))


def segment_from_key(site: SiteConfig, key: str | None) -> Segment:
    """The segment a digest was made for, from its key (None: before segments, the default)."""
    if key is None or "|" not in key:
        return default_segment(site)
    topics, _bar, cadence = key.partition("|")
    stored = None if topics == EVERYTHING else tuple(topics.split(","))
    try:
        return Segment(stored, parse_cadence(cadence))
    except ValueError:
        return default_segment(site)


def default_segment(site: SiteConfig) -> Segment:
    """Where a subscriber who chose nothing is: everything, at the site's cadence."""
    return Segment(None, site.digest.cadence)


@dataclass(frozen=True, slots=True)
class TopicMatcher:
    """Which articles a segment's topics take, by tag slug (articles name tags by name)."""

    tags_of: dict[str, frozenset[str]]  # topic slug → the slugs of its tags

    @classmethod
    def for_site(cls, site: SiteConfig) -> TopicMatcher:
        return cls({t.slug: frozenset(slugify(name) for name in t.tags) for t in site.topics})

    def matches(self, topics: tuple[str, ...] | None, tag_slugs: Iterable[str]) -> bool:
        """Whether an article with *tag_slugs* belongs to one of *topics* (None: everything)."""
        if topics is None:
            return True
        wanted = frozenset().union(*(self.tags_of.get(slug, frozenset()) for slug in topics))
        return not wanted.isdisjoint(tag_slugs)
