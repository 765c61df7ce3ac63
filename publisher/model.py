"""Frozen data passed from stage to stage; no behaviour beyond small derived values."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class Author:
    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Tag:
    """A tag as written in the article, and the slug used in paths and URLs."""

    name: str
    slug: str


BodyFormat = Literal["markdown", "text"]


@dataclass(frozen=True, slots=True)
class ArticleMeta:
    """What an article's file says about it, validated: the one shape its metadata takes.

    Made by the content stage from front matter and body, kept by the store
    (one encode, one decode), read by every later stage through Article.
    """

    path: str  # relative to the content folder, with forward slashes
    title: str
    date: datetime  # aware
    updated: datetime | None  # the front matter's `updated`: later than date, or None
    authors: tuple[Author, ...]
    tags: tuple[Tag, ...]
    summary: str
    link: str
    slug: str
    is_draft: bool = False
    body_format: BodyFormat = "markdown"


@dataclass(frozen=True, slots=True)
class Article:
    """An article the store knows: its metadata, its id for life, and when it changed.

    Bodies stay out of this record so that a build over thousands of articles
    does not hold every body in memory.
    """

    id: str
    meta: ArticleMeta
    first_seen: datetime
    edited_at: datetime | None = None  # when an edit of its title or body was first seen
    text_hash: str = ""  # of title and body: a change here is an edit
    version: str = ""  # changes whenever anything stored about the article changes

    # The metadata's fields, read through the article where it is used.
    @property
    def path(self) -> str:
        return self.meta.path

    @property
    def title(self) -> str:
        return self.meta.title

    @property
    def date(self) -> datetime:
        return self.meta.date

    @property
    def authors(self) -> tuple[Author, ...]:
        return self.meta.authors

    @property
    def tags(self) -> tuple[Tag, ...]:
        return self.meta.tags

    @property
    def summary(self) -> str:
        return self.meta.summary

    @property
    def link(self) -> str:
        return self.meta.link

    @property
    def slug(self) -> str:
        return self.meta.slug

    @property
    def is_draft(self) -> bool:
        return self.meta.is_draft

    @property
    def updated(self) -> datetime | None:
        """The front matter's `updated`; else when an edit was first seen, if after the date."""
        if self.meta.updated is not None:
            return self.meta.updated
        if self.edited_at is not None and self.edited_at > self.meta.date:
            return self.edited_at
        return None

    @property
    def last_modified(self) -> datetime:
        return self.updated or self.date

    def is_published(self, now: datetime) -> bool:
        """Drafts never publish; a future date publishes on the first build after it."""
        return not self.meta.is_draft and self.meta.date <= now


@dataclass(frozen=True, slots=True)
class FeedItem:
    """An article as it goes into a feed: metadata plus (optionally) its HTML."""

    article: Article
    content_html: str | None


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """Everything a feed renderer needs to know about one feed (site-wide or per tag)."""

    title: str
    description: str
    home_url: str  # the site, for rel=alternate / home_page_url
    folder_url: str  # public URL of the folder holding rss.xml, atom.xml, feed.json
    folder: str  # path relative to the output folder ("" or "tags/<slug>")
    language: str
    author: Author
    generator_version: str
    tag: Tag | None = None
    hub: str | None = None  # a WebSub hub to advertise

    def url(self, filename: str) -> str:
        return self.folder_url + filename


@dataclass(frozen=True, slots=True)
class ContentProblem:
    """A file that did not load; `kept_previous` says its last good version stays published."""

    path: str
    lines: tuple[str, ...]
    kept_previous: bool = False


@dataclass(frozen=True, slots=True)
class BuildReport:
    loaded: int
    published: int
    drafts: int
    scheduled: int
    problems: tuple[ContentProblem, ...] = ()
    written: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    parsed: int = 0  # files actually read and parsed this run (the rest came from the cache)
    # About the files parsed in this run: markup removed from a title, an
    # identity lost (and what to do).
    warnings: tuple[str, ...] = ()
    pages: PageWrites | None = None  # None when [pages] enabled = false

    @property
    def skipped(self) -> int:
        return len(self.problems)


