"""The front matter's fields, one check each: every problem found, every value cleaned.

What each field may hold is in the README's article table; the messages
quote the bad value and say what is accepted.
"""

from __future__ import annotations

import difflib
import os
from datetime import date as date_type
from datetime import datetime, time
from email.utils import parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from publisher.content import markup
from publisher.errors import FieldProblem
from publisher.model import Author, Tag
from publisher.text import one_line, slugify, strip_tags

FIELDS = (
    "title",
    "date",
    "updated",
    "author",
    "authors",
    "tags",
    "summary",
    "link",
    "id",
    "draft",
    "slug",
)


class Fields:
    """Reads one front matter's fields, each with its own check, and keeps every problem."""

    def __init__(self, meta: dict[str, Any], timezone: ZoneInfo) -> None:
        self.meta = meta
        self.timezone = timezone  # of a date or time without an offset
        self.problems: list[FieldProblem] = []

    def problem(self, field: str, message: str) -> None:
        self.problems.append(FieldProblem(field, message))

    def given(self, field: str) -> bool:
        return self.meta.get(field) is not None

    def missing(self, field: str) -> None:
        unknown = sorted({str(k) for k in self.meta} - set(FIELDS))
        close = difflib.get_close_matches(field, unknown, n=1)
        hint = f" (did you mean to write '{field}' instead of '{close[0]}'?)" if close else ""
        self.problem(field, f"missing (required){hint}")

    def title(self) -> str:
        if not self.given("title"):
            self.missing("title")
            return ""
        raw = self.meta["title"]
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            self.problem("title", f"expected text, got {_kind(raw)}")
            return ""
        title = one_line(str(raw))
        if not title:
            self.problem("title", "must not be empty")
        return title

    def date(self) -> datetime | None:
        if not self.given("date"):
            self.missing("date")
            return None
        try:
            return _parse_date(self.meta["date"], self.timezone)
        except ValueError as err:
            self.problem("date", str(err))
            return None

    def updated(self, date: datetime | None) -> datetime | None:
        if not self.given("updated"):
            return None
        try:
            updated = _parse_date(self.meta["updated"], self.timezone)
        except ValueError as err:
            self.problem("updated", str(err))
            return None
        if date is not None and updated < date:
            self.problem("updated", f"{updated.isoformat()} is before date {date.isoformat()}")
        return None if updated == date else updated

    def authors(self, default: Author) -> tuple[Author, ...]:
        if "author" in self.meta and "authors" in self.meta:
            self.problem("authors", "give either author or authors, not both")
            return (default,)
        field = "author" if self.given("author") else "authors"
        if not self.given(field):
            return (default,)
        raw = self.meta[field]
        names = [raw] if isinstance(raw, str) or field == "author" else raw
        if not isinstance(names, list) or not names:
            self.problem("authors", f"expected a list of names, got {_kind(raw)}")
            return (default,)
        try:
            return tuple(_author(name) for name in names)
        except ValueError as err:
            self.problem(field, str(err))
            return (default,)

    def tags(self) -> tuple[Tag, ...]:
        if not self.given("tags"):
            return ()
        try:
            return _tags(self.meta["tags"])
        except ValueError as err:
            self.problem("tags", str(err))
            return ()

    def slug(self, relative: str) -> str:
        stem = os.path.splitext(os.path.basename(relative))[0]
        slug = slugify(_strip_date_prefix(stem)) or slugify(stem)
        raw = self.meta.get("slug")
        if raw is None:
            pass
        elif not isinstance(raw, str | int) or isinstance(raw, bool):
            self.problem("slug", f"expected text, got {_kind(raw)}")
        elif slugify(str(raw)) != str(raw):
            self.problem("slug", f"use lower-case letters, digits and '-' only ({raw!r})")
        else:
            slug = str(raw)
        if not slug:
            self.problem("slug", f"cannot make one from the file name {stem!r}; add a slug field")
        return slug

    def summary(self) -> str:
        if not self.given("summary"):
            return ""
        if not isinstance(self.meta["summary"], str):
            self.problem("summary", f"expected text, got {_kind(self.meta['summary'])}")
            return ""
        return one_line(self.meta["summary"])

    def link(self) -> str:
        if not self.given("link"):
            return ""
        raw = self.meta["link"]
        if not isinstance(raw, str) or not _is_absolute_url(raw.strip()):
            self.problem("link", f"expected an absolute http(s) URL ({raw!r})")
            return ""
        return raw.strip()

    def explicit_id(self) -> str | None:
        if not self.given("id"):
            return None
        raw = self.meta["id"]
        if not isinstance(raw, str) or not _is_uri(raw.strip()):
            self.problem(
                "id",
                f"expected an absolute URI such as 'urn:uuid:…' or "
                f"'tag:example.org,2020:post' ({raw!r})",
            )
            return None
        return raw.strip()

    def draft(self) -> bool:
        if not self.given("draft"):
            return False
        if not isinstance(self.meta["draft"], bool):
            self.problem("draft", f"expected true or false, got {_kind(self.meta['draft'])}")
            return False
        return bool(self.meta["draft"])


