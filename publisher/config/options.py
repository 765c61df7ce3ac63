"""What publisher.toml says, once checked: the frozen SiteConfig and its tables.

Every path in it is absolute and every URL absolute and ending in "/";
`reading` makes it, and nothing else reads the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from publisher.model import Author

CONFIG_NAME = "publisher.toml"
STATE_DB = "state.db"
FeedFormat = Literal["rss", "atom", "json"]
FEED_FORMATS: tuple[FeedFormat, ...] = ("rss", "atom", "json")
SmtpSecurity = Literal["none", "starttls", "tls"]
DeliveryMethod = Literal["outbox", "smtp"]
DkimAlgorithm = Literal["rsa-sha256", "ed25519-sha256"]
DKIM_ALGORITHMS: tuple[DkimAlgorithm, ...] = ("rsa-sha256", "ed25519-sha256")
PERMALINK_FIELDS = frozenset({"year", "month", "day", "slug"})


@dataclass(frozen=True, slots=True)
class FeedOptions:
    formats: tuple[FeedFormat, ...] = FEED_FORMATS
    max_items: int = 50
    tag_feeds: bool = True
    full_content: bool = True
    url: str = ""  # public URL of the output folder, ending in "/"
    websub_hub: str | None = None  # a WebSub hub pinged when a feed changes


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CADENCE = re.compile(
    r"^\s*(?:(?P<daily>daily)|weekly\s+on\s+(?P<day>[a-z]+))\s+at\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*$",
    re.IGNORECASE,
)
EACH_ARTICLE_TEXT = "each article"
CADENCE_FORMS = "'daily at HH:MM', 'weekly on <day> at HH:MM' or 'each article'"


@dataclass(frozen=True, slots=True)
class Cadence:
    """When digests go out, in the site's time zone; or a message for each new article."""

    weekday: int | None  # 0 = Monday; None = every day
    hour: int
    minute: int
    each_article: bool = False  # then weekday, hour and minute mean nothing

    def __str__(self) -> str:
        if self.each_article:
            return EACH_ARTICLE_TEXT
        when = "daily" if self.weekday is None else f"weekly on {WEEKDAYS[self.weekday]}"
        return f"{when} at {self.hour:02d}:{self.minute:02d}"


EACH_ARTICLE = Cadence(None, 0, 0, each_article=True)


def parse_cadence(text: str) -> Cadence:
    """A cadence as people write it: "daily at 07:00", "weekly on monday at 07:00", "each article".

    :raises ValueError: saying what is accepted.
    """
    if " ".join(text.lower().split()) == EACH_ARTICLE_TEXT:
        return EACH_ARTICLE
    match = CADENCE.match(text)
    weekday = None
    if match and match.group("day"):
        day = match.group("day").lower()
        weekday = WEEKDAYS.index(day) if day in WEEKDAYS else -1
    if (
        not match
        or weekday == -1
        or int(match.group("hour")) > 23
        or int(match.group("minute")) > 59
    ):
        message = f"expected {CADENCE_FORMS} ({text!r})"
        raise ValueError(message)
    return Cadence(weekday, int(match.group("hour")), int(match.group("minute")))


@dataclass(frozen=True, slots=True)
class Topic:
    """[topics.<slug>]: a beat subscribers may choose; an article is in it when a tag is."""

    slug: str
    title: str
    tags: tuple[str, ...]  # tag names as written in the config
    description: str = ""


DEFAULT_CADENCE = Cadence(0, 7, 0)
DEFAULT_SUBJECT = "{{ site_title }}: {{ count }} new article{{ '' if count == 1 else 's' }}"
# The subject of an "each article" message that holds one article.
DEFAULT_ARTICLE_SUBJECT = "{{ site_title }}: {{ articles[0].title }}"


@dataclass(frozen=True, slots=True)
class DigestOptions:
    cadence: Cadence = DEFAULT_CADENCE  # the default for new subscribers
    cadences: tuple[Cadence, ...] = (DEFAULT_CADENCE,)  # what subscribers may choose
    max_per_day: int = 5  # "each article" messages per subscriber and day; the rest folded
    article_subject: str = DEFAULT_ARTICLE_SUBJECT
    max_articles: int = 20
    subject: str = DEFAULT_SUBJECT  # a Jinja2 template (no HTML escaping)
    sender: str | None = None  # "Name <address>"; required to send
    reply_to: str | None = None
    postal_address: str | None = None
    unsubscribe_url: str = ""  # https URL the one-click POST and the footer link go to
    unsubscribe_mailto: str | None = None
    preferences_url: str = ""  # https URL of the page where a subscriber chooses what they get
    list_id: str = ""  # the List-Id's id part, e.g. "digest.meridian.example"


@dataclass(frozen=True, slots=True)
class SmtpOptions:
    host: str = "127.0.0.1"
    port: int = 25
    security: SmtpSecurity = "none"
    username: str = ""
    timeout: float = 30.0
    max_per_connection: int = 100


