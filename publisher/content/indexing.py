"""Index the content folder into the store: which file is which article, with which id.

Only files whose size or mtime changed are read, and only those whose bytes
changed are parsed. Each article keeps one id for life: from its front
matter, else the id its file had, else a renamed file's (same text), else
one recovered from the published feeds (when the state was lost), else a new
name-based UUID.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
from xml.etree import ElementTree

from publisher import parallel
from publisher.config import SiteConfig
from publisher.content import articles
from publisher.content.articles import ArticleDefaults, FoundFile, ParsedArticle
from publisher.errors import ConfigError, ContentError
from publisher.model import Article, ContentProblem
from publisher.store import (
    ArticleRow,
    FileRow,
    Store,
    StoredArticle,
    article_row,
    meta_json,
    tags_json,
)

logger = logging.getLogger(__name__)


def defaults_for(site: SiteConfig) -> ArticleDefaults:
    return ArticleDefaults(site.base_url, site.timezone, site.author, site.permalink)


def content_where(site: SiteConfig, relative: str) -> str:
    """A content file as messages name it (`content/2020/talks.md`), without Path objects."""
    return f"{_content_prefix(site)}/{relative}"


@lru_cache(maxsize=8)
def _content_prefix(site: SiteConfig) -> str:
    return site.display(site.content_dir).rstrip("/")


# A file whose mtime is this close to (or after) the moment its folder was
# scanned may change again without its mtime moving: timestamps advance in
# ticks (a jiffy on ext4, 2 s on FAT), and an edit in the same tick as the
# scan, keeping the size, looks like no edit. Such files are read again by
# the next run (git's "racily clean" entries, the same problem).
RACY_WINDOW_NS = 2_000_000_000
INDEXED_AT = "indexed_at_ns"  # settings key: when the last index's scan started


class Scan(NamedTuple):
    """The article files found, and when the scan started (wall clock, nanoseconds)."""

    files: Sequence[FoundFile]
    started_ns: int


def content_files(site: SiteConfig, *, with_stat: bool = True) -> Scan:
    """:raises ConfigError: when the content folder does not exist."""
    started_ns = time.time_ns()  # the file system's clock, not the site's "now"
    try:
        files = list(articles.discover(site.content_dir, with_stat=with_stat))
    except FileNotFoundError:
        where = site.display(site.content_dir)
        message = "content folder not found (set [paths] content in publisher.toml)"
        raise ConfigError(where, message) from None
    return Scan(files, started_ns)


def is_racy(row: FileRow, indexed_at: str | None) -> bool:
    """Whether *row*'s file may have changed without its stat showing it (see RACY_WINDOW_NS)."""
    return indexed_at is None or row.mtime_ns >= int(indexed_at) - RACY_WINDOW_NS


@dataclass
class IndexResult:
    """What one pass over the content folder found and decided."""

    problems: list[ContentProblem] = field(default_factory=list)
    parsed: int = 0
    claims: dict[str, str] = field(default_factory=dict)  # article id -> path that owns it
    # Lines for the files parsed in this pass: markup removed from a title, an
    # identity lost (and the fix).
    warnings: list[str] = field(default_factory=list)


class _Record(NamedTuple):
    """A parsed article as plain values, with the id it would take and its row if new."""

    path: str
    text_hash: str
    meta_json: str
    body_format: str
    date: str
    is_draft: bool
    tags_json: str
    article_id: str
    body_hash: str
    is_fresh_id: bool  # a new name-based id: a renamed file's may replace it


@dataclass(frozen=True, slots=True)
class _Context:
    """What every file's id choice needs: the same for all files of one pass."""

    defaults: ArticleDefaults
    first_seen: datetime
    published_ids: dict[str, str]  # link -> id, from the feeds (a lost state only)


_EMPTY_BODY = hashlib.sha256(b"").hexdigest()


