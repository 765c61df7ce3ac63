"""mail.segments: stored choices read against the site's topics and cadences.

Sites: CHOOSING_SITE offers energy, danube and arms-control (in that order) and the cadences
weekly on monday at 07:00 (the default), daily at 07:00 and each article; PLAIN_SITE offers
no topic and its default cadence alone.
"""

from __future__ import annotations

import pytest
from support.clock import NOW
from support.subscribers import CHOOSING_SITE, PLAIN_SITE

from publisher.config import EACH_ARTICLE, Cadence
from publisher.mail.segments import (
    Segment,
    TopicMatcher,
    cadence_of,
    default_segment,
    normalise_topics,
    parse_choice_cadence,
    parse_topics,
    segment_for,
    segment_of,
    topic_titles,
)
from publisher.model import Subscriber

WEEKLY = Cadence(0, 7, 0)
DAILY = Cadence(None, 7, 0)
KNOWN = "(topics: energy, danube, arms-control; or 'everything')"
OFFERED = "'weekly on monday at 07:00', 'daily at 07:00', 'each article'"


def _subscriber(topics: tuple[str, ...] | None, cadence: str | None) -> Subscriber:
    return Subscriber(1, "ada@example.org", "", "active", NOW, topics=topics, cadence=cadence)


# -- topics --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        (None, None),
        ((), None),  # no choice is no choice
        (("danube", "energy"), ("energy", "danube")),  # the config's order
        (["danube", "danube"], ("danube",)),
        (("energy", "danube", "arms-control"), None),  # every topic is everything
        (("arms-control", "gone"), ("arms-control",)),  # one no longer offered is left out
        (("gone",), None),  # nothing offered left: everything
    ],
)
def test_normalise_topics(chosen, expected):
    assert normalise_topics(CHOOSING_SITE, chosen) == expected


def test_normalise_topics_on_a_site_without_topics():
    assert normalise_topics(PLAIN_SITE, ("energy",)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("energy", ("energy",)),
        ("danube,energy", ("energy", "danube")),
        (" danube , energy ", ("energy", "danube")),
        ("energy,danube,arms-control", None),
        ("everything", None),
        ("Everything", None),
        ("all", None),
        ("*", None),
        ("", None),
        (" ", None),
    ],
)
def test_parse_topics(text, expected):
    assert parse_topics(CHOOSING_SITE, text) == expected


@pytest.mark.parametrize(
    ("site", "text", "message"),
    [
        (CHOOSING_SITE, "sport", f"unknown topic 'sport' {KNOWN}"),
        (CHOOSING_SITE, "energy,sport", f"unknown topic 'sport' {KNOWN}"),
        (CHOOSING_SITE, "Energy", f"unknown topic 'Energy' {KNOWN}"),  # slugs as written
        (CHOOSING_SITE, "energy danube", f"unknown topic 'energy danube' {KNOWN}"),
        (CHOOSING_SITE, "energy,", f"unknown topic '' {KNOWN}"),
        (
            PLAIN_SITE,
            "energy",
            "unknown topic 'energy' (topics: none: this site has no [topics]; or 'everything')",
        ),
    ],
)
def test_parse_topics_refuses(site, text, message):
    with pytest.raises(ValueError, match=r".") as caught:
        parse_topics(site, text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("topics", "titles"),
    [
        (None, "everything"),
        (("energy", "danube"), "Energy, Danube region"),
        (("gone",), "gone"),  # a slug the config lacks is shown as it is
    ],
)
def test_topic_titles(topics, titles):
    assert topic_titles(CHOOSING_SITE, topics) == titles


# -- cadences ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("  ", None),
        ("daily at 7:00", "daily at 07:00"),
        ("Each Article", "each article"),
        ("weekly on MONDAY at 07:00", "weekly on monday at 07:00"),
    ],
)
def test_parse_choice_cadence(text, expected):
    assert parse_choice_cadence(CHOOSING_SITE, text) == expected


