"""config.options: what a validated site derives from its settings."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from publisher.config import EACH_ARTICLE, Cadence, parse_cadence


@pytest.mark.parametrize(
    ("cadence", "text"),
    [
        (Cadence(None, 7, 0), "daily at 07:00"),
        (Cadence(0, 7, 5), "weekly on monday at 07:05"),
        (Cadence(6, 23, 59), "weekly on sunday at 23:59"),
        (EACH_ARTICLE, "each article"),
    ],
)
def test_a_cadence_reads_as_it_is_written(cadence, text):
    assert str(cadence) == text
    assert parse_cadence(text) == cadence


@pytest.mark.parametrize(
    ("text", "cadence"),
    [
        ("Daily at 7:00", Cadence(None, 7, 0)),
        ("  weekly   on  FRIDAY at 16:30 ", Cadence(4, 16, 30)),
        ("Each\tArticle", EACH_ARTICLE),
        ("daily at 00:00", Cadence(None, 0, 0)),
    ],
)
def test_a_cadence_is_read_as_people_write_it(text, cadence):
    assert parse_cadence(text) == cadence


@pytest.mark.parametrize(
    "text",
    ["", "daily", "daily at 24:00", "daily at 07:60", "weekly on someday at 07:00", "each", "7:00"],
)
def test_a_cadence_not_written_right(text):
    with pytest.raises(ValueError, match=r".") as caught:
        parse_cadence(text)
    assert str(caught.value) == (
        f"expected 'daily at HH:MM', 'weekly on <day> at HH:MM' or 'each article' ({text!r})"
    )


def test_paths_are_shown_as_the_user_would_write_them(site, tmp_path):
    assert site.display(site.content_dir / "2021-03-04-observers.md") == (
        "content/2021-03-04-observers.md"
    )
    assert site.display(site.state_db) == ".publisher/state.db"
    outside = tmp_path / "elsewhere" / "people.csv"  # the site is tmp_path/basic
    assert site.display(outside) == str(outside)
    assert site.root == site.config_path.parent
    assert site.templates_dir == site.root / "templates"


def test_the_fingerprint_changes_with_what_articles_are_read_with_and_only_that(site):
    assert replace(site, title="Another title", language="de").fingerprint() == site.fingerprint()
    for changed in (
        replace(site, base_url="https://elsewhere.example/"),
        replace(site, timezone=ZoneInfo("UTC")),
        replace(site, author=replace(site.author, name="Another Desk")),
        replace(site, author=replace(site.author, email=None)),
        replace(site, permalink="{slug}/"),
        replace(site, content_dir=site.content_dir / "elsewhere"),
    ):
        assert changed.fingerprint() != site.fingerprint()