class _Renames:
    """The articles whose files vanished in this pass, to be found again under new names.

    A file is recognised by its body as last read, whatever its title, slug
    or front matter (valid or not); a file indexed before schema 7, which
    kept no body hash, by its article's title and body; one without a
    readable body, by its exact bytes. Each vanished article goes to one
    file at most.
    """

    def __init__(self, store: Store, vanished: Mapping[str, FileRow]) -> None:
        self.by_body: dict[str, str] = {}
        self.by_bytes: dict[str, str] = {}
        legacy = []
        for path, row in vanished.items():
            if row.article_id is None:
                continue
            self.by_bytes.setdefault(row.file_hash, row.article_id)
            if row.body_hash is None:
                legacy.append(path)
            elif row.body_hash != _EMPTY_BODY:  # an empty body identifies nothing
                self.by_body.setdefault(row.body_hash, row.article_id)
        self.by_text = {text: article for article, text in store.articles_at(legacy).values()}
        self.taken: set[str] = set()

    def match(self, loaded: _Loaded) -> str | None:
        text_hash = loaded.record.text_hash if loaded.record else ""
        found = (
            self.by_body.get(loaded.body_hash or "")
            or self.by_text.get(text_hash)
            or self.by_bytes.get(loaded.file_hash)
        )
        if found is None or found in self.taken:
            return None
        self.taken.add(found)
        return found


class _Task(NamedTuple):
    root: str
    relative: str
    where: str
    known_hash: str | None  # the bytes indexed last time, if they still count
    known_id: str | None  # the id this file had
    context: _Context


class _Loaded(NamedTuple):
    """One changed file, read and (unless its bytes are known) parsed.

    A named tuple, not a dataclass: pickled back from the workers at half the cost.
    """

    relative: str
    size: int
    mtime_ns: int
    file_hash: str  # "" when the file could not be read
    record: _Record | None
    new_row: ArticleRow | None  # the record as the store's row, should it be new
    problem: tuple[str, ...] | None
    is_known_bytes: bool  # the same bytes as last time: only the stat moved
    warnings: tuple[str, ...] = ()
    body_hash: str | None = None  # of the body, if the file has one (valid or not)


# Below this many changed files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 400
# Rows are written in batches while the workers go on parsing.
_BATCH = 500


def index_content(
    site: SiteConfig,
    store: Store,
    scan: Scan,
    *,
    now: datetime,
    rows: Mapping[str, FileRow] | None = None,
) -> IndexResult:
    """Bring the store's articles in line with *scan*; call inside a transaction.

    *rows* are the store's file rows when the caller has just read them.
    """
    found = scan.files
    sync = IndexResult()
    fingerprint = site.fingerprint()
    is_config_changed = store.get_setting("config") != fingerprint
    if is_config_changed:
        store.set_setting("config", fingerprint)
    if rows is None:
        rows = store.files()
    # Only ids here: the full records are loaded for the changed files alone.
    stored = store.article_ids()
    present = {item.relative for item in found}
    vanished = {path: row for path, row in rows.items() if path not in present}
    # A state folder that was lost: take the ids readers already have from the
    # published feeds, so nothing shows up twice in their feed readers.
    context = _Context(
        defaults_for(site),
        now.replace(microsecond=0),
        published_feed_ids(site.output_dir) if not stored else {},
    )
    renames = _Renames(store, vanished)

    # Unchanged files keep what they had, including a cached problem.
    indexed_at = store.get_setting(INDEXED_AT)
    changed: list[FoundFile] = []
    for item in found:
        row = rows.get(item.relative)
        is_same_stat = row is not None and row.size == item.size and row.mtime_ns == item.mtime_ns
        if row is None or not is_same_stat or is_config_changed or is_racy(row, indexed_at):
            changed.append(item)
            continue
        _keep(sync, site, row)
    store.set_setting(INDEXED_AT, str(scan.started_ns))

    prefix = _content_prefix(site)
    tasks = []
    for item in changed:
        row = rows.get(item.relative)
        is_known = row is not None and not is_config_changed
        tasks.append(
            _Task(
                item.root,
                item.relative,
                f"{prefix}/{item.relative}",
                row.file_hash if is_known and row is not None else None,
                row.article_id if row is not None else None,
                context,
            )
        )
    original = set(stored)
    article_rows: list[ArticleRow] = []
    file_rows: list[FileRow] = []
    fresh: dict[str, _Record] = {}  # new articles of this pass with new ids, by id
    for loaded in _load_all(tasks):
        if len(file_rows) >= _BATCH:
            _flush(store, article_rows, file_rows)
        row = rows.get(loaded.relative)
        where = f"{prefix}/{loaded.relative}"
        if loaded.is_known_bytes and row is not None:
            # Touched but not changed (a checkout, a copy): only the stat moves.
            kept = replace(row, size=loaded.size, mtime_ns=loaded.mtime_ns)
            file_rows.append(kept)
            _keep(sync, site, kept)
            continue
        if loaded.record is None:
            if loaded.file_hash:
                sync.parsed += 1
            if row is None or row.article_id is None:
                row = _renamed_row(loaded, renames.match(loaded))
            file_rows.append(_problem_row(sync, site, loaded, row, stored, loaded.problem or ()))
            continue
        sync.parsed += 1
        sync.warnings += loaded.warnings
        parsed = loaded.record
        new_row = loaded.new_row
        if parsed.is_fresh_id:
            renamed = renames.match(loaded)
            if renamed is not None:
                parsed = parsed._replace(article_id=renamed, is_fresh_id=False)
                new_row = None  # the article the store has, edited
        article_id = parsed.article_id
        owner = sync.claims.get(article_id)
        previous = (
            store.stored_articles([article_id]).get(article_id) if article_id in original else None
        )
        if owner is None and previous is not None:
            previous_path = previous.article.path
            if previous_path != loaded.relative and previous_path in present:
                owner = previous_path  # the file that had this id first keeps it
        if owner is not None and owner != loaded.relative:
            line = f"{where}: id: {article_id!r} is already used by {prefix}/{owner}"
            file_rows.append(_problem_row(sync, site, loaded, row, stored, [line]))
            continue
        sync.claims[article_id] = loaded.relative
        if previous is not None:
            article_rows.append(_edited_row(parsed, previous, now))
        elif new_row is not None:
            article_rows.append(new_row)
            if parsed.is_fresh_id:
                fresh[article_id] = parsed
        stored.add(article_id)
        file_rows.append(
            FileRow(
                loaded.relative,
                loaded.size,
                loaded.mtime_ns,
                loaded.file_hash,
                article_id,
                None,
                loaded.body_hash,
            )
        )
    _flush(store, article_rows, file_rows)

    for path in vanished:
        store.delete_file(path)
    lost = sorted(article_id for article_id in stored if article_id not in sync.claims)
    if lost and fresh:
        sync.warnings += _lost_identities(prefix, store.stored_articles(lost), fresh)
    for article_id in lost:
        store.delete_article(article_id)
    store.number_publications(now)
    return sync


