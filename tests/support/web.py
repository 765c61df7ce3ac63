"""Talking to `publisher serve` as a browser and a mail client would: paths, forms, links."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from publisher import tokens
from publisher.config import SiteConfig, load_config
from publisher.pipelines import build, digests
from publisher.store import open_store
from support.clock import Clock
from support.mailing import add_subscribers
from support.web_server import WebServer

FORM = "application/x-www-form-urlencoded"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FEED_TYPES = {
    "rss.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
READERS = ["ada@example.org", "bo@example.org", "cy@example.org"]
# Page titles (stable; the markup around them is not).
CHECK_INBOX = "Check your inbox"
SUBSCRIBED = "You are subscribed"
UNSUBSCRIBED = "You are unsubscribed"
BAD_UNSUBSCRIBE = "That unsubscribe link is not valid"
BAD_LINK = "That link did not work"
TOO_MANY = "Too many sign-ups"
UNREADABLE = "That form could not be read"
BAD_ADDRESS = "That address will not work"
PREFERENCES = "Choose what you receive"
SAVED = "Saved."
BAD_PREFERENCES = "That preferences link is not valid"
NOT_SUBSCRIBED = "You are not subscribed"
FOREIGN_FORM = "That form came from another site"
BAD_CHOICE = "That choice will not work"
# What a site whose subscribers choose adds to tests/sites/basic: three topics (the
# basic articles' tags) and three cadences, the default first.
CHOICES = """
[digest]
cadence = "weekly on monday at 07:00"
cadences = ["weekly on monday at 07:00", "daily at 07:00", "each article"]

[topics.diplomacy]
title = "Diplomacy"
tags = ["arms control", "vienna"]
description = "Talks, treaties and the people at the table."

[topics.elections]
title = "Elections"
tags = ["elections", "europe"]
description = "Counts, campaigns and the observers who watch them."

[topics.oceans]
title = "Oceans & fisheries"
tags = ["asia-pacific"]
"""


@dataclass(frozen=True)
class Shared:
    """One built and mailed site and its server, for tests that change nothing."""

    site: SiteConfig
    server: WebServer
    client: httpx.Client
    links: dict[str, str]  # address -> the List-Unsubscribe link of digest 1


def base_path(site: SiteConfig) -> str:
    return urlsplit(site.base_url).path


def feeds_path(site: SiteConfig) -> str:
    return urlsplit(site.feeds.url).path


def unsubscribe_path(site: SiteConfig) -> str:
    return urlsplit(site.digest.unsubscribe_url).path


def preferences_path(site: SiteConfig) -> str:
    return urlsplit(site.digest.preferences_url).path


def add_choices(folder: Path) -> None:
    """Make the site in *folder* one whose subscribers choose (CHOICES)."""
    config = folder / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8") + CHOICES, encoding="utf-8")


def choosing_site(folder: Path, now: datetime) -> SiteConfig:
    """The site in *folder* (a copy of tests/sites/basic) with CHOICES, built, and READERS
    subscribed."""
    add_choices(folder)
    site = load_config(folder / "publisher.toml")
    build.build(site, now=now)
    add_subscribers(site, READERS, now)
    return site


def personal_token(site: SiteConfig, address: str) -> str:
    """The token of *address*'s links (unsubscribe and preferences), as a digest carries it."""
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state) as store:
        subscriber = store.find_subscriber(address)
    assert subscriber is not None, address
    return tokens.make_token(secret, subscriber.id, subscriber.email)


def stored_choices(site: SiteConfig) -> dict[str, tuple[object, object]]:
    """address -> (topics, cadence) as the subscribers table holds them."""
    rows = query_rows(site, "SELECT email, topics, cadence FROM subscribers")
    return {str(row[0]): (row[1], row[2]) for row in rows}


