"""The quick front matter reader must agree with PyYAML wherever it answers at all."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.paths import SITES

from publisher.content import frontmatter

SETTINGS = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _pyyaml(source: str) -> Any:
    return yaml.load(source, Loader=frontmatter.LOADER)


def _assert_agrees(source: str) -> None:
    quick = frontmatter.read_simple(source)
    if quick is None:
        return
    assert quick == _pyyaml(source), source
    # Equal values of equal types: True == 1, but a bool is not a number here.
    assert [type(v) for v in quick.values()] == [type(v) for v in _pyyaml(source).values()]


def _assert_agrees_or_leaves_errors(source: str) -> None:
    """What PyYAML refuses, the quick reader leaves to it (to report); the rest agrees."""
    try:
        _pyyaml(source)
    except (yaml.YAMLError, ValueError, LookupError):
        assert frontmatter.read_simple(source) is None, source
        return
    _assert_agrees(source)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('title: "Vienna talks"\n', {"title": "Vienna talks"}),
        ("title: Vienna talks resume  \n", {"title": "Vienna talks resume"}),
        ("title: 'It''s late'\n", {"title": "It's late"}),
        ('summary: "He said \\"no\\" \\\\ \\/"\n', {"summary": 'He said "no" \\ /'}),
        ("title: C# in 2020\n", {"title": "C# in 2020"}),
        ("date: 2020-06-22\n", {"date": "2020-06-22"}),
        ("date: 2020-06-22T18:30:00+02:00\n", {"date": "2020-06-22T18:30:00+02:00"}),
        ("draft: true\nother: Off\n", {"draft": True, "other": False}),
        ("summary: ~\nlink:\n", {"summary": None, "link": None}),
        (
            "tags: [\"arms control\", vienna, 'osce']\n",
            {"tags": ["arms control", "vienna", "osce"]},
        ),
        ("tags: []\n", {"tags": []}),
        (
            "tags:\n  - arms control\n  - vienna\ntitle: x\n",
            {"tags": ["arms control", "vienna"], "title": "x"},
        ),
        ("tags:\n- a\n- b\n\n", {"tags": ["a", "b"]}),
        ("# a comment\ntitle: x\n\n", {"title": "x"}),
        ("title: a\ntitle: b\n", {"title": "b"}),
        ("title: Ünïcödé – “quoted” 東京\n", {"title": "Ünïcödé – “quoted” 東京"}),
    ],
)
def test_the_usual_shapes_are_read_without_pyyaml(source: str, expected: dict[str, Any]) -> None:
    assert frontmatter.read_simple(source) == expected
    _assert_agrees(source)


@pytest.mark.parametrize(
    "source",
    [
        'title: "a \\n line break"\n',  # escapes other than \", \\ and \/
        'title: "\\u00e9"\n',
        'tags: ["a \\" b"]\n',
        "title: Vienna: talks\n",  # a second mapping on one line (an error)
        "title: talks # comment\n",
        "title: talks\n  continued\n",  # a continuation line
        "title: |\n  block\n",
        "title: &a x\nother: *a\n",
        "slug: 2020\n",  # a number
        "slug: 0x1F\n",
        "slug: .inf\n",
        "title: -minus\n",
        "true: key\n",  # a key that is not text
        "tags: [a, ]\n",
        "tags: [a, [b]]\n",
        "tags: [2020]\n",
        "tags:\n  - a\n    - b\n",
        "tags:\n  - a\n - b\n",
        "tags:\n  -\n",
        "title:\tx\n",
        "title: x\r\n",
        "title: x\u2028y\n",
        "title: =\n",
        "title: `x`\n",
        "nested:\n  key: value\n",
        "",
        "# only a comment\n",
        "- a list\n",
        "%YAML 1.1\n---\ntitle: x\n",
    ],
)
def test_anything_unusual_goes_to_pyyaml(source: str) -> None:
    assert frontmatter.read_simple(source) is None


def test_the_example_sites_read_alike() -> None:
    checked = 0
    for path in sorted(SITES.rglob("*.md")) + sorted(SITES.rglob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.startswith("---\n") or "\n---" not in text[3:]:
            continue
        _assert_agrees(text[4 : text.index("\n---", 3) + 1])
        checked += 1
    assert checked >= 10


# Lines built from the pieces that matter to YAML, so that generated text often
# comes close to the usual shape and then breaks it in one place.
_PIECES = st.sampled_from(
    [
        "title",
        "tags",
        "draft",
        "true",
        "null",
        "~",
        "y",
        ":",
        ": ",
        " ",
        "  ",
        "\n",
        "\n  ",
        "\n- ",
        "\n  - ",
        "- ",
        "-",
        "#",
        " #",
        '"',
        "'",
        "''",
        "\\",
        "[",
        "]",
        ", ",
        ",",
        "{",
        "}",
        "&",
        "*",
        "!",
        "|",
        ">",
        "%",
        "@",
        "`",
        "?",
        "0",
        "12",
        "1.5",
        "0x",
        "e3",
        ".",
        "=",
        "<<",
        "yes",
        "Off",
        "2020-06-22",
        "T18:30:00+02:00",
        "Vienna",
        "talks",
        "é",
        "東",
        "\t",
        "\r",
        "\x85",
        "\u2028",
        "\ufeff",
        "\x07",
    ]
)
_SCRAP = st.lists(_PIECES, max_size=6).map("".join)
_WORDS = st.lists(
    st.sampled_from(["Vienna", "talks", "é", "東", "2020-06-22", "yes", "C#"]), max_size=3
)
_TEXT = st.one_of(
    _SCRAP, _WORDS.map(" ".join), st.tuples(_WORDS, _SCRAP).map(lambda p: " ".join(p[0]) + p[1])
)
_SCALAR = st.one_of(_TEXT, _TEXT.map('"{}"'.format), _TEXT.map("'{}'".format))
_KEYS = st.sampled_from(
    ["title", "tags", "draft", "a-b", "_x", "y", "true", "null", "2020", "<<", "k y"]
)
_SEPARATORS = st.sampled_from([" ", "  ", "", "\t", " \t"])
_FLOW = st.lists(_SCALAR, max_size=4).map(", ".join).map("[{}]".format)
_BLOCK = st.tuples(st.sampled_from(["", "  ", " "]), st.lists(_SCALAR, min_size=1, max_size=3)).map(
    lambda p: "".join(f"\n{p[0]}- {item}" for item in p[1])
)
_LINES = st.one_of(
    st.tuples(_KEYS, _SEPARATORS, st.one_of(_SCALAR, _FLOW)).map(lambda p: f"{p[0]}:{p[1]}{p[2]}"),
    st.tuples(_KEYS, _BLOCK).map(lambda p: f"{p[0]}:{p[1]}"),
    st.sampled_from(["", "# a comment", "  ", "  continued"]),
    _SCRAP,
)


@SETTINGS
@given(st.lists(_LINES, min_size=1, max_size=6).map("\n".join))
@example('title: "a"\ntags: [x, "y", \'z\']\ndraft: no\n')
def test_the_quick_reader_agrees_with_pyyaml(source: str) -> None:
    _assert_agrees_or_leaves_errors(source)


@SETTINGS
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=60))
def test_any_text_value_agrees_with_pyyaml(value: str) -> None:
    for source in (f"title: {value}\n", f'title: "{value}"\n', f"tags: [{value}]\n"):
        _assert_agrees_or_leaves_errors(source)