def _renamed_row(loaded: _Loaded, article_id: str | None) -> FileRow | None:
    """A file that does not parse and was renamed: it takes the vanished file's article."""
    if article_id is None:
        return None
    return FileRow(loaded.relative, 0, 0, loaded.file_hash, article_id, None)


def _lost_identities(
    prefix: str, lost: Mapping[str, StoredArticle], fresh: Mapping[str, _Record]
) -> list[str]:
    """For each new article that looks like one that disappeared in the same pass, the fix.

    Identity rests on the body when a file has no `id` field; renamed,
    retitled and rewritten in one go, nothing is left to recognise it by
    for sure. Readers would see it twice and the next digest send it again,
    so the editor is told which id to give it.
    """
    notes = []
    unmatched = dict(lost)
    for record in sorted(fresh.values(), key=lambda r: r.path):
        scored = [(_likeness(old.article, record), old_id) for old_id, old in unmatched.items()]
        best = max(scored, default=(0, ""))
        if best[0] < _LIKENESS_THRESHOLD:
            continue
        old = unmatched.pop(best[1])
        notes.append(
            f"{prefix}/{record.path}: looks like {prefix}/{old.article.path} that disappeared "
            f"in this build; give it `id: {best[1]}` to keep its identity"
        )
    return notes


_LIKENESS_THRESHOLD = 3


def _likeness(old: Article, record: _Record) -> int:
    """How much a new article shares with one that vanished: its date counts most."""
    meta = json.loads(record.meta_json)
    score = 2 if old.date.isoformat() == record.date else 0
    score += 2 if old.title == meta["title"] else 0
    score += 1 if old.slug == meta["slug"] else 0
    score += 1 if old.tags and [[t.name, t.slug] for t in old.tags] == meta["tags"] else 0
    if old.summary and meta["summary"]:
        matcher = difflib.SequenceMatcher(None, old.summary, meta["summary"])
        score += 2 if matcher.ratio() >= 0.6 else 0
    return score


def _flush(store: Store, article_rows: list[ArticleRow], file_rows: list[FileRow]) -> None:
    store.save_articles(article_rows)
    store.save_files(file_rows)
    article_rows.clear()
    file_rows.clear()


