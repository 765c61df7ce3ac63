"""Articles, the file manifest and the outputs the builds wrote.

An article is stored as a row of plain values: `encode` makes it (a pure
function, so worker processes can make the rows of the files they parse)
and `decode` reads it back. Bodies stay in their files; what the store keeps
is each article's rendered HTML once a feed has needed it, which is what a
last good version must show.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from publisher.model import Article, ArticleMeta, Author, BodyFormat, Tag
from publisher.store.base import StoreBase
from publisher.store.settings import PUBLICATION_SEQ, SettingQueries

# What json.dumps(..., ensure_ascii=False[, sort_keys=True]) writes, without
# making an encoder per call: a cold build writes 10,000 of each.
JSON = json.JSONEncoder(ensure_ascii=False)
_SORTED_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
# What planning reads of every article (SQLite answers it from the index articles_keys).
ARTICLE_KEYS_QUERY = "SELECT id, date, is_draft, tags, version, link, modified, path FROM articles"
# The tables of written files: the feeds' and the pages' (the only names put into SQL).
_OutputTable = Literal["outputs", "pages"]


class ArticleRow(NamedTuple):
    """An article as `save_articles` writes it: what `encode` makes and `decode` reads."""

    id: str
    path: str
    first_seen: str
    edited_at: str | None
    text_hash: str
    meta: str  # the metadata as JSON (hashed into the version)
    body_format: str
    date: str  # the columns planning reads without decoding the metadata
    is_draft: int
    tags: str
    version: str
    link: str  # where the article's page goes
    modified: str  # when it last changed, as its page and the sitemap say


class CachedHtml(NamedTuple):
    """An article's HTML as the store holds it, with what says whether it is still fresh."""

    id: str
    body_format: str
    html: str | None
    html_key: str | None  # what it was made from (content.bodies.html_key)
    text_hash: str


class ArticleKey(NamedTuple):
    """The little about an article that deciding which feeds it goes in needs."""

    id: str
    date: datetime
    is_draft: bool
    tags: tuple[Tag, ...]
    version: str
    link: str = ""
    modified: datetime | None = None  # the article's last_modified (pages and the sitemap)
    path: str = ""  # its file, relative to the content folder
    # The stored columns it was read from, joined (see `key_shape`): equal shapes, equal
    # keys but for the version and `modified`. "" for a key made elsewhere.
    shape: str = ""

    def is_published(self, now: datetime) -> bool:
        return not self.is_draft and self.date <= now


def key_shape(row: Sequence[Any]) -> str:
    """An ARTICLE_KEYS_QUERY row's columns as one string (2 ms for 10,000), but the version
    and the last change, which is made of what the version is made of (article_version).

    Joined with NUL, which no column holds (ids and links are printable text,
    the rest ISO dates, a flag, JSON and a file name), the freest column last:
    two rows give the same string only when every one of these columns is the same.
    """
    draft = "1" if row[2] else "0"
    return "\0".join((row[0], row[1], draft, row[3], row[7], row[5]))


class FileRow(NamedTuple):
    """One content file as the manifest knows it, and the article it holds (if any)."""

    path: str
    size: int
    mtime_ns: int
    file_hash: str
    article_id: str | None
    problem: tuple[str, ...] | None  # the lines that say why it does not load
    body_hash: str | None = None  # of the body as last read, valid front matter or not


class OutputRow(NamedTuple):
    """A file the last build wrote: its hash, its stat, and the signature of what went in."""

    sha256: str
    size: int
    mtime_ns: int
    signature: str


