"""The SQLite state: schema, forward-only migrations and small named queries.

Everything that must survive a restart lives here: which file each article
came from, its stable id, when it was first seen and last edited, and its last
good version (so a file that turns invalid keeps its article published).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from publisher.errors import MigrationError, StoreError
from publisher.model import Article, Author, Tag

logger = logging.getLogger(__name__)

# The last publication number given (settings key).
PUBLICATION_SEQ = "publication_seq"

# A step is an SQL statement, or a function for what SQL alone cannot do (a
# backfill that decodes the stored JSON).
Step = str | Callable[[sqlite3.Connection], None]


def _backfill_article_columns(conn: sqlite3.Connection) -> None:
    """Fill the planning columns that schema 5 added empty, from each article's metadata.

    Schema 5 left them NULL and relied on the next build re-indexing every
    file; an article kept at its last good version (its file broken) is never
    re-indexed, and every build then failed on it.
    """
    rows = conn.execute(
        "SELECT id, meta, text_hash, edited_at FROM articles "
        "WHERE date IS NULL OR is_draft IS NULL OR tags IS NULL OR version IS NULL"
    ).fetchall()
    for article_id, meta_text, text_hash, edited_at in rows:
        meta = json.loads(meta_text)
        conn.execute(
            "UPDATE articles SET date = ?, is_draft = ?, tags = ?, version = ? WHERE id = ?",
            (
                meta["date"],
                int(bool(meta["draft"])),
                _JSON.encode([[name, slug] for name, slug in meta["tags"]]),
                _version(meta_text, text_hash, edited_at),
                article_id,
            ),
        )


def _number_covered_articles(conn: sqlite3.Connection) -> None:
    """Give publication numbers to what the digests made so far have covered.

    Before schema 7 a digest took the articles that became public after the
    previous digest's watermark, a time. The articles public before the
    latest watermark are numbered here, and every digest covers them; the
    rest are numbered by the next build, so they go out in the next digest.
    The comparison is to the whole second below the watermark: the old rule
    lost an article first seen in the same second as a digest (its first
    sight was kept in whole seconds), and this gives it back. An article that
    did go out is known by digest_articles and is never sent again.
    """
    rows = conn.execute("SELECT watermark FROM digests").fetchall()
    if not rows:
        return
    cut = max(datetime.fromisoformat(row[0]) for row in rows).replace(microsecond=0)
    articles = conn.execute("SELECT date, first_seen, id FROM articles WHERE NOT is_draft")
    covered = sorted(
        (date, article_id)
        for date, first_seen, article_id in (
            (datetime.fromisoformat(d), datetime.fromisoformat(f), i) for d, f, i in articles
        )
        if max(date, first_seen) < cut
    )
    conn.executemany(
        "UPDATE articles SET published_seq = ? WHERE id = ?",
        [(number, article_id) for number, (_date, article_id) in enumerate(covered, 1)],
    )
    conn.execute("UPDATE digests SET last_seq = ?", (len(covered),))
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (PUBLICATION_SEQ, str(len(covered))),
    )


# Each migration is applied once, in order, inside its own transaction; the
# schema version is PRAGMA user_version. Never edit a released step: add one.
MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        """CREATE TABLE files (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            file_hash TEXT NOT NULL,
            article_id TEXT,
            problem TEXT
        )""",
        """CREATE TABLE articles (
            id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            edited_at TEXT,
            text_hash TEXT NOT NULL,
            meta TEXT NOT NULL,
            body TEXT NOT NULL,
            body_format TEXT NOT NULL,
            html TEXT,
            html_key TEXT
        )""",
        "CREATE INDEX articles_text_hash ON articles (text_hash)",
        "CREATE TABLE outputs (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL)",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (
        """CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('active', 'unsubscribed', 'bounced')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            hard_failures INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE digests (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            watermark TEXT NOT NULL,
            articles TEXT NOT NULL,
            subject TEXT,
            html TEXT,
            text TEXT,
            web_html TEXT,
            finished_at TEXT
        )""",
        """CREATE TABLE digest_articles (
            digest_id INTEGER NOT NULL REFERENCES digests (id),
            article_id TEXT NOT NULL,
            PRIMARY KEY (article_id, digest_id)
        )""",
        """CREATE TABLE deliveries (
            digest_id INTEGER NOT NULL REFERENCES digests (id),
            subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            reply TEXT,
            message_id TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (digest_id, subscriber_id)
        )""",
        "CREATE INDEX deliveries_status ON deliveries (digest_id, status, subscriber_id)",
    ),
    (
        # The stat of each output lets a build with nothing to do prove it
        # without reading them; the signature says what went into each.
        "ALTER TABLE outputs ADD COLUMN size INTEGER",
        "ALTER TABLE outputs ADD COLUMN mtime_ns INTEGER",
        "ALTER TABLE outputs ADD COLUMN signature TEXT",
    ),
    (
        # Double opt-in: a sign-up waits here until its address is confirmed,
        # and every request is logged for the per-address rate limit.
        """CREATE TABLE signups (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            name TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            confirmed_at TEXT
        )""",
        """CREATE TABLE signup_requests (
            email TEXT NOT NULL COLLATE NOCASE,
            client TEXT NOT NULL,
            at TEXT NOT NULL,
            was_sent INTEGER NOT NULL
        )""",
        "CREATE INDEX signup_requests_email ON signup_requests (email, at)",
    ),
    (
        # What planning the feeds needs, in columns: a build after one edit
        # reads these for every article and the full record only for the few
        # in feeds. Clearing the config fingerprint re-indexes every file,
        # which fills them.
        "ALTER TABLE articles ADD COLUMN date TEXT",
        "ALTER TABLE articles ADD COLUMN is_draft INTEGER",
        "ALTER TABLE articles ADD COLUMN tags TEXT",
        "ALTER TABLE articles ADD COLUMN version TEXT",
        "DELETE FROM settings WHERE key = 'config'",
    ),
    (_backfill_article_columns,),
    (
        # Which articles a digest has not covered yet is decided by numbers, not
        # times (#9): a build gives each article a publication number when it
        # first publishes it, and a digest records the last number it covered.
        # A file's body hash (valid front matter or not) recognises it renamed
        # with a new title; clearing the config fingerprint re-indexes every
        # file, which fills it.
        "ALTER TABLE articles ADD COLUMN published_seq INTEGER",
        "ALTER TABLE files ADD COLUMN body_hash TEXT",
        "ALTER TABLE digests ADD COLUMN last_seq INTEGER",
        "CREATE UNIQUE INDEX articles_published_seq ON articles (published_seq)",
        _number_covered_articles,
        "DELETE FROM settings WHERE key = 'config'",
    ),
    (
        # Addresses that must not be mailed again unless the person confirms a
        # sign-up themselves: kept when their subscriber row is removed, so an
        # old list cannot bring them back. `key` is an HMAC of the address
        # under the site secret, never the address (the migration cannot
        # compute it, so rows already unsubscribed or bounced are respected
        # through their row until they are removed).
        """CREATE TABLE suppressions (
            key TEXT PRIMARY KEY,
            reason TEXT NOT NULL
                CHECK (reason IN ('unsubscribed', 'bounced', 'removed', 'complained')),
            created_at TEXT NOT NULL
        )""",
    ),
    (
        # WebSub pings still to send, one row per feed URL: a build records
        # them in its last commit, and pingers send them after the site lock
        # is released, backing off after each failure. The list earlier
        # versions kept in the `websub_pending` setting moves here, due now.
        """CREATE TABLE websub_pings (
            url TEXT PRIMARY KEY,
            attempts INTEGER NOT NULL,
            next_attempt TEXT NOT NULL,
            last_error TEXT
        )""",
        "INSERT OR IGNORE INTO websub_pings (url, attempts, next_attempt) "
        "SELECT value, 1, '' FROM json_each((SELECT value FROM settings "
        "WHERE key = 'websub_pending'))",
        "DELETE FROM settings WHERE key = 'websub_pending'",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class FileRow:
    path: str
    size: int
    mtime_ns: int
    file_hash: str
    article_id: str | None
    problem: tuple[str, ...] | None
    body_hash: str | None = None  # of the body as last read, valid front matter or not


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article's stored record: its metadata plus what the sync step compares."""

    article: Article
    text_hash: str
    first_seen: datetime
    edited_at: datetime | None
    front_matter_updated: datetime | None
    version: str = ""  # changes whenever anything stored about the article changes


