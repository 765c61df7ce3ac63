"""Read publisher.toml into a frozen SiteConfig, checking every table key by key.

This is the only module that reads the configuration file. Every check names
the table and key, shows the bad value and says what is accepted; every
problem in the file is reported at once.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from publisher.config import values
from publisher.config.options import (
    DEFAULT_ARTICLE_SUBJECT,
    DEFAULT_CADENCE,
    DEFAULT_SUBJECT,
    DKIM_ALGORITHMS,
    FEED_FORMATS,
    PERMALINK_FIELDS,
    BounceOptions,
    Cadence,
    DeliveryOptions,
    DigestOptions,
    DkimOptions,
    FeedOptions,
    PageOptions,
    SiteConfig,
    SmtpOptions,
    Topic,
    WebOptions,
    parse_cadence,
)
from publisher.errors import ConfigError
from publisher.model import Author

DATABASE_URL_VARIABLE = "PUBLISHER_DATABASE_URL"


def load_config(path: Path | str) -> SiteConfig:
    """Read publisher.toml at *path*.

    :raises ConfigError: naming the file and key for any problem.
    """
    config_path = Path(path)
    display = str(path)
    try:
        raw_bytes = config_path.read_bytes()
    except FileNotFoundError:
        message = "not found (run publisher in a site folder, or pass --config PATH)"
        raise ConfigError(display, message) from None
    except OSError as err:
        message = f"cannot be read ({err.strerror})"
        raise ConfigError(display, message) from err
    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as err:
        message = f"not valid UTF-8 (byte {raw_bytes[err.start]:#04x} at offset {err.start})"
        raise ConfigError(display, message) from err
    except tomllib.TOMLDecodeError as err:
        message = f"invalid TOML: {err}"
        raise ConfigError(display, message) from err
    return parse_config(
        data, config_path=config_path.resolve(), display_path=display, environ=os.environ
    )


def parse_config(
    data: Mapping[str, Any],
    *,
    config_path: Path,
    display_path: str,
    environ: Mapping[str, str] | None = None,
) -> SiteConfig:
    """Validate an already-parsed TOML document (the part of load_config tests drive).

    *environ* is where PUBLISHER_DATABASE_URL is read from (the process's own
    environment when load_config reads the file).
    """
    reader = values.Reader(display_path)
    reader.known_keys(
        "",
        data,
        {
            "site": dict,
            "paths": dict,
            "feeds": dict,
            "digest": dict,
            "delivery": dict,
            "schedule": dict,
            "state": dict,
            "pages": dict,
            "web": dict,
            "bounces": dict,
            "topics": dict,
        },
    )
    site = reader.table(data, "site", required=True)
    reader.known_keys("site", site, SITE_KEYS)
    paths = reader.table(data, "paths")
    reader.known_keys("paths", paths, PATHS_KEYS)
    feeds = reader.table(data, "feeds")
    reader.known_keys("feeds", feeds, FEEDS_KEYS)

    title = reader.get(site, "site", "title", values.non_empty_text, required=True)
    base_url = reader.get(site, "site", "base_url", values.absolute_url, required=True)
    description = reader.get(site, "site", "description", values.non_empty_text, default=title)
    language = reader.get(site, "site", "language", values.language, default="en")
    timezone = reader.get(site, "site", "timezone", values.timezone, default=ZoneInfo("UTC"))
    author_text = reader.get(site, "site", "author", values.non_empty_text, default=title)
    author_email = reader.get(site, "site", "author_email", values.email, default=None)
    permalink = reader.get(site, "site", "permalink", _permalink, default="{year}/{month}/{slug}/")
    name, email = parseaddr(author_text)
    author = Author(name or author_text, author_email or (email if "@" in email else None))

    root = config_path.parent
    content_dir = root / reader.get(
        paths, "paths", "content", values.relative_path, default="content"
    )
    output_name = reader.get(paths, "paths", "output", values.relative_path, default="feeds")
    output_dir = root / output_name
    state_dir = root / reader.get(
        paths, "paths", "state", values.relative_path, default=".publisher"
    )

    if output_dir.resolve() == root.resolve() or content_dir.resolve().is_relative_to(
        output_dir.resolve()
    ):
        reader.problems.append(
            f"[paths] output: must be a folder of its own, not the site folder or one holding "
            f"the content ({output_name!r})"
        )
    elif output_dir.resolve().is_relative_to(content_dir.resolve()):
        reader.problems.append(
            f"[paths] output: must not be inside the content folder ({output_name!r})"
        )
    site_name = reader.get(paths, "paths", "site", values.relative_path, default="site")
    _check_site_folder(reader, root / site_name, site_name, root, content_dir, output_dir)
    static_name = reader.get(paths, "paths", "static", values.relative_path, default="static")
    if (root / site_name).resolve().is_relative_to((root / static_name).resolve()) or (
        root / static_name
    ).resolve().is_relative_to((root / site_name).resolve()):
        reader.problems.append(
            f"[paths] static: must be a folder apart from [paths] site ({static_name!r})"
        )

    formats = reader.get(feeds, "feeds", "formats", _formats, default=FEED_FORMATS)
    max_items = reader.get(feeds, "feeds", "max_items", values.positive_int, default=50)
    tag_feeds = reader.get(feeds, "feeds", "tag_feeds", values.boolean, default=True)
    content_mode = reader.get(feeds, "feeds", "content", _content_mode, default="full")
    feeds_url = reader.get(feeds, "feeds", "url", values.absolute_url, default=None)
    websub_hub = reader.get(feeds, "feeds", "websub_hub", values.absolute_url_as_is, default=None)
    schedule = reader.table(data, "schedule")
    reader.known_keys("schedule", schedule, SCHEDULE_KEYS)
    rebuild_every = reader.get(
        schedule, "schedule", "rebuild_every", values.interval, default=timedelta(minutes=5)
    )
    # With a bad base_url the run stops below; a stand-in keeps the other checks going.
    digest = _digest_options(
        reader, reader.table(data, "digest"), base_url or "https://invalid.example/", author
    )
    delivery = _delivery_options(reader, reader.table(data, "delivery"), root)
    pages = _page_options(reader, reader.table(data, "pages"), root / site_name, root / static_name)
    web = _web_options(reader, data)
    bounces = _bounce_options(reader, reader.table(data, "bounces"), root)
    topics = _topics(reader, reader.table(data, "topics"))
    state_url = _state_url(reader, reader.table(data, "state"), environ or {})
    reader.raise_if_any()

    if feeds_url is None:
        feeds_url = base_url + output_dir.name + "/"
    return SiteConfig(
        config_path=config_path,
        display_path=display_path,
        title=title,
        description=description,
        base_url=base_url,
        language=language,
        timezone=timezone,
        author=author,
        permalink=permalink,
        content_dir=content_dir,
        output_dir=output_dir,
        state_dir=state_dir,
        feeds=FeedOptions(
            formats=formats,
            max_items=max_items,
            tag_feeds=tag_feeds,
            full_content=content_mode == "full",
            url=feeds_url,
            websub_hub=websub_hub,
        ),
        digest=digest,
        delivery=delivery,
        pages=pages,
        web=web,
        bounces=bounces,
        topics=topics,
        rebuild_every=rebuild_every,
        state_url=state_url,
    )


def _check_site_folder(
    reader: values.Reader, site_dir: Path, name: str, root: Path, content: Path, output: Path
) -> None:
    """The pages' folder is a folder of its own; the feeds' may sit inside it (site/feeds)."""
    folder = site_dir.resolve()
    if folder == root.resolve() or content.resolve().is_relative_to(folder):
        reader.problems.append(
            f"[paths] site: must be a folder of its own, not the site folder or one holding "
            f"the content ({name!r})"
        )
    elif folder.is_relative_to(content.resolve()):
        reader.problems.append(f"[paths] site: must not be inside the content folder ({name!r})")
    elif output.resolve() != root.resolve() and folder.is_relative_to(output.resolve()):
        reader.problems.append(
            f"[paths] site: must not be the feeds' output folder or inside it ({name!r})"
        )


def _page_options(
    reader: values.Reader, table: dict[str, Any], site_dir: Path, static_dir: Path
) -> PageOptions:
    reader.known_keys("pages", table, PAGES_KEYS)
    return PageOptions(
        enabled=reader.get(table, "pages", "enabled", values.boolean, default=True),
        per_page=reader.get(table, "pages", "per_page", values.positive_int, default=10),
        site_dir=site_dir,
        static_dir=static_dir,
    )


def _web_options(reader: values.Reader, data: Mapping[str, Any]) -> WebOptions:
    """[web] present means `publisher serve` answers at base_url: pages offer its sign-up form."""
    table = reader.table(data, "web")
    reader.known_keys("web", table, WEB_KEYS)
    return WebOptions(
        configured="web" in data,
        host=reader.get(table, "web", "host", values.host, default="127.0.0.1"),
        port=reader.get(table, "web", "port", values.port, default=8080),
        signup_form=reader.get(table, "web", "signup_form", values.boolean, default=True),
    )


def _bounce_options(reader: values.Reader, table: dict[str, Any], root: Path) -> BounceOptions:
    reader.known_keys("bounces", table, BOUNCES_KEYS)
    address = reader.get(table, "bounces", "address", values.email, default=None)
    if address is not None and "+" in address.partition("@")[0]:
        reader.problems.append(
            f"[bounces] address: must not contain '+', which separates the token ({address!r})"
        )
    mailbox = reader.get(table, "bounces", "mailbox", values.bounce_mailbox, default=None)
    if mailbox is not None and not mailbox.startswith("imaps://"):
        mailbox = str(root / mailbox)
    ses = _provider_table(reader, table, "ses", ("topic_arn",))
    return BounceOptions(
        address=address,
        mailbox=mailbox,
        every=reader.get(table, "bounces", "every", values.interval, default=timedelta(minutes=15)),
        processed_folder=reader.get(
            table, "bounces", "processed_folder", values.folder_name, default="Processed"
        ),
        soft_limit=reader.get(table, "bounces", "soft_limit", values.positive_int, default=3),
        ses_topic_arn=None
        if ses is None
        else reader.get(ses, "bounces.ses", "topic_arn", values.topic_arn, required=True),
        postmark=_provider_table(reader, table, "postmark", ()) is not None,
        mailgun=_provider_table(reader, table, "mailgun", ()) is not None,
    )


def _provider_table(
    reader: values.Reader, table: dict[str, Any], name: str, keys: tuple[str, ...]
) -> dict[str, Any] | None:
    """[bounces.<name>]: its presence turns the provider's webhook on (credentials: environment)."""
    if name not in table:
        return None
    value = table[name]
    if not isinstance(value, dict):
        reader.problems.append(f"[bounces] {name}: expected a table, got {values.describe(value)}")
        return None
    reader.known_keys(f"bounces.{name}", value, dict.fromkeys(keys))
    return value