@pytest.mark.parametrize(
    ("site", "text", "message"),
    [
        (
            CHOOSING_SITE,
            "daily at 08:00",
            f"'daily at 08:00' is not offered ([digest] cadences: {OFFERED})",
        ),
        (
            PLAIN_SITE,
            "daily at 07:00",
            "'daily at 07:00' is not offered ([digest] cadences: 'weekly on monday at 07:00')",
        ),
        (
            CHOOSING_SITE,
            "weekly at 07:00",
            "expected 'daily at HH:MM', 'weekly on <day> at HH:MM' or 'each article' "
            "('weekly at 07:00')",
        ),
        (
            CHOOSING_SITE,
            "default",  # the operator's word for it is read by mail.subscribers, not here
            "expected 'daily at HH:MM', 'weekly on <day> at HH:MM' or 'each article' ('default')",
        ),
    ],
)
def test_parse_choice_cadence_refuses(site, text, message):
    with pytest.raises(ValueError, match=r".") as caught:
        parse_choice_cadence(site, text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, WEEKLY),  # none chosen: the default
        ("daily at 07:00", DAILY),
        ("each article", EACH_ARTICLE),
        ("weekly on monday at 07:00", WEEKLY),
        ("daily at 08:00", WEEKLY),  # no longer offered: the default
        ("fortnightly", WEEKLY),  # not a cadence at all: the default
    ],
)
def test_cadence_of(stored, expected):
    assert cadence_of(CHOOSING_SITE, stored) == expected


def test_cadence_of_follows_the_default_where_it_is_the_only_one():
    assert cadence_of(PLAIN_SITE, "each article") == WEEKLY


# -- segments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topics", "cadence", "segment", "key"),
    [
        (None, None, Segment(None, WEEKLY), "*|weekly on monday at 07:00"),
        (
            ("danube", "energy"),
            "daily at 07:00",
            Segment(("energy", "danube"), DAILY),
            "energy,danube|daily at 07:00",
        ),
        (("arms-control",), "each article", Segment(("arms-control",), EACH_ARTICLE), None),
        (("energy", "danube", "arms-control"), None, Segment(None, WEEKLY), None),
        (("gone", "energy"), "daily at 08:00", Segment(("energy",), WEEKLY), None),
    ],
)
def test_segment_of(topics, cadence, segment, key):
    assert segment_of(CHOOSING_SITE, _subscriber(topics, cadence)) == segment
    assert segment_for(CHOOSING_SITE, topics, cadence) == segment
    if key is not None:
        assert segment.key == key


def test_choices_that_mean_the_same_are_one_segment():
    same = [
        segment_of(CHOOSING_SITE, _subscriber(topics, cadence))
        for topics, cadence in [
            (("energy", "danube"), None),
            (("danube", "energy"), "daily at 08:00"),  # not offered: the default
            (("danube", "energy", "gone"), "fortnightly"),
        ]
    ]
    assert {segment.key for segment in same} == {"energy,danube|weekly on monday at 07:00"}
    assert default_segment(CHOOSING_SITE) == segment_of(CHOOSING_SITE, _subscriber(None, None))
    assert default_segment(CHOOSING_SITE).key == "*|weekly on monday at 07:00"


def test_segment_key_and_description():
    segment = Segment(("energy", "danube"), DAILY)
    assert segment.key == "energy,danube|daily at 07:00"
    assert segment.describe(CHOOSING_SITE) == "Energy, Danube region · daily at 07:00"
    everything = Segment(None, EACH_ARTICLE)
    assert everything.key == "*|each article"
    assert everything.describe(CHOOSING_SITE) == "everything · each article"


# -- which articles a segment's topics take -------------------------------------------


def test_topic_matcher_knows_each_topic_by_its_tags_slugs():
    matcher = TopicMatcher.for_site(CHOOSING_SITE)
    assert matcher.tags_of == {
        "energy": frozenset({"energy", "gas-prices"}),  # "Energy", "gas prices"
        "danube": frozenset({"vienna", "danube"}),
        "arms-control": frozenset({"arms-control"}),
    }
    assert TopicMatcher.for_site(PLAIN_SITE).tags_of == {}


@pytest.mark.parametrize(
    ("topics", "tag_slugs", "matches"),
    [
        (None, [], True),  # everything takes an article without tags too
        (None, ["sport"], True),
        (("energy",), ["gas-prices"], True),
        (("energy",), ["energy", "sport"], True),
        (("energy",), ["vienna"], False),
        (("energy",), [], False),
        (("energy", "danube"), ["vienna"], True),
        (("arms-control",), ["arms control"], False),  # tag slugs, not names
        (("gone",), ["energy"], False),  # a topic the site lacks takes nothing
    ],
)
def test_topic_matcher_matches(topics, tag_slugs, matches):
    assert TopicMatcher.for_site(CHOOSING_SITE).matches(topics, tag_slugs) is matches
