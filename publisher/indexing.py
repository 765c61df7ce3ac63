"""Index the content folder into the store: which file is which article, with which id.

Only files whose size or mtime changed are read, and only those whose bytes
changed are parsed. Each article keeps one id for life: from its front
matter, else the id its file had, else a renamed file's (same text), else
one recovered from the published feeds (when the state was lost), else a new
name-based UUID.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
from xml.etree import ElementTree

from publisher import content
from publisher.config import SiteConfig
from publisher.content import ArticleDefaults, FoundFile, ParsedArticle
from publisher.errors import ConfigError, ContentError
from publisher.model import ContentProblem
from publisher.store import FileRow, Store, StoredArticle, meta_json, tags_json

logger = logging.getLogger(__name__)


def defaults_for(site: SiteConfig) -> ArticleDefaults:
    return ArticleDefaults(site.base_url, site.timezone, site.author, site.permalink)


def display(site: SiteConfig, path: Path) -> str:
    """A path as the user would write it: relative to the site folder when inside it."""
    try:
        return path.relative_to(site.root).as_posix()
    except ValueError:
        return str(path)


def content_where(site: SiteConfig, relative: str) -> str:
    """A content file as messages name it (`content/2020/talks.md`), without Path objects."""
    return f"{_content_prefix(site)}/{relative}"


@lru_cache(maxsize=8)
def _content_prefix(site: SiteConfig) -> str:
    return display(site, site.content_dir).rstrip("/")


def content_files(site: SiteConfig) -> list[FoundFile]:
    try:
        return list(content.discover(site.content_dir))
    except FileNotFoundError:
        where = display(site, site.content_dir)
        message = "content folder not found (set [paths] content in publisher.toml)"
        raise ConfigError(where, message) from None


@dataclass
class IndexResult:
    """What one pass over the content folder found and decided."""

    problems: list[ContentProblem] = field(default_factory=list)
    parsed: int = 0
    claims: dict[str, str] = field(default_factory=dict)  # article id -> path that owns it


class _Record(NamedTuple):
    """A parsed article as plain values: cheap to send back from a worker process."""

    path: str
    explicit_id: str | None
    link: str
    text_hash: str
    body_format: str
    meta_json: str
    date: str
    is_draft: bool
    tags_json: str

    @classmethod
    def of(cls, parsed: ParsedArticle) -> _Record:
        meta = meta_json(
            path=parsed.path,
            title=parsed.title,
            date=parsed.date,
            front_matter_updated=parsed.updated,
            authors=parsed.authors,
            tags=parsed.tags,
            summary=parsed.summary,
            link=parsed.link,
            slug=parsed.slug,
            is_draft=parsed.is_draft,
        )
        return cls(
            parsed.path,
            parsed.explicit_id,
            parsed.link,
            parsed.text_hash,
            parsed.body_format,
            meta,
            parsed.date.isoformat(),
            parsed.is_draft,
            tags_json(parsed.tags),
        )


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One changed file, read and (unless its bytes are known) parsed."""

    relative: str
    size: int
    mtime_ns: int
    file_hash: str  # "" when the file could not be read
    record: _Record | None
    problem: tuple[str, ...] | None
    is_known_bytes: bool  # the same bytes as last time: only the stat moved


# Below this many changed files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 400


