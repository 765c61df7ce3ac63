"""mail.preferences: what a form chose, read against the site's topics and cadences, and saved."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.paths import SITES
from support.subscribers import SECRET
from support.web import add_choices

from publisher.config import SiteConfig, load_config
from publisher.errors import SubscriberError
from publisher.mail import subscribers
from publisher.mail.preferences import NO_TOPIC, Choices, read_choices, save_choices
from publisher.tokens import suppression_key

WEEKLY, DAILY = "weekly on monday at 07:00", "daily at 07:00"


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    folder = shutil.copytree(SITES / "basic", tmp_path / "basic")
    add_choices(folder)
    return load_config(folder / "publisher.toml")


@pytest.mark.parametrize(
    ("topics", "cadence", "current", "expected"),
    [
        (["oceans", "diplomacy"], DAILY, Choices(), Choices(("diplomacy", "oceans"), DAILY)),
        (["oceans", "elections", "diplomacy"], None, Choices(("oceans",)), Choices(None)),
        (None, None, Choices(("oceans",), DAILY), Choices(("oceans",), DAILY)),
        (None, WEEKLY, Choices(), Choices()),  # the default they follow: still following it
        (None, WEEKLY, Choices(None, DAILY), Choices(None, WEEKLY)),
        (None, " Daily  at 7:00 ", Choices(), Choices(None, DAILY)),
        (None, "", Choices(None, DAILY), Choices()),
        (["oceans", "oceans"], "each article", Choices(), Choices(("oceans",), "each article")),
    ],
    ids=[
        "both",
        "every-topic",
        "nothing-offered",
        "default-kept",
        "default-chosen",
        "written-loosely",
        "empty-cadence",
        "twice",
    ],
)
def test_read_choices(site, topics, cadence, current, expected):
    assert read_choices(site, topics, cadence, current=current) == expected


@pytest.mark.parametrize(
    ("topics", "cadence", "where", "message"),
    [
        (
            ["weather"],
            None,
            "topics",
            "there is no topic 'weather' to choose (topics: diplomacy, elections, oceans)",
        ),
        ([], None, "topics", NO_TOPIC),
        (None, "hourly", "cadence", "expected 'daily at HH:MM', 'weekly on <day> at HH:MM' "),
        (None, "daily at 09:00", "cadence", "'daily at 09:00' is not offered"),
    ],
    ids=["unknown-topic", "none-ticked", "not-a-cadence", "not-offered"],
)
def test_read_choices_names_what_is_wrong(site, topics, cadence, where, message):
    with pytest.raises(SubscriberError) as raised:
        read_choices(site, topics, cadence)
    assert raised.value.where == where
    assert raised.value.message.startswith(message)


def test_a_topic_on_a_site_without_topics_is_refused(tmp_path):
    plain = load_config(shutil.copytree(SITES / "basic", tmp_path / "plain") / "publisher.toml")
    with pytest.raises(SubscriberError) as raised:
        read_choices(plain, ["energy"], None)
    assert raised.value.message == (
        "there is no topic 'energy' to choose (topics: none: this site has no topics)"
    )
    assert read_choices(plain, None, None) == Choices()


def test_saving_stores_the_choices_and_a_line_of_history_once(site, store, now):
    with store.transaction():
        added, _ = subscribers.add_subscriber(store, SECRET, "ada@example.org", "", now=now)
        chosen = Choices(("diplomacy", "oceans"), "each article")
        saved = save_choices(store, SECRET, site, added, chosen, now=now)
        again = save_choices(store, SECRET, site, saved, chosen, now=now)
    stored = store.get_subscriber(added.id)
    assert (stored.topics, stored.cadence) == (("diplomacy", "oceans"), "each article")
    assert again == saved
    history = store.subscriber_events(suppression_key(SECRET, "ada@example.org"))
    assert [(e.change, e.reason, e.source) for e in history] == [
        ("→active", "added by the operator", "cli"),
        ("active", "chose Diplomacy, Oceans & fisheries · each article", "web"),
    ]