def encode(article: Article) -> ArticleRow:
    """The row that stores *article* (its version is computed here, from the rest)."""
    meta = article.meta
    date = meta.date.isoformat()
    updated = meta.updated.isoformat() if meta.updated else None
    tags = [[t.name, t.slug] for t in meta.tags]
    document: dict[str, object] = {
        "path": meta.path,
        "title": meta.title,
        "date": date,
        "updated": updated,
        "authors": [[a.name, a.email] for a in meta.authors],
        "tags": tags,
        "summary": meta.summary,
        "link": meta.link,
        "slug": meta.slug,
        "draft": meta.is_draft,
    }
    meta_json = _SORTED_JSON.encode(document)
    edited = article.edited_at.isoformat() if article.edited_at else None
    return ArticleRow(
        id=article.id,
        path=meta.path,
        first_seen=article.first_seen.isoformat(),
        edited_at=edited,
        text_hash=article.text_hash,
        meta=meta_json,
        body_format=meta.body_format,
        date=date,
        is_draft=int(meta.is_draft),
        tags=JSON.encode(tags),
        version=article_version(meta_json, article.text_hash, edited),
        link=meta.link,
        modified=last_modified(date, updated, edited),
    )


def last_modified(date: str, updated: str | None, edited_at: str | None) -> str:
    """Article.last_modified from stored values: `updated`, else an edit seen after the date."""
    if updated:
        return updated
    if edited_at and datetime.fromisoformat(edited_at) > datetime.fromisoformat(date):
        return edited_at
    return date


def decode(row: Sequence[Any]) -> Article:
    """The article a row of `_ARTICLE_COLUMNS` stores."""
    article_id, first_seen, edited_at, text_hash, meta_json, body_format = row
    meta = json.loads(meta_json)
    return Article(
        id=article_id,
        meta=ArticleMeta(
            path=meta["path"],
            title=meta["title"],
            date=datetime.fromisoformat(meta["date"]),
            updated=datetime.fromisoformat(meta["updated"]) if meta["updated"] else None,
            authors=tuple(Author(name, email) for name, email in meta["authors"]),
            tags=tuple(Tag(name, slug) for name, slug in meta["tags"]),
            summary=meta["summary"],
            link=meta["link"],
            slug=meta["slug"],
            is_draft=meta["draft"],
            body_format=_body_format(body_format),
        ),
        first_seen=datetime.fromisoformat(first_seen),
        edited_at=datetime.fromisoformat(edited_at) if edited_at else None,
        text_hash=text_hash,
        version=article_version(meta_json, text_hash, edited_at),
    )


def from_row(row: ArticleRow) -> Article:
    """The article a row made by `encode` stores (before it is written)."""
    return decode((row.id, row.first_seen, row.edited_at, row.text_hash, row.meta, row.body_format))


def restamp(
    row: ArticleRow, *, article_id: str, first_seen: datetime, edited_at: datetime | None
) -> ArticleRow:
    """*row* as the article the store already has: its id, its first sight, its last edit."""
    edited = edited_at.isoformat() if edited_at else None
    return row._replace(
        id=article_id,
        first_seen=first_seen.isoformat(),
        edited_at=edited,
        version=article_version(row.meta, row.text_hash, edited),
        modified=last_modified(row.date, json.loads(row.meta)["updated"], edited),
    )


def article_version(meta_json: str, text_hash: str, edited_at: str | None) -> str:
    return hashlib.sha1(f"{meta_json}\0{text_hash}\0{edited_at}".encode()).hexdigest()


def _body_format(text: str) -> BodyFormat:
    return "text" if text == "text" else "markdown"


_ARTICLE_COLUMNS = "id, first_seen, edited_at, text_hash, meta, body_format"
_FILE_COLUMNS = "path, size, mtime_ns, file_hash, article_id, problem, body_hash"
_FILE_STATS_QUERY = "SELECT path, size, mtime_ns FROM files"


def _file_row(row: Sequence[Any]) -> FileRow:
    problem = tuple(json.loads(row[5])) if row[5] else None
    return FileRow(row[0], row[1], row[2], row[3], row[4], problem, row[6])