SubscriberStatus = Literal["active", "unsubscribed", "bounced"]
SUBSCRIBER_STATUSES: tuple[SubscriberStatus, ...] = ("active", "unsubscribed", "bounced")
# A ledger row: `sending` is committed before the message leaves, so after a
# crash it means "may have been delivered" (reported as uncertain).
DeliveryStatus = Literal["pending", "sending", "sent", "failed"]
# What a sender reports: 2xx, 4xx (retried), 5xx, or a connection lost after the body.
SendOutcome = Literal["sent", "transient", "permanent", "uncertain"]
# Why an address is on the suppression list.
SuppressionReason = Literal["unsubscribed", "bounced", "removed", "complained"]


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str  # normalised
    name: str
    status: SubscriberStatus
    created_at: datetime
    hard_failures: int = 0
    # Their choices, as stored: topic slugs (None: everything) and a cadence's
    # text (None: the site's default); mail.segments reads them against the config.
    topics: tuple[str, ...] | None = None
    cadence: str | None = None


@dataclass(frozen=True, slots=True)
class DigestArticle:
    """An article as frozen into a digest when it is made: a resumed send sends the same."""

    id: str
    title: str
    link: str
    date: datetime
    authors: tuple[str, ...]
    summary: str


@dataclass(frozen=True, slots=True)
class DigestIssue:
    """A digest as its page on the site shows it: what it held, no personal data."""

    id: int
    created_at: datetime
    subject: str
    articles: tuple[DigestArticle, ...]
    segment: str | None = None  # its segment's key, as the store keeps it
    audience: str = ""  # for whom, in words, where subscribers choose ("Energy · daily at 07:00")


@dataclass(frozen=True, slots=True)
class PageWrites:
    """What a build did to the pages: each counted, for the report and the tests."""

    rendered: int = 0
    written: tuple[str, ...] = ()  # paths under [paths] site
    unchanged: int = 0
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """The digest's parts, rendered once; per-recipient values are placeholders in them."""

    subject: str
    html: str
    text: str
    web_html: str  # the web copy: no personal data, no placeholders


@dataclass(frozen=True, slots=True)
class Digest:
    id: int
    created_at: datetime
    # The last publication number this digest covered (every article numbered
    # up to it was considered); None for a digest being made.
    last_seq: int | None
    articles: tuple[DigestArticle, ...]
    rendered: RenderedDigest | None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One recipient's message, as bytes ready for the wire (CRLF, 7-bit safe)."""

    digest_id: int
    subscriber_id: int
    sender: str  # envelope sender address
    recipient: str  # envelope recipient address
    message_id: str
    data: bytes
    outbox_name: str = ""  # where the outbox files it, if not by digest and subscriber


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    digest_id: int
    created_at: datetime
    articles: int
    pending: int = 0
    uncertain: int = 0  # left `sending`: its sender stopped, or the link dropped mid-send
    sent: int = 0
    failed: int = 0
    sending: int = 0  # in flight: `sending` under a sender that is alive
    bounced: int = 0  # sent rows a bounce or complaint came back for later
    segment: str | None = None  # its segment's key; None for digests made before segments


# Each feed format's file and media type: the feeds are written, linked and served by them.
FEED_FILES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
FEED_MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}


class Bodies(Protocol):
    """The articles' HTML, for the feeds and pages (content.bodies.BodyCache): cached, or
    rendered from the article's file by the worker that renders what shows it."""

    def split(self, articles: Iterable[Article]) -> tuple[dict[str, str], dict[str, Any]]:
        """The fresh HTML by article id, and for the rest what `render` takes."""

    def render(self, job: Any) -> Any:
        """A body (`.html`: None for the summary), on whichever process calls it: it must
        not touch the store."""

    def keep(self, done: Sequence[tuple[Any, Any]]) -> None:
        """Store what `render` made of each job (in the process that split them)."""


class Dated(Protocol):
    """An article, or the little planning keeps of one (store.ArticleKey)."""

    @property
    def id(self) -> str: ...
    @property
    def date(self) -> datetime: ...


class Listed(Dated, Protocol):
    """What deciding which lists (feeds, pages) show an article needs of it."""

    @property
    def tags(self) -> tuple[Tag, ...]: ...
    def is_published(self, now: datetime) -> bool: ...


_DatedItem = TypeVar("_DatedItem", bound=Dated)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def newest_first(items: Iterable[_DatedItem]) -> list[_DatedItem]:
    """*items* by date, newest first, and by id among those of one moment.

    Keyed on the time since the epoch: comparing datetimes of different
    offsets converts both at every comparison, and sorting 10,000 articles
    so took seven times as long.
    """
    return sorted(items, key=_instant_and_id, reverse=True)


def _instant_and_id(item: Dated) -> tuple[timedelta, str]:
    return item.date - _EPOCH, item.id