def index_content(
    site: SiteConfig, store: Store, found: Sequence[FoundFile], *, now: datetime
) -> IndexResult:
    """Bring the store's articles in line with *found*; call inside a transaction."""
    sync = IndexResult()
    defaults = defaults_for(site)
    fingerprint = site.fingerprint()
    is_config_changed = store.get_setting("config") != fingerprint
    if is_config_changed:
        store.set_setting("config", fingerprint)
    rows = store.files()
    # Only ids here: the full records are loaded for the changed files alone.
    stored = store.article_ids()
    present = {item.relative for item in found}
    vanished = {path: row for path, row in rows.items() if path not in present}
    renamed_from = {
        text_hash: article_id for article_id, text_hash in store.articles_at(vanished).values()
    }
    # A state folder that was lost: take the ids readers already have from the
    # published feeds, so nothing shows up twice in their feed readers.
    published_ids = published_feed_ids(site.output_dir) if not stored else {}

    # Unchanged files keep what they had, including a cached problem.
    changed: list[FoundFile] = []
    for item in found:
        row = rows.get(item.relative)
        is_same_stat = row is not None and row.size == item.size and row.mtime_ns == item.mtime_ns
        if row is None or not is_same_stat or is_config_changed:
            changed.append(item)
            continue
        _keep(sync, site, row)

    tasks = [
        (
            item.root,
            item.relative,
            content_where(site, item.relative),
            None
            if is_config_changed or item.relative not in rows
            else rows[item.relative].file_hash,
            defaults,
        )
        for item in changed
    ]
    original = set(stored)
    for loaded in _load_all(tasks):
        row = rows.get(loaded.relative)
        where = content_where(site, loaded.relative)
        if loaded.is_known_bytes and row is not None:
            # Touched but not changed (a checkout, a copy): only the stat moves.
            kept = replace(row, size=loaded.size, mtime_ns=loaded.mtime_ns)
            store.save_file(kept)
            _keep(sync, site, kept)
            continue
        if loaded.record is None:
            if loaded.file_hash:
                sync.parsed += 1
            _record_problem(store, sync, site, loaded, row, stored, loaded.problem or ())
            continue
        sync.parsed += 1
        parsed = loaded.record
        article_id = _choose_id(site, parsed, row, renamed_from, published_ids)
        owner = sync.claims.get(article_id)
        previous = (
            store.stored_articles([article_id]).get(article_id) if article_id in original else None
        )
        if owner is None and previous is not None:
            previous_path = previous.article.path
            if previous_path != loaded.relative and previous_path in present:
                owner = previous_path  # the file that had this id first keeps it
        if owner is not None and owner != loaded.relative:
            owner_where = content_where(site, owner)
            line = f"{where}: id: {article_id!r} is already used by {owner_where}"
            _record_problem(store, sync, site, loaded, row, stored, [line])
            continue
        sync.claims[article_id] = loaded.relative
        _save_parsed(store, parsed, article_id, previous, now=now)
        stored.add(article_id)
        store.save_file(
            FileRow(
                loaded.relative, loaded.size, loaded.mtime_ns, loaded.file_hash, article_id, None
            )
        )

    for path in vanished:
        store.delete_file(path)
    for article_id in sorted(stored):
        if article_id not in sync.claims:
            store.delete_article(article_id)
    return sync


def _load_all(
    tasks: Sequence[tuple[str, str, str, str | None, ArticleDefaults]],
) -> Iterator[_Loaded]:
    """Read and parse changed files, in order; on several cores for a big batch.

    Parsing is pure Python and the files are independent, so a cold build of
    thousands of articles splits them over worker processes (fork: the workers
    start with everything imported). Results come back in the input order, so
    which file keeps a duplicated id does not depend on timing.
    """
    workers = min(os.cpu_count() or 1, 4)
    if len(tasks) < PARALLEL_THRESHOLD or workers < 2 or sys.platform != "linux":
        yield from map(_load, tasks)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        yield from pool.imap(_load, tasks, chunksize=64)


def _load(task: tuple[str, str, str, str | None, ArticleDefaults]) -> _Loaded:
    root, relative, where, known_hash, defaults = task
    try:
        data, size, mtime_ns = content.read_article(Path(root, relative), where)
    except ContentError as err:
        stat = _stat_or_zero(Path(root, relative))
        return _Loaded(relative, stat[0], stat[1], "", None, tuple(err.lines()), False)
    file_hash = hashlib.sha256(data).hexdigest()
    if known_hash is not None and known_hash == file_hash:
        return _Loaded(relative, size, mtime_ns, file_hash, None, None, True)
    try:
        parsed = content.parse_article(where, relative, data, defaults)
    except ContentError as err:
        return _Loaded(relative, size, mtime_ns, file_hash, None, tuple(err.lines()), False)
    return _Loaded(relative, size, mtime_ns, file_hash, _Record.of(parsed), None, False)