@dataclass(frozen=True, slots=True)
class DkimOptions:
    """[delivery.dkim]: sign every message for *domain* with the key of *selector*.

    The key is the file *private_key* or, when that is absent, the PEM text in
    $PUBLISHER_DKIM_PRIVATE_KEY; `mail.signing` reads and checks it.
    """

    domain: str
    selector: str
    private_key: Path | None = None
    algorithm: DkimAlgorithm = "rsa-sha256"


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    method: DeliveryMethod = "outbox"
    outbox_dir: Path = Path("outbox")
    rate: float = 0.0  # messages per second; 0 is unlimited
    max_attempts: int = 5  # per message and run, for 4xx replies and dropped connections
    backoff: float = 1.0  # seconds before the first retry; doubled each time, with jitter
    bounce_after: int = 3  # hard (5xx) failures before a subscriber is marked bounced
    # Seconds a sender may go silent before the others take its unsent claims.
    sender_timeout: float = 60.0
    smtp: SmtpOptions = SmtpOptions()
    dkim: DkimOptions | None = None  # no [delivery.dkim]: messages go unsigned


@dataclass(frozen=True, slots=True)
class PageOptions:
    """[pages]: the static site beside the feeds, in [paths] site, mirroring base_url."""

    enabled: bool = True
    per_page: int = 10  # articles on each page of the home and tag pages
    site_dir: Path = Path("site")
    static_dir: Path = Path("static")  # copied into the site as it is: images, files


@dataclass(frozen=True, slots=True)
class WebOptions:
    """[web]: this site runs `publisher serve` at base_url (its presence says so).

    Then every page offers the sign-up form, posting to the service's /subscribe.
    """

    configured: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    signup_form: bool = True

    @property
    def offers_signup(self) -> bool:
        return self.configured and self.signup_form


@dataclass(frozen=True, slots=True)
class BounceOptions:
    """[bounces]: where bounces come back, so that each names the delivery it answers."""

    address: str | None = None  # "bounces@example.org": messages go out from bounces+<token>@
    # Where bounces arrive: a Maildir or mbox path (absolute), or an imaps:// URL;
    # `publisher run` reads it every `every`.
    mailbox: str | None = None
    every: timedelta = timedelta(minutes=15)
    processed_folder: str = "Processed"  # where read messages are moved, never deleted
    soft_limit: int = 3  # soft bounces in a row before a subscriber is marked bounced
    ses_topic_arn: str | None = None  # [bounces.ses]: the SNS topic SES notifies
    postmark: bool = False  # [bounces.postmark]: its webhook, with basic auth
    mailgun: bool = False  # [bounces.mailgun]: its webhook, signed with the signing key

    @property
    def has_webhooks(self) -> bool:
        return self.ses_topic_arn is not None or self.postmark or self.mailgun


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """A validated site: every path absolute, every URL absolute and ending in '/'."""

    config_path: Path
    display_path: str  # the config path as the user would write it, for messages
    title: str
    description: str
    base_url: str
    language: str
    timezone: ZoneInfo
    author: Author
    permalink: str
    content_dir: Path
    output_dir: Path
    state_dir: Path
    feeds: FeedOptions
    digest: DigestOptions = DigestOptions()
    delivery: DeliveryOptions = DeliveryOptions()
    pages: PageOptions = PageOptions()
    web: WebOptions = WebOptions()
    bounces: BounceOptions = BounceOptions()
    topics: tuple[Topic, ...] = ()  # none: one implicit topic, everything
    rebuild_every: timedelta = timedelta(minutes=5)  # `publisher run` rebuilds this often
    state_url: str | None = None  # a PostgreSQL database instead of the SQLite file

    @property
    def offers_choices(self) -> bool:
        """Whether subscribers have anything to choose: topics, or more than one cadence."""
        return bool(self.topics) or len(self.digest.cadences) > 1

    @property
    def root(self) -> Path:
        return self.config_path.parent

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def site_dir(self) -> Path:
        """The pages' folder ([paths] site), whether or not pages are enabled."""
        return self.pages.site_dir

    @property
    def state_db(self) -> Path:
        """The SQLite state database in the state folder (used when there is no state URL)."""
        return self.state_dir / STATE_DB

    @property
    def state(self) -> Path | str:
        """Where the state lives: the PostgreSQL URL if one is set, else the SQLite file."""
        return self.state_url or self.state_db

    def display(self, path: Path) -> str:
        """A path as the user would write it: relative to the site folder when inside it."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def fingerprint(self) -> str:
        """What cached article data depends on: a change here re-reads every article."""
        return "|".join(
            (
                self.base_url,
                self.timezone.key,
                self.author.name,
                self.author.email or "",
                self.permalink,
                str(self.content_dir),
            )
        )