def local_path(url: str) -> str:
    """The path and query of a public link, to ask the local server for."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def query_rows(site: SiteConfig, sql: str) -> list[tuple[object, ...]]:
    with open_store(site.state) as store:
        return [tuple(row) for row in store.conn.execute(sql).fetchall()]


def subscriber_statuses(site: SiteConfig) -> dict[str, str]:
    return dict(query_rows(site, "SELECT email, status FROM subscribers"))  # type: ignore[arg-type]


def read_messages(folder: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def confirmations_sent(site: SiteConfig) -> list[EmailMessage]:
    return read_messages(site.delivery.outbox_dir / "confirmations")


def recipient_addresses(messages: list[EmailMessage]) -> list[str]:
    return sorted(message["To"].addresses[0].addr_spec for message in messages)


def confirmation_link(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (link,) = re.findall(r"https://\S+/confirm\?token=\S+", text)
    return str(link)


def link_token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def unsubscribe_link(message: EmailMessage) -> str:
    return str(message["List-Unsubscribe"]).split(",")[0].strip("<> ")


def mail_digest(site: SiteConfig, clock: Clock) -> dict[str, str]:
    """READERS subscribed and sent digest 1: address -> their List-Unsubscribe link."""
    add_subscribers(site, READERS, clock())
    report = digests.send_digests(site, now=clock)
    assert report.sent == len(READERS)
    messages = read_messages(site.delivery.outbox_dir / "digest-0001")
    return {m["To"].addresses[0].addr_spec: unsubscribe_link(m) for m in messages}


def sign_up(client: httpx.Client, site: SiteConfig, address: str, **headers: str) -> httpx.Response:
    return client.post(
        base_path(site) + "subscribe", data={"email": address, "name": ""}, headers=headers
    )


def assert_nothing_stored(site: SiteConfig) -> None:
    assert query_rows(site, "SELECT * FROM signups") == []
    assert query_rows(site, "SELECT * FROM signup_requests") == []
    assert query_rows(site, "SELECT * FROM subscribers") == []
    assert list(site.delivery.outbox_dir.rglob("*.eml")) == []


class PageParts(HTMLParser):
    """The forms, buttons, inputs and links of a page, however it is laid out."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.buttons = 0
        self.links: list[str] = []
        self.inputs: list[dict[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and dict(attrs).get("href"):
            self.links.append(str(dict(attrs)["href"]))
        elif tag == "form":
            self.forms.append(dict(attrs))
        elif tag == "button" or (tag == "input" and dict(attrs).get("type") == "submit"):
            self.buttons += 1
        if tag == "input":
            self.inputs.append(dict(attrs))

    def ticked(self, name: str) -> list[str]:
        """The values of the checked boxes or buttons called *name*."""
        return [
            str(i.get("value")) for i in self.inputs if i.get("name") == name and "checked" in i
        ]

    def offered(self, name: str) -> list[str]:
        """The values of every box or button called *name*, checked or not."""
        return [str(i.get("value")) for i in self.inputs if i.get("name") == name]


def digest_links(html: str) -> list[str]:
    """The links to digests' web copies (`…/digests/<n>/`), not to the archive itself."""
    return [link for link in PageParts(html).links if re.search(r"/digests/\d+/$", link)]


def visible_text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]*>", " ", html).split())


def pending_link(client: httpx.Client, site: SiteConfig, address: str) -> str:
    assert sign_up(client, site, address).status_code == 200
    return confirmation_link(confirmations_sent(site)[-1])


def forged(token: str) -> str:
    flipped = "A" if token[-1] != "A" else "B"
    return token[:-1] + flipped


def confirm_form(html: str, link: str) -> dict[str, str | None]:
    """The page's one form, posting to the confirmation URL (or, with no action, to itself)."""
    path = urlsplit(link).path
    (form,) = [f for f in PageParts(html).forms if urlsplit(f.get("action") or path).path == path]
    return form


def press(client: httpx.Client, link: str) -> httpx.Response:
    """What a browser does with the confirmation page: GET it, then POST its one form."""
    shown = client.get(local_path(link))
    assert shown.status_code == 200
    form = confirm_form(shown.text, link)
    assert (form.get("method") or "").lower() == "post"
    action = local_path(form.get("action") or link)
    return client.post(action, content=b"", headers={"Content-Type": FORM})


def new_article(site: SiteConfig) -> None:
    (site.content_dir / "2026-11-27-new.md").write_text(
        '---\ntitle: "Talks resume in Geneva"\ndate: "2026-11-27T13:30:00+01:00"\n---\n\nBody.\n',
        encoding="utf-8",
    )


def unsubscribe_form(html: str, link: str) -> dict[str, str | None]:
    """The page's one form that posts to the unsubscribe URL (or, with no action, to itself)."""
    path = urlsplit(link).path
    (form,) = [f for f in PageParts(html).forms if urlsplit(f.get("action") or path).path == path]
    return form