class PlainText:
    """Titles, names and summaries are plain text: tags are removed, with a warning each."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.warnings: list[str] = []
        self.problems: list[FieldProblem] = []

    def field(self, name: str, text: str) -> str:
        clean = strip_tags(text)
        if clean == text:
            return text
        if not clean:
            self.problems.append(
                FieldProblem(name, f"nothing is left once its HTML tags are removed ({text!r})")
            )
            return text
        self.warnings.append(
            f"{self.where}: {name}: HTML tags removed, it is plain text ({text!r} became {clean!r})"
        )
        return clean

    def author(self, author: Author) -> Author:
        if "<" not in author.name:
            return author
        return Author(self.field("author", author.name), author.email)


def _kind(value: Any) -> str:
    kinds = {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"


def _parse_date(value: Any, timezone: ZoneInfo) -> datetime:
    """ISO 8601 date or date-time; one without an offset is in the site's time zone."""
    if isinstance(value, datetime):  # pragma: no cover - the loader yields strings
        parsed = value
    elif isinstance(value, date_type):  # pragma: no cover
        parsed = datetime.combine(value, time())
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            message = (
                f"not an ISO 8601 date ({text!r}); write it like "
                f"'2020-06-22' or '2020-06-22T18:30:00+02:00'"
            )
            raise ValueError(message) from None
    else:
        message = f"expected an ISO 8601 date, got {_kind(value)}"
        raise ValueError(message)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone)
    if not 1970 <= parsed.year <= 9998:
        message = f"year {parsed.year} is out of range ({value!r})"
        raise ValueError(message)
    return parsed


def _author(value: Any) -> Author:
    if not isinstance(value, str):
        message = f"expected a name such as 'Lena Hofbauer <lena@example.org>', got {_kind(value)}"
        raise ValueError(message)
    return _author_from_text(value)


@lru_cache(maxsize=1024)  # a site has a few dozen authors over thousands of articles
def _author_from_text(value: str) -> Author:
    # Cleaned first: a name of control characters only (YAML "\a") is no name.
    text = one_line(value)
    if not text:
        message = f"expected a name such as 'Lena Hofbauer <lena@example.org>', got {_kind(value)}"
        raise ValueError(message)
    name, email = parseaddr(text)
    if "<" in text and "@" in email:
        return Author(one_line(name) or email, email)
    return Author(text)


def _tags(value: Any) -> tuple[Tag, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        message = f"expected a list of tags, got {_kind(value)}"
        raise ValueError(message)
    tags: dict[str, Tag] = {}
    for raw in value:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            message = f"each tag must be text, got {_kind(raw)}"
            raise ValueError(message)
        tag = _tag(str(raw))
        tags.setdefault(tag.slug, tag)
    return tuple(tags.values())


@lru_cache(maxsize=4096)  # a site has a few dozen tags over thousands of articles
def _tag(raw: str) -> Tag:
    name = one_line(raw)
    if "/" in name or "\\" in name or ".." in name:
        message = f"{name!r} may not contain '/', '\\' or '..' (tags name folders)"
        raise ValueError(message)
    slug = slugify(name)
    if not slug:
        message = f"{name!r} has no letters or digits to make a slug from"
        raise ValueError(message)
    if len(slug) > 80:
        message = f"{name[:40]!r}… is too long (80 characters at most)"
        raise ValueError(message)
    return Tag(name, slug)


def _strip_date_prefix(stem: str) -> str:
    # 2020-06-22-vienna-talks -> vienna-talks
    if len(stem) > 11 and stem[4] == "-" and stem[7] == "-" and stem[10] in "-_":
        prefix = stem[:10].replace("-", "")
        if prefix.isdigit():
            return stem[11:]
    return stem


def _is_absolute_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. 'http://[x' (an unclosed IPv6 host)
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and text.isprintable()  # no control characters, and no space but ' '
        and not any(c.isspace() for c in text)
        and markup.is_usable_base(text)
    )


def _is_uri(text: str) -> bool:
    scheme, sep, rest = text.partition(":")
    return (
        bool(sep)
        and bool(rest)
        and scheme.isascii()
        and scheme[:1].isalpha()
        and all(c.isalnum() or c in "+-." for c in scheme)
        and text.isprintable()  # feeds cannot carry control characters
        and not any(c.isspace() for c in text)
    )
