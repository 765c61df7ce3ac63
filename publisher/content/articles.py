"""Discover article files; parse each into its metadata, or a ContentError naming every problem.

A file is YAML front matter between `---` lines, then a body: Markdown for
`.md`, plain text for `.txt`. Parsing is pure: it needs only the file's bytes
and the site's defaults; ids and edit times are the pipeline's business.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date as date_type
from datetime import datetime, time
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import yaml

from publisher.content import frontmatter, markup
from publisher.errors import ContentError, FieldProblem
from publisher.model import ArticleMeta, Author, BodyFormat, Tag
from publisher.text import one_line, shorten, slugify, strip_forbidden, strip_tags

# The line that closes the front matter (YAML's document end, or a second ---).
_CLOSING = re.compile(r"^(?:---|\.\.\.)[ \t\f\v]*$", re.MULTILINE)
ARTICLE_SUFFIXES: dict[str, BodyFormat] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}
MAX_FILE_BYTES = 5 * 1024 * 1024
SUMMARY_LIMIT = 300
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


@dataclass(frozen=True, slots=True)
class FoundFile:
    root: str  # the content folder
    relative: str  # with forward slashes
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        # Made on demand: a quick build stats 10,000 files and needs no Path.
        return Path(self.root, self.relative)


def discover(content_dir: Path, *, with_stat: bool = True) -> Iterator[FoundFile]:
    """Article files under *content_dir*, sorted, skipping hidden files and folders.

    Without *with_stat* the sizes and mtimes are -1: a build with no state yet
    reads every file anyway, and stat-ing 10,000 files first costs it 40 ms.

    :raises FileNotFoundError: when the folder does not exist.
    """
    if not content_dir.is_dir():
        raise FileNotFoundError(content_dir)
    root = str(content_dir)
    found: list[FoundFile] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(root, prefix) if prefix else root))
        except OSError:
            continue  # a folder that vanished or cannot be listed holds no articles
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            relative = f"{prefix}/{name}" if prefix else name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not name.startswith("_"):
                        pending.append(relative)
                    continue
                # Regular files only (a FIFO would block the read); a broken link is not there.
                if os.path.splitext(name)[1].lower() not in ARTICLE_SUFFIXES or not entry.is_file():
                    continue
                if not with_stat:
                    found.append(FoundFile(root, relative, -1, -1))
                    continue
                stat = entry.stat()
            except OSError:
                continue  # vanished between listing and stat: it is simply not there
            found.append(FoundFile(root, relative, stat.st_size, stat.st_mtime_ns))
    found.sort(key=lambda f: f.relative)
    yield from found


def read_article_bytes(path: Path, where: str) -> bytes:
    """Read one article file, refusing oversized ones before reading them.

    :raises ContentError: when the file is too big or unreadable.
    """
    return read_article(path, where)[0]


def read_article(path: Path | str, where: str, *, attempts: int = 3) -> tuple[bytes, int, int]:
    """The file's bytes with the size and mtime they belong to.

    An editor may be writing the file while we read it: when its size or
    mtime moves during the read, the read is tried again, so the stat we
    record always matches the bytes we parsed. (One open file and fstat
    rather than path lookups: a cold build reads thousands of files.)

    :raises ContentError: when the file is too big, unreadable or never still.
    """
    for _ in range(attempts):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            message = f"cannot be read ({err.strerror})"
            raise ContentError(where, [FieldProblem("file", message)]) from err
        try:
            before = os.fstat(fd)
            if before.st_size > MAX_FILE_BYTES:
                message = (
                    f"{before.st_size / 1024 / 1024:.1f} MB is over the "
                    f"{MAX_FILE_BYTES // 1024 // 1024} MB limit for one article"
                )
                raise ContentError(where, [FieldProblem("file", message)])
            data = _read_to_end(fd, before.st_size)
            after = os.fstat(fd)
        except OSError as err:
            message = f"cannot be read ({err.strerror})"
            raise ContentError(where, [FieldProblem("file", message)]) from err
        finally:
            os.close(fd)
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns) and len(
            data
        ) == after.st_size:
            return data, after.st_size, after.st_mtime_ns
    message = "kept changing while it was read; it will be read again on the next run"
    raise ContentError(where, [FieldProblem("file", message)])


def _read_to_end(fd: int, size: int) -> bytes:
    """*size* bytes, or one more if the file grew (the caller's fstat notices either way)."""
    data = os.read(fd, size + 1)
    while len(data) < size:
        more = os.read(fd, size + 1 - len(data))
        if not more:
            break
        data += more
    return data


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
    fields = _Fields(meta, defaults.timezone)
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
    plain = _PlainText(where)
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


class _Fields:
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


class _PlainText:
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