def _load_all(tasks: Sequence[_Task]) -> Iterator[_Loaded]:
    """Read and parse changed files, in order; on several cores for a big batch.

    Results come back in the input order, so which file keeps a duplicated id
    does not depend on timing.
    """
    return parallel.forked_map(_load, tasks, threshold=PARALLEL_THRESHOLD, chunk=250)


def _load(task: _Task) -> _Loaded:
    relative = task.relative
    path = os.path.join(task.root, relative)
    try:
        data, size, mtime_ns = articles.read_article(path, task.where)
    except ContentError as err:
        stat = _stat_or_zero(path)
        return _Loaded(relative, stat[0], stat[1], "", None, None, tuple(err.lines()), False)
    file_hash = hashlib.sha256(data).hexdigest()
    if task.known_hash is not None and task.known_hash == file_hash:
        return _Loaded(relative, size, mtime_ns, file_hash, None, None, None, True)
    try:
        parsed = articles.parse_article(task.where, relative, data, task.context.defaults)
    except ContentError as err:
        problem = tuple(err.lines())
        body_hash = articles.body_hash_of(data)
        return _Loaded(
            relative, size, mtime_ns, file_hash, None, None, problem, False, body_hash=body_hash
        )
    record = _record(parsed, task)
    new_row = _row(record, task.context.first_seen, None)
    return _Loaded(
        relative,
        size,
        mtime_ns,
        file_hash,
        record,
        new_row,
        None,
        False,
        parsed.warnings,
        parsed.body_hash,
    )


def _record(parsed: ParsedArticle, task: _Task) -> _Record:
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
    return _Record(
        parsed.path,
        parsed.text_hash,
        meta,
        parsed.body_format,
        parsed.date.isoformat(),
        parsed.is_draft,
        tags_json(parsed.tags),
        *_choose_id(parsed, task),
    )


def _row(record: _Record, first_seen: datetime, edited_at: datetime | None) -> ArticleRow:
    return article_row(
        record.article_id,
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


def _stat_or_zero(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return 0, 0
    return stat.st_size, stat.st_mtime_ns


def _choose_id(parsed: ParsedArticle, task: _Task) -> tuple[str, str, bool]:
    """(id, body hash, whether the id is new): the front matter id, else the id this
    file had, else the published one, else a new one.

    A new id is a name-based UUID of the site URL and the file's path at first
    sight: stable, and the same again if the state is ever rebuilt from scratch.
    The main process may still give the file a renamed file's id instead.
    """
    if parsed.explicit_id is not None:
        return parsed.explicit_id, parsed.body_hash, False
    if task.known_id is not None:
        return task.known_id, parsed.body_hash, False
    context = task.context
    if parsed.link in context.published_ids:
        return context.published_ids[parsed.link], parsed.body_hash, False
    new_id = uuid.uuid5(uuid.NAMESPACE_URL, context.defaults.base_url + parsed.path).urn
    return new_id, parsed.body_hash, True


def _edited_row(record: _Record, previous: StoredArticle, now: datetime) -> ArticleRow:
    """The row of an article the store had: first seen then, and edited now if its text moved."""
    edited_at = previous.edited_at
    if previous.text_hash != record.text_hash:
        edited_at = now.replace(microsecond=0)  # an edit: first seen now
    return _row(record, previous.first_seen, edited_at)


def _keep(sync: IndexResult, site: SiteConfig, row: FileRow) -> None:
    """A file keeps the article it had, and its problem (if any) is reported."""
    if row.article_id is not None:
        sync.claims.setdefault(row.article_id, row.path)
    if row.problem:
        sync.problems.append(problem_from_row(site, row))


def _problem_row(
    sync: IndexResult,
    site: SiteConfig,
    loaded: _Loaded,
    row: FileRow | None,
    stored: set[str],
    lines: Iterable[str],
) -> FileRow:
    """The row of a file that does not load; the article it was stays (its last good version)."""
    previous_id = row.article_id if row is not None else None
    if previous_id is not None and previous_id not in stored:
        previous_id = None
    problem_row = FileRow(
        loaded.relative,
        loaded.size,
        loaded.mtime_ns,
        loaded.file_hash,
        previous_id,
        tuple(lines),
        loaded.body_hash,
    )
    _keep(sync, site, problem_row)
    return problem_row


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
