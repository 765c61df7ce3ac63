"""Subscribers made straight in a store, bad addresses and tokens, and the CSV files' problems.

Also the topics and cadences a site offers its subscribers, for the tests of their choices.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from publisher.config import SiteConfig, parse_config
from publisher.mail.subscribers import KEEP, add_subscriber
from publisher.tokens import make_token
from support.paths import SITES

# What tests/sites/basic offers when its tests append this to its publisher.toml.
CHOICES_TOML = """
[digest]
cadence = "weekly on monday at 07:00"
cadences = ["weekly on monday at 07:00", "daily at 07:00", "each article"]

[topics.energy]
title = "Energy"
tags = ["Energy", "gas prices"]

[topics.danube]
title = "Danube region"
tags = ["Vienna", "Danube"]
description = "The river's cities and states."

[topics.arms-control]
title = "Arms control"
tags = ["arms control"]
"""
DEFAULT_CADENCE = "default (weekly on monday at 07:00)"

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32

BAD_ADDRESSES = [
    (
        "not-an-address",
        "'not-an-address' is not a valid email address (An email address must have an @-sign.)",
    ),
    (
        "a@b",
        "'a@b' is not a valid email address "
        "(The part after the @-sign is not valid. It should have a period.)",
    ),
    ("x@", "'x@' is not a valid email address (There must be something after the @-sign.)"),
    (
        "x@example.org\r\nBcc: y@example.org",
        "'x@example.org\\r\\nBcc: y@example.org' is not a valid email address "
        "(it contains a line break or control character)",
    ),
    (
        "x@example.org\n",
        "'x@example.org\\n' is not a valid email address "
        "(it contains a line break or control character)",
    ),
    ("", "'' is not a valid email address (it is empty)"),
    ("   ", "'   ' is not a valid email address (it is empty)"),
    (
        "Bob <bob@example.org>",
        "'Bob <bob@example.org>' is not a valid email address (A display name and angle "
        "brackets around the email address are not permitted here.)",
    ),
    (
        "a@example.org, b@example.org",
        "'a@example.org, b@example.org' is not a valid email address "
        "(The part after the @-sign contains invalid characters: ',', '@', SPACE.)",
    ),
    (
        "zoë@example.org",
        "'zoë@example.org' is not a valid email address "
        "(Internationalized characters before the @-sign are not supported: 'ë'.)",
    ),
]


def dump_subscribers(store) -> list[tuple]:
    """Every subscriber row as stored, on either backend."""
    return [tuple(row) for row in store.conn.execute("SELECT * FROM subscribers ORDER BY id")]


def make_subscriber(store, address, name="", *, now, status="active", topics=KEEP, cadence=KEEP):
    with store.transaction():
        subscriber, _ = add_subscriber(
            store, SECRET, address, name, now=now, topics=topics, cadence=cadence
        )
        if status != "active":
            store.set_subscriber_status(subscriber.id, status, now=now)
    return store.get_subscriber(subscriber.id)


def bad_tokens(secret: bytes, subscriber_id: int, email: str) -> dict[str, str]:
    good = make_token(secret, subscriber_id, email)
    mac = good.split(".", 1)[1]
    changed = ("A" if mac[0] != "A" else "B") + mac[1:]
    return {
        "forged": f"{subscriber_id}.{changed}",
        "truncated": good[:-1],
        "id only": f"{subscriber_id}.",
        "other site": make_token(OTHER_SECRET, subscriber_id, email),
        "non-numeric id": f"ada.{mac}",
        "leading zero": f"0{good}",
        "negative id": f"-{good}",
        "unknown id": make_token(secret, subscriber_id + 1000, email),
        "padded": good + "=",
        "surrounding space": f" {good}",
        "too long": f"{subscriber_id}.{mac}" + "A" * 200,
        "empty": "",
    }


BAD_TOKEN_KINDS = list(bad_tokens(SECRET, 1, "x@example.org"))

MIXED_PROBLEMS = (
    "mixed.csv:3: 'not-an-address' is not a valid email address "
    "(An email address must have an @-sign.)",
    "mixed.csv:4: 'bea@b' is not a valid email address "
    "(The part after the @-sign is not valid. It should have a period.)",
    "mixed.csv:6: duplicate of line 2 ('ADA@example.org')",
    "mixed.csv:7: '' is not a valid email address (it is empty)",
    "mixed.csv:11: duplicate of line 8 ('carl@example.org')",
    "mixed.csv:12: 'eve@example.org\\nBcc: mallory@example.org' is not a valid email address "
    "(it contains a line break or control character)",
    "mixed.csv:14: '' is not a valid email address (it is empty)",
)


def offer_choices(site_dir: Path, extra: str = CHOICES_TOML) -> None:
    """Append the topics and cadences (or *extra*) to a copied site's publisher.toml."""
    with (site_dir / "publisher.toml").open("a", encoding="utf-8") as config:
        config.write(extra)


def basic_site(extra: str = "") -> SiteConfig:
    """tests/sites/basic's configuration with *extra* TOML after it, read without copying it."""
    path = SITES / "basic" / "publisher.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8") + extra)
    return parse_config(data, config_path=path, display_path="publisher.toml")


PLAIN_SITE = basic_site()  # no topics, one cadence
CHOOSING_SITE = basic_site(CHOICES_TOML)
