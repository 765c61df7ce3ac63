"""publisher.errors: every message reads `<where>: <what is wrong>`, with its exit code."""

from __future__ import annotations

import pytest

from publisher.errors import (
    ConfigError,
    ContentError,
    FieldProblem,
    LockHeldError,
    MigrationError,
    OutputError,
    PublisherError,
    StoreError,
    SubscriberError,
    TemplateError,
    TransientDeliveryError,
)


def test_the_message_reads_where_then_what():
    error = OutputError("feeds/rss.xml", "cannot write (Permission denied)")
    assert str(error) == "feeds/rss.xml: cannot write (Permission denied)"
    assert (error.where, error.message) == ("feeds/rss.xml", "cannot write (Permission denied)")
    assert str(PublisherError("", "no place to name")) == "no place to name"


def test_a_message_of_several_problems_gives_one_located_line_each():
    error = ConfigError(
        "publisher.toml", "[site] title: missing (required)\n[feeds]: missing table"
    )
    assert error.lines() == [
        "publisher.toml: [site] title: missing (required)",
        "publisher.toml: [feeds]: missing table",
    ]
    assert PublisherError("", "one\ntwo").lines() == ["one", "two"]


def test_a_content_error_names_the_file_and_every_field():
    problems = [FieldProblem("title", "missing (required)"), FieldProblem("date", "not a date")]
    error = ContentError("content/a.md", problems)
    assert error.problems == tuple(problems)
    assert str(error) == "content/a.md: title: missing (required); date: not a date"
    assert error.lines() == [
        "content/a.md: title: missing (required)",
        "content/a.md: date: not a date",
    ]


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (PublisherError, 1),
        (ConfigError, 2),
        (TemplateError, 1),
        (StoreError, 1),
        (MigrationError, 1),
        (OutputError, 1),
        (TransientDeliveryError, 1),
        (LockHeldError, 75),
        (SubscriberError, 1),
    ],
)
def test_each_kind_exits_with_its_code(kind, code):
    error = kind("where", "what")
    assert isinstance(error, PublisherError)
    assert error.exit_code == code
