"""Sites that mail: subscribers added, SMTP pointed at the test server, messages read back."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from publisher import tokens
from publisher.config import load_config
from publisher.mail import subscribers
from publisher.store import open_store

ADDRESSES = [f"reader{n}@example.org" for n in range(1, 6)]

TEN_READERS = [f"reader{n:02d}@example.org" for n in range(1, 11)]


def add_subscribers(site, addresses, now):
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state) as store, store.transaction():
        for address in addresses:
            subscribers.add_subscriber(store, secret, address, "", now=now)


def smtp_site(site_dir: Path, port: int, extra: str = ""):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f"""
[delivery]
method = "smtp"
backoff = 0.01
max_attempts = 3
bounce_after = 1
{extra}
[delivery.smtp]
host = "127.0.0.1"
port = {port}
timeout = 5
""",
        encoding="utf-8",
    )
    return load_config(config)


def eml_files(site):
    return sorted(site.delivery.outbox_dir.rglob("*.eml"))


def parse_message(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def token_of(message) -> str:
    link = message["List-Unsubscribe"].split(",")[0].strip("<> ")
    return parse_qs(urlsplit(link).query)["token"][0]


# The columns of `publisher digest status`, as its header line names them.
STATUS_HEADER = [
    "digest",
    "created",
    "articles",
    "sent",
    "pending",
    "sending",
    "uncertain",
    "failed",
    "bounced",
    "segment",
]


TOPICS = """
[topics.arms]
title = "Arms control"
tags = ["arms control"]

[topics.asia]
title = "Asia-Pacific"
tags = ["asia-pacific"]
"""


def offer_choices(site_dir):
    """Give a test site two topics and two cadences to choose from."""
    config = site_dir / "publisher.toml"
    text = config.read_text(encoding="utf-8")
    if "[digest]" in text:
        text = text.replace(
            "[digest]\n",
            '[digest]\ncadences = ["weekly on monday at 07:00", "daily at 07:00"]\n',
            1,
        )
    else:
        text += '\n[digest]\ncadences = ["weekly on monday at 07:00", "daily at 07:00"]\n'
    config.write_text(text + TOPICS, encoding="utf-8")
