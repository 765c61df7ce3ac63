"""An article file parsed into its metadata, or a ContentError naming every problem in it.

A file is YAML front matter between `---` lines, then a body: Markdown for
`.md`, plain text for `.txt`. Parsing is pure: it needs only the file's bytes
and the site's defaults; ids and edit times are indexing's business. Finding
and reading files is `files`'; checking each field is `fields`'.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import quote
from zoneinfo import ZoneInfo

import yaml

from publisher.content import frontmatter, markup
from publisher.content.fields import Fields, PlainText
from publisher.content.files import (
    ARTICLE_SUFFIXES,
    MAX_FILE_BYTES,
)
from publisher.errors import ContentError, FieldProblem
from publisher.model import ArticleMeta, Author, BodyFormat
from publisher.text import shorten, strip_forbidden

# The line that closes the front matter (YAML's document end, or a second ---).
_CLOSING = re.compile(r"^(?:---|\.\.\.)[ \t\f\v]*$", re.MULTILINE)
SUMMARY_LIMIT = 300


@dataclass(frozen=True, slots=True)
class ArticleDefaults:
    """What a parse needs from the site configuration."""

    base_url: str
    timezone: ZoneInfo
    author: Author
    permalink: str


class Parsed(NamedTuple):
    """One file, parsed: its metadata, and what indexing needs besides (before an id)."""

    meta: ArticleMeta
    explicit_id: str | None
    body: str
    text_hash: str  # of title and body: a change here is an edit
    body_hash: str  # of the body alone: what a renamed file is recognised by
    warnings: tuple[str, ...]  # `path: field: what was changed`; the article still loads


def text_hash(title: str, body: str) -> str:
    """Hash of what a reader sees as the article's text."""
    digest = hashlib.sha256()
    digest.update(title.encode())
    digest.update(b"\0")
    digest.update(body.encode())
    return digest.hexdigest()


def body_of(data: bytes) -> str:
    """The body of a file that parsed before (its front matter is known to be valid)."""
    text = data.decode("utf-8").removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    first_end = text.find("\n")
    closing = _CLOSING.search(text, first_end + 1)
    return "" if closing is None else text[closing.end() :].strip("\n")


def body_hash_of(data: bytes) -> str | None:
    """The hash a parse would give this file's body, even when its front matter is invalid.

    None when there is no body to speak of: not UTF-8, or no front matter block.
    A renamed file is recognised by its body, valid or not.
    """
    try:
        return hashlib.sha256(body_of(data).encode()).hexdigest()
    except UnicodeDecodeError:
        return None


def parse_article(where: str, relative: str, data: bytes, defaults: ArticleDefaults) -> Parsed:
    """Validate one file completely and return its fields.

    :raises ContentError: listing every problem in the file (all at once).
    """
    if len(data) > MAX_FILE_BYTES:
        message = f"over the {MAX_FILE_BYTES // 1024 // 1024} MB limit for one article"
        raise ContentError(where, [FieldProblem("file", message)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        message = f"not valid UTF-8 (byte {data[err.start]:#04x} at offset {err.start})"
        raise ContentError(where, [FieldProblem("file", message)]) from None
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ContentError(where, [FieldProblem("file", "empty")])
    meta, body = _split_front_matter(where, text)
    body_format = ARTICLE_SUFFIXES[os.path.splitext(relative)[1].lower()]
    return _validate(where, relative, meta, body, body_format, defaults)


def _split_front_matter(where: str, text: str) -> tuple[dict[str, Any], str]:
    first_end = text.find("\n")
    first_line = text if first_end < 0 else text[:first_end]
    if first_line.rstrip() != "---":
        message = "missing: the file must start with a line '---', then YAML, then '---'"
        raise ContentError(where, [FieldProblem("front matter", message)])
    closing = _CLOSING.search(text, first_end + 1) if first_end >= 0 else None
    if closing is None:
        message = "not closed: add a line '---' after the front matter"
        raise ContentError(where, [FieldProblem("front matter", message)])
    # Control characters go before YAML sees them (it refuses them); the body
    # is cleaned where it is used (summary, HTML), not here, once per file.
    source = strip_forbidden(text[first_end + 1 : closing.start()])
    try:
        meta = frontmatter.load(source)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        position = f"line {mark.line + 2}, column {mark.column + 1}: " if mark else ""
        message = f"invalid YAML at {position}{problem}"
        raise ContentError(where, [FieldProblem("front matter", message)]) from None
    except (ValueError, LookupError) as err:
        # PyYAML's constructors for explicit tags (`!!int 0x`, `!!bool x`, `!!float .`)
        # and Python's 4300-digit limit on int() raise these instead of YAMLError.
        message = f"invalid YAML: a value cannot be converted ({err})"
        raise ContentError(where, [FieldProblem("front matter", message)]) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        message = f"expected key: value pairs, got {type(meta).__name__}"
        raise ContentError(where, [FieldProblem("front matter", message)])
    body = text[closing.end() :].strip("\n")
    return meta, body


def _validate(
    where: str,
    relative: str,
    meta: dict[str, Any],
    body: str,
    body_format: BodyFormat,
    defaults: ArticleDefaults,
) -> Parsed:
    """Every field checked in turn, every problem collected; raises once at the end."""
    fields = Fields(meta, defaults.timezone)
    title = fields.title()
    date = fields.date()
    updated = fields.updated(date)
    authors = fields.authors(defaults.author)
    tags = fields.tags()
    slug = fields.slug(relative)
    summary = fields.summary() or shorten(
        markup.first_paragraph(body, body_format=body_format), SUMMARY_LIMIT
    )
    link = fields.link() or _permalink(date, slug, defaults)
    explicit_id = fields.explicit_id()
    is_draft = fields.draft()
    plain = PlainText(where)
    title = plain.field("title", title)
    authors = tuple(plain.author(author) for author in authors)
    if meta.get("summary") is not None:
        summary = plain.field("summary", summary)
    problems = [*fields.problems, *plain.problems]
    if problems or date is None:
        raise ContentError(where, problems)
    article = ArticleMeta(
        path=relative,
        title=title,
        date=date,
        updated=updated,
        authors=authors,
        tags=tags,
        summary=summary,
        link=link,
        slug=slug,
        is_draft=is_draft,
        body_format=body_format,
    )
    return Parsed(
        article,
        explicit_id,
        body,
        text_hash(title, body),
        hashlib.sha256(body.encode()).hexdigest(),
        tuple(plain.warnings),
    )


def _permalink(date: datetime | None, slug: str, defaults: ArticleDefaults) -> str:
    """base_url + the site's permalink pattern, in the site's time zone."""
    if date is None or not slug:
        return ""
    local = date.astimezone(defaults.timezone)
    path = defaults.permalink.format(
        year=f"{local.year:04d}",
        month=f"{local.month:02d}",
        day=f"{local.day:02d}",
        slug=quote(slug),
    )
    return defaults.base_url + path
