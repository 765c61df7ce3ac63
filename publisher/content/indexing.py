"""Index the content folder into the store: which file is which article, with which id.

Only files whose size or mtime changed are read, and only those whose bytes
changed are parsed (on several cores for a big batch); the main process
checks each id's claim and writes the rows. How ids are chosen and found
again is `identity`'s business.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from publisher import parallel
from publisher.config import SiteConfig
from publisher.content import articles, files
from publisher.content.articles import ArticleDefaults
from publisher.content.files import FoundFile
from publisher.content.identity import (
    IdContext,
    Renames,
    choose_id,
    lost_identities,
    published_feed_ids,
)
from publisher.content.scan import (
    IndexResult,
    Scan,
    content_prefix,
    is_racy,
    problem_from_row,
)
from publisher.errors import ContentError
from publisher.model import Article
from publisher.store import ArticleRow, FileRow, Store, encode, from_row, restamp
from publisher.store.settings import CONFIG, INDEXED_AT

# Below this many changed files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 400
# Rows are written in batches while the workers go on parsing.
_BATCH = 500


def defaults_for(site: SiteConfig) -> ArticleDefaults:
    return ArticleDefaults(site.base_url, site.timezone, site.author, site.permalink)


class _Task(NamedTuple):
    root: str
    relative: str
    where: str
    known_hash: str | None  # the bytes indexed last time, if they still count
    known_id: str | None  # the id this file had
    context: IdContext


class _Loaded(NamedTuple):
    """One changed file, read and (unless its bytes are known) parsed.

    A named tuple of plain values: pickled back from the workers at half the
    cost of dataclasses.
    """

    relative: str
    size: int
    mtime_ns: int
    file_hash: str  # "" when the file could not be read
    row: ArticleRow | None  # the article, as a new one with the id it would take
    is_fresh_id: bool  # that id is a new name-based one: a renamed file's may replace it
    problem: tuple[str, ...] | None
    is_known_bytes: bool  # the same bytes as last time: only the stat moved
    warnings: tuple[str, ...] = ()
    body_hash: str | None = None  # of the body, if the file has one (valid or not)


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
    index = _Pass(site, store, scan, now=now, rows=rows)
    for loaded in _load_all(index.tasks(index.changed_files())):
        index.take(loaded)
    return index.finish()


class _Pass:
    """One pass over the content folder: what it knew before, and what it decides."""

    def __init__(
        self,
        site: SiteConfig,
        store: Store,
        scan: Scan,
        *,
        now: datetime,
        rows: Mapping[str, FileRow] | None,
    ) -> None:
        self.site = site
        self.store = store
        self.scan = scan
        self.now = now
        self.result = IndexResult()
        self.prefix = content_prefix(site)
        fingerprint = site.fingerprint()
        self.is_config_changed = store.get_setting(CONFIG) != fingerprint
        if self.is_config_changed:
            store.set_setting(CONFIG, fingerprint)
        self.rows = store.files() if rows is None else rows
        # Only ids here: the full records are loaded for the changed files alone.
        self.stored = store.article_ids()
        self.original = set(self.stored)
        self.present = {item.relative for item in scan.files}
        self.vanished = {path: r for path, r in self.rows.items() if path not in self.present}
        self.renames = Renames(store, self.vanished)
        self.fresh: list[ArticleRow] = []  # new articles of this pass, with new ids
        self.article_rows: list[ArticleRow] = []
        self.file_rows: list[FileRow] = []

    def changed_files(self) -> list[FoundFile]:
        """The files to read; the others keep what they had, a cached problem included."""
        indexed_at = self.store.get_setting(INDEXED_AT)
        changed: list[FoundFile] = []
        for item in self.scan.files:
            row = self.rows.get(item.relative)
            if (
                row is None
                or (row.size, row.mtime_ns) != (item.size, item.mtime_ns)
                or self.is_config_changed
                or is_racy(row.mtime_ns, indexed_at)
            ):
                changed.append(item)
            else:
                self._keep(row)
        self.store.set_setting(INDEXED_AT, str(self.scan.started_ns))
        return changed

    def tasks(self, changed: Iterable[FoundFile]) -> list[_Task]:
        # A state folder that was lost: take the ids readers already have from the
        # published feeds, so nothing shows up twice in their feed readers.
        context = IdContext(
            defaults_for(self.site),
            self.now.replace(microsecond=0),
            published_feed_ids(self.site.output_dir) if not self.stored else {},
        )
        tasks = []
        for item in changed:
            row = self.rows.get(item.relative)
            known_hash = row.file_hash if row is not None and not self.is_config_changed else None
            known_id = row.article_id if row is not None else None
            where = f"{self.prefix}/{item.relative}"
            tasks.append(_Task(item.root, item.relative, where, known_hash, known_id, context))
        return tasks

    def take(self, loaded: _Loaded) -> None:
        """Decide what one changed file is, and queue its rows."""
        if len(self.file_rows) >= _BATCH:
            self._flush()
        row = self.rows.get(loaded.relative)
        if loaded.is_known_bytes and row is not None:
            # Touched but not changed (a checkout, a copy): only the stat moves.
            kept = row._replace(size=loaded.size, mtime_ns=loaded.mtime_ns)
            self.file_rows.append(kept)
            self._keep(kept)
        elif loaded.row is None:
            self._take_broken(loaded, row)
        else:
            self._take_parsed(loaded, loaded.row, row)

    def finish(self) -> IndexResult:
        self._flush()
        for path in self.vanished:
            self.store.delete_file(path)
        lost = sorted(i for i in self.stored if i not in self.result.claims)
        if lost and self.fresh:
            self.result.warnings += lost_identities(
                self.prefix, self.store.articles(lost), (from_row(row) for row in self.fresh)
            )
        for article_id in lost:
            self.store.delete_article(article_id)
        self.store.number_publications(self.now)
        return self.result

    def _take_broken(self, loaded: _Loaded, row: FileRow | None) -> None:
        """A file that does not load: the article it was (or, renamed, had been) stays."""
        if loaded.file_hash:
            self.result.parsed += 1
        if row is None or row.article_id is None:
            renamed = self.renames.match(
                body_hash=loaded.body_hash, text_hash=None, file_hash=loaded.file_hash
            )
            row = None if renamed is None else FileRow(loaded.relative, 0, 0, "", renamed, None)
        self._problem_row(loaded, row, loaded.problem or ())

    def _take_parsed(self, loaded: _Loaded, new: ArticleRow, row: FileRow | None) -> None:
        self.result.parsed += 1
        self.result.warnings += loaded.warnings
        article_id, is_fresh = new.id, loaded.is_fresh_id
        if is_fresh:
            renamed = self.renames.match(
                body_hash=loaded.body_hash, text_hash=new.text_hash, file_hash=loaded.file_hash
            )
            if renamed is not None:
                article_id, is_fresh = renamed, False
        previous = self._previous(article_id)
        owner = self._owner(article_id, previous, loaded.relative)
        if owner is not None and owner != loaded.relative:
            where = f"{self.prefix}/{loaded.relative}"
            line = f"{where}: id: {article_id!r} is already used by {self.prefix}/{owner}"
            self._problem_row(loaded, row, [line])
            return
        self.result.claims[article_id] = loaded.relative
        if previous is not None:
            self.article_rows.append(_edited(new, previous, self.now))
        else:
            self.article_rows.append(new)
            if is_fresh and self.vanished:  # only a vanished file's article can be lost
                self.fresh.append(new)
        self.stored.add(article_id)
        self.file_rows.append(
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

    def _previous(self, article_id: str) -> Article | None:
        if article_id not in self.original:
            return None
        return self.store.articles([article_id]).get(article_id)

    def _owner(self, article_id: str, previous: Article | None, relative: str) -> str | None:
        """The file that holds *article_id* already: the first to claim it in this pass, or
        the one that had it before and is still there."""
        owner = self.result.claims.get(article_id)
        is_elsewhere = previous is not None and previous.path != relative
        if owner is None and is_elsewhere and previous is not None:
            return previous.path if previous.path in self.present else None
        return owner

    def _problem_row(self, loaded: _Loaded, row: FileRow | None, lines: Iterable[str]) -> None:
        """The row of a file that does not load; the article it was stays (its last good
        version), if the store still has it."""
        previous_id = row.article_id if row is not None else None
        if previous_id is not None and previous_id not in self.stored:
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
        self.file_rows.append(problem_row)
        self._keep(problem_row)

    def _keep(self, row: FileRow) -> None:
        """A file keeps the article it had, and its problem (if any) is reported."""
        if row.article_id is not None:
            self.result.claims.setdefault(row.article_id, row.path)
        if row.problem:
            self.result.problems.append(problem_from_row(self.site, row))

    def _flush(self) -> None:
        self.store.save_articles(self.article_rows)
        self.store.save_files(self.file_rows)
        self.article_rows.clear()
        self.file_rows.clear()


def _edited(new: ArticleRow, previous: Article, now: datetime) -> ArticleRow:
    """The row of an article the store had: first seen then, and edited now if its text moved."""
    edited_at = previous.edited_at
    if previous.text_hash != new.text_hash:
        edited_at = now.replace(microsecond=0)  # an edit: first seen now
    return restamp(new, article_id=previous.id, first_seen=previous.first_seen, edited_at=edited_at)


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
        data, size, mtime_ns = files.read_article(path, task.where)
    except ContentError as err:
        size, mtime_ns = _stat_or_zero(path)
        return _Loaded(relative, size, mtime_ns, "", None, False, tuple(err.lines()), False)
    file_hash = hashlib.sha256(data).hexdigest()
    if task.known_hash is not None and task.known_hash == file_hash:
        return _Loaded(relative, size, mtime_ns, file_hash, None, False, None, True)
    try:
        parsed = articles.parse_article(task.where, relative, data, task.context.defaults)
    except ContentError as err:
        body_hash = articles.body_hash_of(data)
        problem = tuple(err.lines())
        return _Loaded(
            relative, size, mtime_ns, file_hash, None, False, problem, False, (), body_hash
        )
    article_id, is_fresh = choose_id(parsed, known_id=task.known_id, context=task.context)
    article = Article(article_id, parsed.meta, task.context.first_seen, None, parsed.text_hash)
    return _Loaded(
        relative,
        size,
        mtime_ns,
        file_hash,
        encode(article),
        is_fresh,
        None,
        False,
        parsed.warnings,
        parsed.body_hash,
    )


def _stat_or_zero(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return 0, 0
    return stat.st_size, stat.st_mtime_ns