def _state_url(
    reader: values.Reader, table: dict[str, Any], environ: Mapping[str, str]
) -> str | None:
    """The PostgreSQL URL of the state, if any: the environment's wins over the file's.

    :raises ConfigError: for a PUBLISHER_DATABASE_URL that is not one.
    """
    reader.known_keys("state", table, STATE_KEYS)
    configured = reader.get(table, "state", "url", values.state_url, default=None)
    override = environ.get(DATABASE_URL_VARIABLE, "").strip()
    if not override:
        return str(configured) if configured else None
    try:
        return values.state_url(DATABASE_URL_VARIABLE, override)
    except ValueError as err:
        raise ConfigError(DATABASE_URL_VARIABLE, str(err)) from None


def _digest_options(
    reader: values.Reader, table: dict[str, Any], base_url: str, author: Author
) -> DigestOptions:
    reader.known_keys("digest", table, DIGEST_KEYS)
    get = reader.get
    host = urlsplit(base_url).hostname or "localhost"
    cadence = get(table, "digest", "cadence", _cadence, default=DEFAULT_CADENCE)
    cadences = get(table, "digest", "cadences", _cadences, default=(cadence,))
    _check_cadences(reader, cadence, cadences)
    return DigestOptions(
        cadence=cadence,
        cadences=cadences,
        max_per_day=get(table, "digest", "max_per_day", values.positive_int, default=5),
        article_subject=get(
            table,
            "digest",
            "article_subject",
            values.non_empty_text,
            default=DEFAULT_ARTICLE_SUBJECT,
        ),
        max_articles=get(table, "digest", "max_articles", values.positive_int, default=20),
        subject=get(table, "digest", "subject", values.non_empty_text, default=DEFAULT_SUBJECT),
        sender=get(table, "digest", "from", values.mailbox, default=None)
        or (f"{author.name} <{author.email}>" if author.email else None),
        reply_to=get(table, "digest", "reply_to", values.mailbox, default=None),
        postal_address=get(table, "digest", "postal_address", values.non_empty_text, default=None),
        unsubscribe_url=get(
            table, "digest", "unsubscribe_url", values.https_url, default=base_url + "unsubscribe"
        ),
        unsubscribe_mailto=get(table, "digest", "unsubscribe_mailto", values.email, default=None),
        preferences_url=get(
            table, "digest", "preferences_url", values.https_url, default=base_url + "preferences"
        ),
        list_id=get(table, "digest", "list_id", values.list_id, default=f"digest.{host}"),
    )


