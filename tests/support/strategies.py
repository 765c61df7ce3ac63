"""Hypothesis strategies for article files, and for text close to Markdown.

Front matter of every shape, bodies with markup, file names with dates and odd characters.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from publisher.config import load_config
from publisher.content.fields import FIELDS
from publisher.content.indexing import defaults_for
from publisher.text import slugify
from support.paths import SITES

BASIC = SITES / "basic" / "publisher.toml"
DEFAULTS = defaults_for(load_config(BASIC))

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Files are UTF-8, so lone surrogates cannot occur; everything else (controls included) can.
CHARACTERS = st.characters(exclude_categories=("Cs",))
TEXT = st.text(CHARACTERS, max_size=40)
WORDS = st.text(st.characters(categories=("L", "Nd", "Zs", "P")), min_size=1, max_size=20)
SNIPPETS = st.sampled_from(
    [
        "]]>",
        "<![CDATA[",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "&#0;",
        "&amp;",
        "\x00",
        "\x07",
        "\x1b",
        "\x85",
        "\ufffe",
        "\r\n",
        "\n\n",
        "---\n",
        "# ",
        "**bold** ",
        "[link](../x) ",
        "![img](y.png)",
        "| a |\n|---|\n| b |\n",
        "  \n",
    ]
)
BODY = st.lists(st.one_of(st.text(CHARACTERS, max_size=60), SNIPPETS), max_size=8).map("".join)

OFFSETS = st.one_of(
    st.none(),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)
GOOD_DATES = st.one_of(
    st.datetimes(  # mostly before NOW, so that the article is published
        min_value=datetime(1970, 1, 1), max_value=datetime(2026, 11, 1), timezones=OFFSETS
    ).map(datetime.isoformat),
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=OFFSETS
    ).map(datetime.isoformat),
    st.dates(min_value=datetime(1970, 1, 1).date(), max_value=datetime(9998, 12, 31).date()).map(
        lambda day: day.isoformat()
    ),
)
DATES = st.one_of(GOOD_DATES, TEXT)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    TEXT,
    DATES,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)
    ),
    max_leaves=8,
)
# Values that often pass validation, so that good articles reach the feeds too.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "title": st.one_of(WORDS, WORDS, TEXT, st.tuples(WORDS, SNIPPETS, TEXT).map("".join)),
    "date": GOOD_DATES,
    "updated": GOOD_DATES,
    "author": st.one_of(
        WORDS, TEXT, st.tuples(WORDS, WORDS).map(lambda p: f"{p[0]} <{p[1]}@x.example>")
    ),
    "authors": st.lists(st.one_of(WORDS, TEXT), max_size=3),
    "tags": st.one_of(st.lists(st.one_of(WORDS, TEXT, SNIPPETS), max_size=4), TEXT),
    "summary": TEXT,
    "link": st.one_of(TEXT.map(lambda t: "https://gazette.example/" + t), TEXT),
    "id": st.one_of(TEXT.map(lambda t: "tag:gazette.example,2024:" + t), TEXT),
    "draft": st.one_of(st.just(False), st.booleans(), SCALARS),
    "slug": st.one_of(TEXT.map(slugify), TEXT),
}
# True nine times in ten (st.integers would favour its bounds).
MOSTLY = st.sampled_from([True] * 9 + [False])
KEYS = st.one_of(st.sampled_from(FIELDS), TEXT, st.sampled_from(["tilte", "dates", "Title"]))


@st.composite
def front_matter(draw: st.DrawFn) -> str:
    """YAML text: a mostly sensible mapping, a wild one, or not YAML at all."""
    kind = draw(st.sampled_from(["plausible"] * 6 + ["arbitrary"] * 2 + ["raw"] * 2))
    if kind == "raw":
        return draw(st.text(CHARACTERS, max_size=200)) + "\n"
    meta: dict[Any, Any] = {}
    if kind == "plausible":
        for field in ("title", "date"):
            if draw(MOSTLY):
                meta[field] = draw(PLAUSIBLE[field])
        for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
            meta[field] = draw(PLAUSIBLE[field] if draw(MOSTLY) else VALUES)
    if kind == "arbitrary" or not draw(MOSTLY):
        meta.update(draw(st.dictionaries(KEYS, VALUES, max_size=4)))
    return yaml.safe_dump(meta, allow_unicode=draw(st.booleans()), sort_keys=False)


@st.composite
def article_file(draw: st.DrawFn) -> bytes:
    text = f"---\n{draw(front_matter())}---\n{draw(BODY)}"
    if not draw(MOSTLY):
        text = draw(BODY)  # no front matter at all
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


NAMES = st.one_of(
    st.text(st.characters(categories=("L", "Nd")), min_size=1, max_size=12),
    st.sampled_from(["story", "Überraschung-в-Wien", "!!!", "2024-05-03", "a_b"]),
)
FILE_NAMES = st.tuples(
    st.sampled_from(["", "2024-05-03-", "2031-01-01_"]), NAMES, st.sampled_from([".md", ".txt"])
).map("".join)

# Markdown's markers, spaces of every kind and digits, so that blocks often come
# close to lists, quotes, headings and inline markup.
MARKDOWN_TEXT = st.lists(
    st.one_of(
        st.sampled_from(list("*_`[]<>&\\!~|-+=#.)(:@ \t\n0123456789\u00a0\u2003\x0b\x00")),
        st.sampled_from(["www.example.org", "a@b.example", "1. ", "- ", "> ", "&amp;", "  \n"]),
        st.sampled_from(["Vienna", "talks", "\n\n", "\n   ", "\n    ", "\n:-", "\n-:"]),
        st.sampled_from(
            ["[a](http://x.example/y)", "[", "](", "](http://x)", "http://x", "(", ")"]
        ),
        st.sampled_from(["www.", "me@x.example", "[www.x.example](http://y)", "[a b](/c)"]),
        CHARACTERS,
    ),
    max_size=40,
).map("".join)