@dataclass(frozen=True, slots=True)
class ArticleKey:
    """The little about an article that deciding which feeds it goes in needs."""

    id: str
    date: datetime
    is_draft: bool
    tags: tuple[Tag, ...]
    version: str

    def is_published(self, now: datetime) -> bool:
        return not self.is_draft and self.date <= now


@dataclass(frozen=True, slots=True)
class PendingPing:
    """A WebSub ping still to send; `next_attempt` is as stored, to update it only if unchanged."""

    url: str
    attempts: int
    next_attempt: str


@dataclass(frozen=True, slots=True)
class OutputRow:
    """A file the last build wrote: its hash, its stat, and the signature of what went in."""

    sha256: str
    size: int
    mtime_ns: int
    signature: str


class Store:
    """One open state database. Use as a context manager, or call close()."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(str(self.path), f"cannot start a transaction: {err}") from err
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as err:
                raise StoreError(str(self.path), f"cannot commit: {err}") from err

    # -- settings ---------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def delete_setting(self, key: str) -> None:
        self.conn.execute("DELETE FROM settings WHERE key = ?", (key,))

    def set_setting(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- files (the manifest) ---------------------------------------------

    def files(self) -> dict[str, FileRow]:
        rows = self.conn.execute(f"SELECT {_FILE_COLUMNS} FROM files")
        return {row[0]: _file_row(row) for row in rows}

    def save_files(self, rows: Iterable[FileRow]) -> None:
        self.conn.executemany(
            f"INSERT INTO files ({_FILE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, file_hash = excluded.file_hash, "
            "article_id = excluded.article_id, problem = excluded.problem, "
            "body_hash = excluded.body_hash",
            (
                (
                    row.path,
                    row.size,
                    row.mtime_ns,
                    row.file_hash,
                    row.article_id,
                    json.dumps(list(row.problem)) if row.problem else None,
                    row.body_hash,
                )
                for row in rows
            ),
        )

    def files_for(self, paths: Iterable[str]) -> dict[str, FileRow]:
        """The manifest rows of *paths* (those that exist)."""
        result: dict[str, FileRow] = {}
        for path in paths:
            row = self.conn.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (path,)
            ).fetchone()
            if row is not None:
                result[path] = _file_row(row)
        return result

    def text_hashes(self, ids: Iterable[str]) -> dict[str, str]:
        result: dict[str, str] = {}
        for article_id in ids:
            row = self.conn.execute(
                "SELECT text_hash FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
            if row is not None:
                result[article_id] = row[0]
        return result

    def delete_file(self, path: str) -> None:
        self.conn.execute("DELETE FROM files WHERE path = ?", (path,))

    # -- articles -----------------------------------------------------------

    def stored_articles(self, ids: Iterable[str] | None = None) -> dict[str, StoredArticle]:
        """Stored articles by id (all of them, or those in *ids*), without bodies."""
        columns = "SELECT id, path, first_seen, edited_at, text_hash, meta FROM articles"
        if ids is None:
            return {row[0]: _stored_from_row(row) for row in self.conn.execute(columns)}
        wanted = sorted(set(ids))
        result: dict[str, StoredArticle] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self.conn.execute(f"{columns} WHERE id IN ({marks})", chunk):
                result[row[0]] = _stored_from_row(row)
        return result

    def article_keys(self) -> list[ArticleKey]:
        """Every article's id, date, draft flag, tags and version: enough to plan feeds."""
        tags: dict[str, tuple[Tag, ...]] = {}  # articles share tag lists: decode each once
        keys = []
        for row in self.conn.execute("SELECT id, date, is_draft, tags, version FROM articles"):
            article_tags = tags.get(row[3])
            if article_tags is None:
                article_tags = tags[row[3]] = tuple(Tag(n, s) for n, s in json.loads(row[3]))
            keys.append(
                ArticleKey(
                    row[0], datetime.fromisoformat(row[1]), bool(row[2]), article_tags, row[4]
                )
            )
        return keys

    def article_ids(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT id FROM articles")}

    def articles_at(self, paths: Iterable[str]) -> dict[str, tuple[str, str]]:
        """path -> (article id, text hash) for articles that came from *paths*."""
        result: dict[str, tuple[str, str]] = {}
        for path in paths:
            for row in self.conn.execute(
                "SELECT id, text_hash FROM articles WHERE path = ?", (path,)
            ):
                result[path] = (row[0], row[1])
        return result

    def number_publications(self, now: datetime) -> int:
        """Give the next publication numbers to articles published for the first time.

        An article is numbered once, by the first index that finds it published
        (not a draft, dated at or before *now*), oldest first; it keeps its
        number whatever happens to it later. Returns how many were numbered.
        """
        rows = self.conn.execute(
            "SELECT date, id FROM articles WHERE published_seq IS NULL AND is_draft = 0"
        )
        dated = ((datetime.fromisoformat(date), article_id) for date, article_id in rows)
        due = sorted(pair for pair in dated if pair[0] <= now)
        if not due:
            return 0
        last = int(self.get_setting(PUBLICATION_SEQ) or 0)
        self.conn.executemany(
            "UPDATE articles SET published_seq = ? WHERE id = ?",
            [(number, article_id) for number, (_date, article_id) in enumerate(due, last + 1)],
        )
        self.set_setting(PUBLICATION_SEQ, str(last + len(due)))
        return len(due)

    def publication_seq(self) -> int:
        """The last publication number given (0 before the first)."""
        return int(self.get_setting(PUBLICATION_SEQ) or 0)

    def save_articles(self, rows: Iterable[ArticleRow]) -> None:
        """Insert or update article records made by `article_row`.

        Bodies stay in their files: a cold build of 10,000 articles would
        otherwise copy the whole content folder into the database. What the
        store keeps is each article's rendered HTML once a feed has needed it,
        which is what a last good version must show.
        """
        self.conn.executemany(
            "INSERT INTO articles (id, path, first_seen, edited_at, text_hash, meta, body, "
            "body_format, html, html_key, date, is_draft, tags, version) "
            "VALUES (?, ?, ?, ?, ?, ?, '', ?, NULL, NULL, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET path = excluded.path, edited_at = excluded.edited_at, "
            "text_hash = excluded.text_hash, meta = excluded.meta, "
            "body_format = excluded.body_format, date = excluded.date, "
            "is_draft = excluded.is_draft, tags = excluded.tags, version = excluded.version",
            # An edit keeps the old HTML until the new one is rendered: it is the
            # last good version should the file break before that.
            rows,
        )

    def delete_article(self, article_id: str) -> None:
        self.conn.execute("DELETE FROM articles WHERE id = ?", (article_id,))

    def cached_html(self, ids: Iterable[str]) -> Iterator[tuple[str, str, str | None, str | None]]:
        """(id, body_format, html, html_key) for *ids*, one row at a time."""
        for article_id in ids:
            row = self.conn.execute(
                "SELECT id, body_format, html, html_key FROM articles WHERE id = ?",
                (article_id,),
            ).fetchone()
            if row is not None:
                yield row[0], row[1], row[2], row[3]

    def save_html(self, article_id: str, html: str, html_key: str) -> None:
        self.conn.execute(
            "UPDATE articles SET html = ?, html_key = ? WHERE id = ?", (html, html_key, article_id)
        )

    # -- outputs ------------------------------------------------------------

    def outputs(self) -> dict[str, OutputRow]:
        rows = self.conn.execute("SELECT path, sha256, size, mtime_ns, signature FROM outputs")
        return {row[0]: OutputRow(row[1], row[2] or 0, row[3] or 0, row[4] or "") for row in rows}

    def update_outputs(self, outputs: dict[str, OutputRow]) -> None:
        self.conn.executemany(
            "INSERT INTO outputs (path, sha256, size, mtime_ns, signature) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, signature = excluded.signature",
            [
                (path, r.sha256, r.size, r.mtime_ns, r.signature)
                for path, r in sorted(outputs.items())
            ],
        )

    def delete_outputs(self, paths: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM outputs WHERE path = ?", [(p,) for p in sorted(paths)])

    # -- WebSub pings -------------------------------------------------------
    #
    # Pingers work without the site lock, so two may send the same row at
    # once: each updates a row only while it still holds what that pinger
    # read. The slower one changes nothing; a row is never lost or counted twice.

    def queue_pings(self, urls: Iterable[str], *, now: datetime) -> None:
        """Feeds that changed are due at once, even while earlier pings back off."""
        self.conn.executemany(
            "INSERT INTO websub_pings (url, attempts, next_attempt) VALUES (?, 0, ?) "
            "ON CONFLICT (url) DO UPDATE SET next_attempt = excluded.next_attempt",
            [(url, _instant(now)) for url in sorted(set(urls))],
        )

    def due_pings(self, now: datetime) -> list[PendingPing]:
        rows = self.conn.execute(
            "SELECT url, attempts, next_attempt FROM websub_pings WHERE next_attempt <= ? "
            "ORDER BY url",
            (_instant(now),),
        )
        return [PendingPing(*row) for row in rows]

    def ping_accepted(self, ping: PendingPing) -> None:
        self.conn.execute(
            "DELETE FROM websub_pings WHERE url = ? AND next_attempt = ?",
            (ping.url, ping.next_attempt),
        )

    def ping_failed(self, ping: PendingPing, *, error: str, retry_at: datetime) -> None:
        self.conn.execute(
            "UPDATE websub_pings SET attempts = attempts + 1, next_attempt = ?, last_error = ? "
            "WHERE url = ? AND next_attempt = ?",
            (_instant(retry_at), error, ping.url, ping.next_attempt),
        )


def _instant(moment: datetime) -> str:
    # Fixed width in UTC, so that text order is time order in SQL.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def open_store(path: Path) -> Store:
    """Open (creating if needed) and migrate the state database at *path*.

    :raises StoreError: when it cannot be opened; MigrationError when its schema
        is newer than this program or a migration fails.
    """
    try:
        _make_private(path)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
    except (OSError, sqlite3.Error) as err:
        message = f"cannot open the state database ({err})"
        raise StoreError(str(path), message) from err
    store = Store(conn, path)
    try:
        _migrate(store)
    except BaseException:
        conn.close()
        raise
    return store


def _make_private(path: Path) -> None:
    """Create the database file 0600 (in a 0700 folder) before SQLite opens it.

    It holds every subscriber's address. SQLite gives the -wal and -shm files
    the database file's own permissions, so they follow.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)
            logger.warning("%s: was readable by others (mode %04o); changed it to 0600", path, mode)


def _migrate(store: Store) -> None:
    try:
        version = int(store.conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as err:
        message = f"not a state database ({err})"
        raise StoreError(str(store.path), message) from err
    if version > SCHEMA_VERSION:
        message = (
            f"schema version {version} is newer than this publisher understands "
            f"({SCHEMA_VERSION}); upgrade publisher"
        )
        raise MigrationError(str(store.path), message)
    for number in range(version, SCHEMA_VERSION):
        try:
            with store.transaction():
                for step in MIGRATIONS[number]:
                    if isinstance(step, str):
                        store.conn.execute(step)
                    else:
                        step(store.conn)
                store.conn.execute(f"PRAGMA user_version = {number + 1}")
        except sqlite3.Error as err:
            message = f"migration to schema version {number + 1} failed: {err}"
            raise MigrationError(str(store.path), message) from err


_FILE_COLUMNS = "path, size, mtime_ns, file_hash, article_id, problem, body_hash"


def _file_row(row: Sequence[Any]) -> FileRow:
    return FileRow(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        tuple(json.loads(row[5])) if row[5] else None,
        row[6],
    )


def meta_json(
    *,
    path: str,
    title: str,
    date: datetime,
    front_matter_updated: datetime | None,
    authors: Sequence[Author],
    tags: Sequence[Tag],
    summary: str,
    link: str,
    slug: str,
    is_draft: bool,
) -> str:
    """An article's metadata as stored (and hashed into its version)."""
    meta = {
        "path": path,
        "title": title,
        "date": date.isoformat(),
        "updated": front_matter_updated.isoformat() if front_matter_updated else None,
        "authors": [[a.name, a.email] for a in authors],
        "tags": [[t.name, t.slug] for t in tags],
        "summary": summary,
        "link": link,
        "slug": slug,
        "draft": is_draft,
    }
    return _SORTED_JSON.encode(meta)


def tags_json(tags: Sequence[Tag]) -> str:
    return _JSON.encode([[t.name, t.slug] for t in tags])


# What json.dumps(..., ensure_ascii=False[, sort_keys=True]) writes, without
# making an encoder per call: a cold build writes 10,000 of each.
_JSON = json.JSONEncoder(ensure_ascii=False)
_SORTED_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


# id, path, first_seen, edited_at, text_hash, meta, body_format, date, is_draft, tags, version
ArticleRow = tuple[str, str, str, str | None, str, str, str, str, int, str, str]


def article_row(
    article_id: str,
    *,
    path: str,
    first_seen: datetime,
    edited_at: datetime | None,
    text_hash: str,
    meta_json: str,
    body_format: str,
    date: str,
    is_draft: bool,
    tags_json: str,
) -> ArticleRow:
    """An article's record as `Store.save_articles` writes it; the last value is its version.

    Pure, so that worker processes can make the rows of new articles.
    """
    edited = edited_at.isoformat() if edited_at else None
    version = _version(meta_json, text_hash, edited)
    return (
        article_id,
        path,
        first_seen.isoformat(),
        edited,
        text_hash,
        meta_json,
        body_format,
        date,
        int(is_draft),
        tags_json,
        version,
    )


def _stored_from_row(row: Sequence[Any]) -> StoredArticle:
    article_id, path, first_seen, edited_at, text_hash, meta_json = row
    meta = json.loads(meta_json)
    date = datetime.fromisoformat(meta["date"])
    front_matter_updated = datetime.fromisoformat(meta["updated"]) if meta["updated"] else None
    edited = datetime.fromisoformat(edited_at) if edited_at else None
    article = Article(
        id=article_id,
        path=path,
        title=meta["title"],
        date=date,
        updated=effective_updated(date, front_matter_updated, edited),
        authors=tuple(Author(name, email) for name, email in meta["authors"]),
        tags=tuple(Tag(name, slug) for name, slug in meta["tags"]),
        summary=meta["summary"],
        link=meta["link"],
        slug=meta["slug"],
        is_draft=meta["draft"],
    )
    version = _version(meta_json, text_hash, edited_at)
    return StoredArticle(
        article,
        text_hash,
        datetime.fromisoformat(first_seen),
        edited,
        front_matter_updated,
        version,
    )


def _version(meta_json: str, text_hash: str, edited_at: str | None) -> str:
    return hashlib.sha1(f"{meta_json}\0{text_hash}\0{edited_at}".encode()).hexdigest()


def effective_updated(
    date: datetime, front_matter_updated: datetime | None, edited_at: datetime | None
) -> datetime | None:
    """The front matter's `updated` wins; else the time an edit was first seen, if after date."""
    if front_matter_updated is not None:
        return front_matter_updated
    if edited_at is not None and edited_at > date:
        return edited_at
    return None