def _delivery_options(reader: values.Reader, table: dict[str, Any], root: Path) -> DeliveryOptions:
    reader.known_keys("delivery", table, DELIVERY_KEYS)
    get = reader.get
    smtp_table = table.get("smtp", {}) if isinstance(table.get("smtp", {}), dict) else {}
    if not isinstance(table.get("smtp", {}), dict):
        reader.problems.append(
            f"[delivery] smtp: expected a table, got {values.describe(table['smtp'])}"
        )
    reader.known_keys("delivery.smtp", smtp_table, SMTP_KEYS)
    smtp = SmtpOptions(
        host=get(smtp_table, "delivery.smtp", "host", values.host, default="127.0.0.1"),
        port=get(smtp_table, "delivery.smtp", "port", values.port, default=25),
        security=get(
            smtp_table,
            "delivery.smtp",
            "security",
            values.choice("none", "starttls", "tls"),
            default="none",
        ),
        username=get(smtp_table, "delivery.smtp", "username", values.text_value, default=""),
        timeout=get(smtp_table, "delivery.smtp", "timeout", values.positive_number, default=30.0),
        max_per_connection=get(
            smtp_table, "delivery.smtp", "max_per_connection", values.positive_int, default=100
        ),
    )
    if "password" in smtp_table:
        reader.problems.append(
            "[delivery.smtp] password: secrets do not belong in the config file; "
            "set PUBLISHER_SMTP_PASSWORD in the environment"
        )
    return DeliveryOptions(
        method=get(table, "delivery", "method", values.choice("outbox", "smtp"), default="outbox"),
        outbox_dir=root / get(table, "delivery", "outbox", values.relative_path, default="outbox"),
        rate=get(table, "delivery", "rate", values.non_negative_number, default=0.0),
        max_attempts=get(table, "delivery", "max_attempts", values.positive_int, default=5),
        backoff=get(table, "delivery", "backoff", values.non_negative_number, default=1.0),
        bounce_after=get(table, "delivery", "bounce_after", values.positive_int, default=3),
        sender_timeout=get(
            table, "delivery", "sender_timeout", values.positive_number, default=60.0
        ),
        smtp=smtp,
        dkim=_dkim_options(reader, table, root),
    )


