"""config.values: the checks of single values, and the reader that collects every problem."""

from __future__ import annotations

from datetime import timedelta

import pytest

from publisher.config import values
from publisher.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), (" 5m ", 300), ("2h", 7200), ("168h", 7 * 24 * 3600)]
)
def test_an_interval_is_read_in_seconds_minutes_or_hours(text, seconds):
    assert values.interval("rebuild_every", text) == timedelta(seconds=seconds)


def test_an_absolute_url_ends_in_one_slash():
    assert values.absolute_url("base_url", " https://x.example/news ") == "https://x.example/news/"
    assert values.absolute_url("base_url", "https://x.example/") == "https://x.example/"
    assert values.absolute_url_as_is("url", "https://x.example/hub") == "https://x.example/hub"


@pytest.mark.parametrize(
    ("value", "described"),
    [
        (True, "a boolean (True)"),
        (3, "an integer (3)"),
        (1.5, "a number (1.5)"),
        ("x", "a string ('x')"),
        ([1], "an array ([1])"),
        ({"a": 1}, "a table ({'a': 1})"),
    ],
)
def test_a_value_is_described_by_its_toml_kind_and_quoted(value, described):
    assert values.describe(value) == described


def test_a_choice_names_every_accepted_value():
    check = values.choice("none", "starttls", "tls")
    assert check("security", "tls") == "tls"
    with pytest.raises(ValueError, match=r"^expected 'none' or 'starttls' or 'tls' \('ssl'\)$"):
        check("security", "ssl")


def test_a_boolean_is_not_a_number_and_a_number_is_not_a_boolean():
    with pytest.raises(ValueError, match=r"^expected an integer, got a boolean \(True\)$"):
        values.positive_int("max_items", True)
    with pytest.raises(ValueError, match=r"^expected true or false, got an integer \(1\)$"):
        values.boolean("tag_feeds", 1)
    with pytest.raises(ValueError, match=r"^expected a port number from 1 to 65535, got"):
        values.port("port", True)


def test_the_reader_collects_every_problem_and_raises_them_at_once():
    reader = values.Reader("publisher.toml")
    data = {"site": {"title": 3, "langauge": "en"}, "feeds": "all"}
    site = reader.table(data, "site", required=True)
    assert reader.get(site, "site", "title", values.non_empty_text, default="?") == "?"
    assert reader.get(site, "site", "base_url", values.absolute_url, required=True) is None
    reader.known_keys("site", site, {"title": None, "base_url": None, "language": None})
    assert reader.table(data, "feeds") == {}
    assert reader.table(data, "paths", required=True) == {}
    # A key of a missing table is not reported again: the table's line says it all.
    reader.get({}, "paths", "content", values.relative_path, required=True)
    with pytest.raises(ConfigError) as caught:
        reader.raise_if_any()
    assert caught.value.lines() == [
        "publisher.toml: [site] title: expected a string, got an integer (3)",
        "publisher.toml: [site] base_url: missing (required)",
        "publisher.toml: [site] unknown key 'langauge' (did you mean 'language'?); "
        "known keys: base_url, language, title",
        "publisher.toml: [feeds]: expected a table, got a string ('all')",
        "publisher.toml: [paths]: missing table",
    ]