class ArticleQueries(SettingQueries, StoreBase):
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
                (*row[:5], json.dumps(list(row.problem)) if row.problem else None, row.body_hash)
                for row in rows
            ),
        )

    def file_stats(self) -> set[tuple[str, int, int]]:
        """Each manifest row's path, size and mtime: all the quick path compares.

        A set of plain tuples, not rows: a build with nothing to do reads
        10,000 of them, and making FileRows cost it more than the query.
        """
        return {(row[0], row[1], row[2]) for row in self.conn.execute(_FILE_STATS_QUERY)}

    def problem_files(self) -> list[FileRow]:
        """The manifest rows of the files that did not load, by path."""
        rows = self.conn.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE problem IS NOT NULL")
        return sorted((_file_row(row) for row in rows), key=lambda r: r.path)

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

    def delete_file(self, path: str) -> None:
        self.conn.execute("DELETE FROM files WHERE path = ?", (path,))

    # -- articles -----------------------------------------------------------

    def articles(self, ids: Iterable[str] | None = None) -> dict[str, Article]:
        """Stored articles by id (all of them, or those in *ids*), without bodies."""
        columns = f"SELECT {_ARTICLE_COLUMNS} FROM articles"
        if ids is None:
            return {row[0]: decode(row) for row in self.conn.execute(columns)}
        rows = self.rows_in(columns + " WHERE id IN ({marks})", ids)
        return {row[0]: decode(row) for row in rows}

    def article_keys(self) -> list[ArticleKey]:
        """Every article's id, date, draft flag, tags and version: enough to plan feeds."""
        tags: dict[str, tuple[Tag, ...]] = {}  # articles share tag lists: decode each once
        keys = []
        rows = self.conn.execute(ARTICLE_KEYS_QUERY)
        for row in rows:
            article_tags = tags.get(row[3])
            if article_tags is None:
                article_tags = tags[row[3]] = tuple(Tag(n, s) for n, s in json.loads(row[3]))
            date = datetime.fromisoformat(row[1])
            modified = datetime.fromisoformat(row[6]) if row[6] and row[6] != row[1] else date
            keys.append(
                ArticleKey(
                    row[0],
                    date,
                    bool(row[2]),
                    article_tags,
                    row[4],
                    row[5],
                    modified,
                    row[7],
                    key_shape(row),
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

    def save_articles(self, rows: Iterable[ArticleRow]) -> None:
        """Insert or update articles from their rows (made by `encode`)."""
        self.conn.executemany(
            "INSERT INTO articles (id, path, first_seen, edited_at, text_hash, meta, body, "
            "body_format, html, html_key, date, is_draft, tags, version, link, modified) "
            "VALUES (?, ?, ?, ?, ?, ?, '', ?, NULL, NULL, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET path = excluded.path, edited_at = excluded.edited_at, "
            "text_hash = excluded.text_hash, meta = excluded.meta, "
            "body_format = excluded.body_format, date = excluded.date, "
            "is_draft = excluded.is_draft, tags = excluded.tags, version = excluded.version, "
            "link = excluded.link, modified = excluded.modified",
            # An edit keeps the old HTML until the new one is rendered: it is the
            # last good version should the file break before that.
            rows,
        )

    def delete_article(self, article_id: str) -> None:
        self.conn.execute("DELETE FROM articles WHERE id = ?", (article_id,))

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
        last = self.publication_seq()
        self.conn.executemany(
            "UPDATE articles SET published_seq = ? WHERE id = ?",
            [(number, article_id) for number, (_date, article_id) in enumerate(due, last + 1)],
        )
        self.set_setting(PUBLICATION_SEQ, str(last + len(due)))
        return len(due)

    def publication_seq(self) -> int:
        """The last publication number given (0 before the first)."""
        return int(self.get_setting(PUBLICATION_SEQ) or 0)

    def numbered_article_ids(self) -> set[str]:
        """Every article that has been published (has a publication number)."""
        rows = self.conn.execute("SELECT id FROM articles WHERE published_seq IS NOT NULL")
        return {row[0] for row in rows}

    # -- the HTML cache -------------------------------------------------------

    def cached_html(self, ids: Iterable[str]) -> Iterator[CachedHtml]:
        """What the store holds of the HTML of *ids* (those it has), by id, 500 a query."""
        query = (
            "SELECT id, body_format, html, html_key, text_hash FROM articles "
            "WHERE id IN ({marks}) ORDER BY id"
        )
        for row in self.rows_in(query, ids):
            yield CachedHtml(*row)

    def save_html(self, article_id: str, html: str, html_key: str) -> None:
        self.conn.execute(
            "UPDATE articles SET html = ?, html_key = ? WHERE id = ?", (html, html_key, article_id)
        )

    # -- outputs ------------------------------------------------------------

    def outputs(self) -> dict[str, OutputRow]:
        """The feed files the last builds wrote, by path under [paths] output."""
        return self._outputs_in("outputs")

    def update_outputs(self, outputs: Mapping[str, OutputRow]) -> None:
        self._update_outputs_in("outputs", outputs)

    def delete_outputs(self, paths: Iterable[str]) -> None:
        self._delete_outputs_in("outputs", paths)

    def page_outputs(self) -> dict[str, OutputRow]:
        """The pages the last builds wrote, by path under [paths] site."""
        return self._outputs_in("pages")

    def update_page_outputs(self, outputs: Mapping[str, OutputRow]) -> None:
        self._update_outputs_in("pages", outputs)

    def delete_page_outputs(self, paths: Iterable[str]) -> None:
        self._delete_outputs_in("pages", paths)

    # -- feed entries ---------------------------------------------------------

    def feed_entries(self, ids: Iterable[str]) -> dict[tuple[str, str], tuple[str, bytes]]:
        """(article id, format) -> (signature, entry bytes) for the articles in *ids*."""
        query = (
            "SELECT article_id, format, signature, data FROM feed_entries "
            "WHERE article_id IN ({marks})"
        )
        return {
            (row[0], row[1]): (row[2], row[3].encode("utf-8")) for row in self.rows_in(query, ids)
        }

    def save_feed_entries(self, entries: Mapping[tuple[str, str], tuple[str, bytes]]) -> None:
        self.conn.executemany(
            "INSERT INTO feed_entries (article_id, format, signature, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (article_id, format) DO UPDATE SET signature = excluded.signature, "
            "data = excluded.data",
            [
                (article_id, fmt, signature, data.decode("utf-8"))
                for (article_id, fmt), (signature, data) in sorted(entries.items())
            ],
        )

    def keep_feed_entries(self, ids: Iterable[str]) -> None:
        """Forget the entries of articles not in *ids* (no feed shows them any more)."""
        keep = set(ids)
        stored = {
            row[0] for row in self.conn.execute("SELECT DISTINCT article_id FROM feed_entries")
        }
        self.conn.executemany(
            "DELETE FROM feed_entries WHERE article_id = ?", [(i,) for i in sorted(stored - keep)]
        )

    def output_stats(self) -> list[tuple[str, int, int]]:
        """Each feed file's path, size and mtime: what the quick path compares."""
        return self._stats_in("outputs")

    def page_output_stats(self) -> list[tuple[str, int, int]]:
        """Each page's path, size and mtime, as output_stats."""
        return self._stats_in("pages")

    def _stats_in(self, table: _OutputTable) -> list[tuple[str, int, int]]:
        # Plain tuples, not rows: a build with nothing to do reads 13,000 of them.
        query = f"SELECT path, COALESCE(size, 0), COALESCE(mtime_ns, 0) FROM {table}"
        return [(row[0], row[1], row[2]) for row in self.conn.execute(query)]

    def _outputs_in(self, table: _OutputTable) -> dict[str, OutputRow]:
        rows = self.conn.execute(f"SELECT path, sha256, size, mtime_ns, signature FROM {table}")
        return {row[0]: OutputRow(row[1], row[2] or 0, row[3] or 0, row[4] or "") for row in rows}

    def _update_outputs_in(self, table: _OutputTable, outputs: Mapping[str, OutputRow]) -> None:
        self.conn.executemany(
            f"INSERT INTO {table} (path, sha256, size, mtime_ns, signature) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, signature = excluded.signature",
            [(path, *row) for path, row in sorted(outputs.items())],
        )

    def _delete_outputs_in(self, table: _OutputTable, paths: Iterable[str]) -> None:
        self.conn.executemany(f"DELETE FROM {table} WHERE path = ?", [(p,) for p in sorted(paths)])