def _dkim_options(reader: values.Reader, table: dict[str, Any], root: Path) -> DkimOptions | None:
    """[delivery.dkim], if there is one; the key itself is read and checked by mail.signing."""
    if "dkim" not in table:
        return None
    dkim = table["dkim"]
    if not isinstance(dkim, dict):
        reader.problems.append(f"[delivery] dkim: expected a table, got {values.describe(dkim)}")
        return None
    reader.known_keys("delivery.dkim", dkim, DKIM_KEYS)
    get = reader.get
    domain = get(dkim, "delivery.dkim", "domain", values.domain_name, required=True)
    selector = get(dkim, "delivery.dkim", "selector", values.dkim_selector, required=True)
    key = get(dkim, "delivery.dkim", "private_key", values.relative_path, default=None)
    algorithm = get(
        dkim, "delivery.dkim", "algorithm", values.choice(*DKIM_ALGORITHMS), default="rsa-sha256"
    )
    if domain is None or selector is None:
        return None  # reported above
    return DkimOptions(
        domain=domain,
        selector=selector,
        private_key=None if key is None else root / key,
        algorithm=algorithm,
    )


def _permalink(key: str, value: Any) -> str:
    pattern = values.non_empty_text(key, value)
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as err:
        message = f"invalid pattern {pattern!r}: {err}"
        raise ValueError(message) from None
    unknown = sorted(names - PERMALINK_FIELDS)
    if unknown:
        message = (
            f"unknown placeholder {{{unknown[0]}}} in {pattern!r}; "
            f"use {{year}}, {{month}}, {{day}} and {{slug}}"
        )
        raise ValueError(message)
    if "slug" not in names:
        message = f"must contain {{slug}} so that every article gets its own URL ({pattern!r})"
        raise ValueError(message)
    if pattern.startswith("/") or "://" in pattern:
        message = f"must be relative to base_url, without a leading '/' ({pattern!r})"
        raise ValueError(message)
    if any(part in (".", "..") or "\\" in part for part in pattern.split("/")):
        message = f"must stay below base_url: no '.' or '..' parts, no '\\' ({pattern!r})"
        raise ValueError(message)
    return pattern