def _stat_or_zero(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return 0, 0
    return stat.st_size, stat.st_mtime_ns


def _choose_id(
    site: SiteConfig,
    parsed: _Record,
    row: FileRow | None,
    renamed_from: dict[str, str],
    published_ids: dict[str, str],
) -> str:
    """Front matter id, else the id this file had, else a renamed file's, else the
    published one, else a new one.

    A new id is a name-based UUID of the site URL and the file's path at first
    sight: stable, and the same again if the state is ever rebuilt from scratch.
    """
    if parsed.explicit_id is not None:
        return parsed.explicit_id
    if row is not None and row.article_id is not None:
        return row.article_id
    if parsed.link in published_ids:
        return published_ids[parsed.link]
    if parsed.text_hash in renamed_from:
        return renamed_from[parsed.text_hash]
    return uuid.uuid5(uuid.NAMESPACE_URL, site.base_url + parsed.path).urn


def _save_parsed(
    store: Store,
    record: _Record,
    article_id: str,
    previous: StoredArticle | None,
    *,
    now: datetime,
) -> None:
    edited_at = previous.edited_at if previous else None
    if previous is not None and previous.text_hash != record.text_hash:
        edited_at = now.replace(microsecond=0)  # an edit: first seen now
    first_seen = previous.first_seen if previous else now.replace(microsecond=0)
    store.save_article(
        article_id,
        path=record.path,
        first_seen=first_seen,
        edited_at=edited_at,
        text_hash=record.text_hash,
        meta_json=record.meta_json,
        body_format=record.body_format,
        date=record.date,
        is_draft=record.is_draft,
        tags_json=record.tags_json,
    )


def _keep(sync: IndexResult, site: SiteConfig, row: FileRow) -> None:
    """A file keeps the article it had, and its problem (if any) is reported."""
    if row.article_id is not None:
        sync.claims.setdefault(row.article_id, row.path)
    if row.problem:
        sync.problems.append(problem_from_row(site, row))


def _record_problem(
    store: Store,
    sync: IndexResult,
    site: SiteConfig,
    loaded: _Loaded,
    row: FileRow | None,
    stored: set[str],
    lines: Iterable[str],
) -> None:
    """Record a file that does not load; the article it was stays (its last good version)."""
    previous_id = row.article_id if row is not None else None
    if previous_id is not None and previous_id not in stored:
        previous_id = None
    problem_row = FileRow(
        loaded.relative, loaded.size, loaded.mtime_ns, loaded.file_hash, previous_id, tuple(lines)
    )
    store.save_file(problem_row)
    _keep(sync, site, problem_row)


def problem_from_row(site: SiteConfig, row: FileRow) -> ContentProblem:
    """The cached problem of a file that did not change since it was reported."""
    return ContentProblem(
        content_where(site, row.path),
        row.problem or (),
        kept_previous=row.article_id is not None,
    )


def published_feed_ids(output_dir: Path) -> dict[str, str]:
    """Article link → id, as the feeds in *output_dir* published them (JSON, then Atom).

    Used only when the state is empty; unreadable feeds simply give nothing.
    """
    ids: dict[str, str] = {}
    for path in sorted(output_dir.rglob("feed.json")) if output_dir.is_dir() else ():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            for item in document.get("items", []):
                if isinstance(item.get("url"), str) and isinstance(item.get("id"), str):
                    ids.setdefault(item["url"], item["id"])
        except (OSError, ValueError, AttributeError):
            logger.warning("%s: unreadable; ids not recovered from it", path)
    atom = "{http://www.w3.org/2005/Atom}"
    for path in sorted(output_dir.rglob("atom.xml")) if output_dir.is_dir() else ():
        try:
            root = ElementTree.parse(path).getroot()
        except (OSError, ElementTree.ParseError):
            logger.warning("%s: unreadable; ids not recovered from it", path)
            continue
        for entry in root.iter(f"{atom}entry"):
            entry_id = entry.findtext(f"{atom}id")
            link = entry.find(f"{atom}link")
            if entry_id and link is not None and link.get("href"):
                ids.setdefault(link.get("href", ""), entry_id)
    return ids
