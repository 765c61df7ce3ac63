"""publisher.text: the plain-text helpers every stage cleans its text with."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.strategies import SETTINGS, TEXT

from publisher.text import (
    columns,
    display_width,
    one_line,
    shorten,
    slugify,
    strip_forbidden,
    strip_tags,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\x00b\x07c\x1bd\x7fe\x85f\x9fg", "abcdefg"),
        ("tab\tnew\nline\rcr", "tab\tnew\nline\rcr"),
        ("\ufffd\ufffe\uffffx\ud800", "x"),
        ("]]> <script>", "]]> <script>"),
    ],
)
def test_strip_forbidden(text, expected):
    assert strip_forbidden(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Harbour\n\treopens \u2028 now ", "Harbour reopens now"),
        ("a\x00\x07b", "ab"),
        ("\x1b \n", ""),
    ],
)
def test_one_line(text, expected):
    assert one_line(text) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly 10", 10, "exactly 10"),
        ("one two three four", 10, "one two…"),
        ("one two, three", 9, "one two…"),
        ("abcdefghijklmnop", 10, "abcdefghij…"),
        ("a bcdefghijklmnop", 10, "a bcdefghi…"),  # a space too early is no word boundary
    ],
)
def test_shorten(text, limit, expected):
    assert shorten(text, limit) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Arms Control", "arms-control"),
        ("Überraschung in Wien", "uberraschung-in-wien"),
        ("Straße", "straße"),
        ("Москва", "москва"),
        ("東京", "東京"),
        ("  --a  b--  ", "a-b"),
        ("../../etc", "etc"),
        ("???", ""),
    ],
)
def test_slugify(text, expected):
    assert slugify(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Museum reopens <script>alert(1)</script>", "Museum reopens"),
        ("The <em>real</em>\n cost", "The real cost"),
        ("<STYLE>p { color: red }</STYLE>Plain", "Plain"),
        ("Talks <!-- a note -->ended", "Talks ended"),
        ("Prices: a < b and c > d", "Prices: a < b and c > d"),  # no tag: text, kept as written
        ("AT&T buys <3 hearts", "AT&T buys <3 hearts"),
        ("No markup\nat all", "No markup\nat all"),  # without a "<" the text is left alone
    ],
)
def test_strip_tags_removes_tags_scripts_and_comments_and_keeps_look_alikes(text, expected):
    assert strip_tags(text) == expected


def test_columns_pads_to_terminal_columns_and_keeps_cells_past_the_widths():
    assert columns(("山田", "x"), [4]) == "山田  x"
    assert columns(("a", "b", "c", "d"), [2, 2]) == "a   b   c  d"
    assert columns(("a", ""), [1, 3]) == "a"  # no trailing spaces


def test_width_counts_terminal_columns():
    assert display_width("Ada") == 3
    assert display_width("山田") == 4
    assert display_width("e\u0301") == 1  # e + combining acute
    assert columns(("a", "bb", "c"), [3, 3]) == "a    bb   c"


# -- against the obvious way of doing each ------------------------------------------


@SETTINGS
@given(TEXT)
def test_one_line_collapses_what_a_whitespace_pattern_would(text):
    expected = re.sub(r"\s+", " ", strip_forbidden(text)).strip()
    assert one_line(text) == expected


@SETTINGS
@given(st.text(st.characters(max_codepoint=127), max_size=30))
def test_slugs_of_ascii_text_take_the_unicode_path_s_result(text):
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    expected = re.sub(r"[^\w]+", "-", unicodedata.normalize("NFC", bare).lower()).strip("-_")
    assert slugify(text) == expected