def _formats(_key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        message = (
            f"expected a non-empty array of {list(FEED_FORMATS)}, got {values.describe(value)}"
        )
        raise ValueError(message)
    for item in value:
        if item not in FEED_FORMATS:
            message = f"unknown format {item!r}; choose from {', '.join(FEED_FORMATS)}"
            raise ValueError(message)
    return tuple(f for f in FEED_FORMATS if f in value)


def _content_mode(key: str, value: Any) -> str:
    text = values.text_value(key, value)
    if text not in ("full", "summary"):
        message = f"expected 'full' or 'summary' ({text!r})"
        raise ValueError(message)
    return text


def _cadence(key: str, value: Any) -> Cadence:
    return parse_cadence(values.non_empty_text(key, value))


def _cadences(key: str, value: Any) -> tuple[Cadence, ...]:
    if not isinstance(value, list) or not value:
        message = f"expected a non-empty list of cadences, got {values.describe(value)}"
        raise ValueError(message)
    found = tuple(_cadence(key, item) for item in value)
    return tuple(dict.fromkeys(found))


def _tag_names(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        message = f"expected a non-empty list of tag names, got {values.describe(value)}"
        raise ValueError(message)
    return tuple(dict.fromkeys(values.non_empty_text(key, item) for item in value))


def _topics(reader: values.Reader, table: dict[str, Any]) -> tuple[Topic, ...]:
    """[topics.<slug>] tables, in the order written: what subscribers may choose among."""
    topics = []
    for slug, body in table.items():
        where = f"topics.{slug}"
        if not TOPIC_SLUG.fullmatch(slug):
            message = "a topic's name is lower-case letters, digits and '-', starting with one"
            reader.problems.append(f"[{where}]: {message} ({slug!r})")
            continue
        if not isinstance(body, dict):
            reader.problems.append(f"[{where}]: expected a table, got {values.describe(body)}")
            continue
        reader.known_keys(where, body, TOPIC_KEYS)
        title = reader.get(body, where, "title", values.non_empty_text, required=True)
        tags = reader.get(body, where, "tags", _tag_names, required=True)
        description = reader.get(body, where, "description", values.non_empty_text, default="")
        if title and tags:
            topics.append(Topic(slug, title, tags, description))
    return tuple(topics)


def _check_cadences(reader: values.Reader, cadence: Cadence, cadences: tuple[Cadence, ...]) -> None:
    if cadence not in cadences:
        offered = ", ".join(f"'{c}'" for c in cadences)
        reader.problems.append(
            f"[digest] cadences: must include the default cadence '{cadence}' (has {offered})"
        )


TOPIC_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
TOPIC_KEYS = dict.fromkeys(("title", "tags", "description"))
SITE_KEYS = dict.fromkeys(
    (
        "title",
        "description",
        "base_url",
        "language",
        "timezone",
        "author",
        "author_email",
        "permalink",
    )
)
PATHS_KEYS = dict.fromkeys(("content", "output", "state", "site", "static"))
PAGES_KEYS = dict.fromkeys(("enabled", "per_page"))
WEB_KEYS = dict.fromkeys(("host", "port", "signup_form"))
STATE_KEYS = dict.fromkeys(("url",))
BOUNCES_KEYS = dict.fromkeys(
    (
        "address",
        "mailbox",
        "every",
        "processed_folder",
        "soft_limit",
        "ses",
        "postmark",
        "mailgun",
    )
)
FEEDS_KEYS = dict.fromkeys(("formats", "max_items", "tag_feeds", "content", "url", "websub_hub"))
SCHEDULE_KEYS = dict.fromkeys(("rebuild_every",))
DIGEST_KEYS = dict.fromkeys(
    (
        "cadence",
        "cadences",
        "max_per_day",
        "article_subject",
        "max_articles",
        "subject",
        "from",
        "reply_to",
        "postal_address",
        "unsubscribe_url",
        "unsubscribe_mailto",
        "preferences_url",
        "list_id",
    )
)
DELIVERY_KEYS = dict.fromkeys(
    (
        "method",
        "outbox",
        "rate",
        "max_attempts",
        "backoff",
        "bounce_after",
        "sender_timeout",
        "smtp",
        "dkim",
    )
)
DKIM_KEYS = dict.fromkeys(("domain", "selector", "private_key", "algorithm"))
SMTP_KEYS = dict.fromkeys(
    ("host", "port", "security", "username", "timeout", "max_per_connection", "password")
)
