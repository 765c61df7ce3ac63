"""Plain-text helpers with no I/O: what feeds, articles and messages clean their text with.

Shared by the content and feed stages (a feed strips what XML forbids; an
article's title loses its tags), so they live below both.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# XML 1.0 §2.2 forbids C0 controls other than tab, LF and CR, lone surrogates
# and U+FFFE/U+FFFF; C1 controls and DEL are allowed but never meant in text,
# and U+FFFD marks text mis-decoded somewhere (the feed validator reports it).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffd-\uffff]")
_NOT_SLUG = re.compile(r"[^\w]+")

# What jekyll-feed's strip_html removes: script and style elements with their
# content, comments, and tags (a "<" must be followed by a letter or "/": a
# title's "a < b" is text).
_MARKUP = re.compile(
    r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->|</?[A-Za-z][^<>]*>", re.IGNORECASE | re.DOTALL
)


def strip_forbidden(text: str) -> str:
    """Remove characters that XML forbids (or that are never meant in text)."""
    return _FORBIDDEN.sub("", text)


def one_line(text: str) -> str:
    """Collapse whitespace (including newlines) to single spaces: for titles and names."""
    # str.split() splits on exactly what \s matches (str.isspace), and faster.
    return " ".join(strip_forbidden(text).split())


def strip_tags(text: str) -> str:
    """Plain text of a field that should hold no markup (a title, a name, a summary).

    Readers that render RSS titles as HTML would run a title's script; the
    W3C validator warns of any markup there. The result is on one line.
    """
    if "<" not in text:
        return text
    return one_line(_MARKUP.sub(" ", text))


def shorten(text: str, limit: int = 300) -> str:
    """Cut *text* near *limit* characters on a word boundary, marking the cut with '…'."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > limit // 2 else cut[:limit]
    return cut.rstrip(" ,;:.-–—") + "…"


@lru_cache(maxsize=4096)  # tags repeat across thousands of articles
def slugify(text: str) -> str:
    """Lower-case words joined by '-': accents dropped, other letters (ß, Cyrillic, CJK) kept."""
    if text.isascii():  # most file names and tags: nothing to decompose
        return _NOT_SLUG.sub("-", text.lower()).strip("-_")
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_SLUG.sub("-", unicodedata.normalize("NFC", bare).lower()).strip("-_")


def display_width(text: str) -> int:
    """Terminal columns: wide East Asian characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def columns(cells: tuple[str, ...], widths: list[int]) -> str:
    """*cells* padded to *widths* (in terminal columns) and joined; cells past them as they are."""
    padded = [
        cell + " " * (width - display_width(cell))
        for cell, width in zip(cells, widths, strict=False)
    ]
    return "  ".join([*padded, *cells[len(widths) :]]).rstrip()
