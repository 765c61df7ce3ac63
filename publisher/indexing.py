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
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

from publisher import content
from publisher.config import SiteConfig
from publisher.content import ArticleDefaults, FoundFile, ParsedArticle
from publisher.errors import ConfigError, ContentError
from publisher.model import Article, ContentProblem
from publisher.store import FileRow, Store, StoredArticle, effective_updated

logger = logging.getLogger(__name__)


def defaults_for(site: SiteConfig) -> ArticleDefaults:
    return ArticleDefaults(site.base_url, site.timezone, site.author, site.permalink)


def display(site: SiteConfig, path: Path) -> str:
    """A path as the user would write it: relative to the site folder when inside it."""
    try:
        return path.relative_to(site.root).as_posix()
    except ValueError:
        return str(path)


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


def index_content(
    site: SiteConfig, store: Store, found: Sequence[FoundFile], *, now: datetime
) -> IndexResult:
    sync = IndexResult()
    defaults = defaults_for(site)
    fingerprint = site.fingerprint()
    is_config_changed = store.get_setting("config") != fingerprint
    if is_config_changed:
        store.set_setting("config", fingerprint)
    rows = store.files()
    stored = store.stored_articles()
    present = {item.relative for item in found}
    vanished = {path: row for path, row in rows.items() if path not in present}
    renamed_from = {
        s.text_hash: article_id for article_id, s in stored.items() if s.article.path in vanished
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
        if row.article_id is not None:
            sync.claims.setdefault(row.article_id, item.relative)
        if row.problem:
            sync.problems.append(_problem(row.problem, stored, row.article_id, site, item))

    for item in changed:
        where = display(site, item.path)
        row = rows.get(item.relative)
        try:
            data, size, mtime_ns = content.read_article(item.path, where)
        except ContentError as err:
            _record_problem(store, sync, site, item, row, stored, err.lines(), file_hash="")
            continue
        item = replace(item, size=size, mtime_ns=mtime_ns)  # the stat of the bytes we read
        file_hash = hashlib.sha256(data).hexdigest()
        if row is not None and row.file_hash == file_hash and not is_config_changed:
            # Touched but not changed (a checkout, a copy): only the stat moves.
            store.save_file(replace(row, size=item.size, mtime_ns=item.mtime_ns))
            if row.article_id is not None:
                sync.claims.setdefault(row.article_id, item.relative)
            if row.problem:
                sync.problems.append(_problem(row.problem, stored, row.article_id, site, item))
            continue
        sync.parsed += 1
        try:
            parsed = content.parse_article(where, item.relative, data, defaults)
        except ContentError as err:
            _record_problem(store, sync, site, item, row, stored, err.lines(), file_hash=file_hash)
            continue
        article_id = _choose_id(site, parsed, row, renamed_from, published_ids)
        owner = sync.claims.get(article_id)
        if owner is None and article_id in stored:
            previous_path = stored[article_id].article.path
            if previous_path != item.relative and previous_path in present:
                owner = previous_path  # the file that had this id first keeps it
        if owner is not None and owner != item.relative:
            owner_where = display(site, site.content_dir / owner)
            line = f"{where}: id: {article_id!r} is already used by {owner_where}"
            _record_problem(store, sync, site, item, row, stored, [line], file_hash=file_hash)
            continue
        sync.claims[article_id] = item.relative
        _save_parsed(store, parsed, article_id, stored.get(article_id), now=now)
        store.save_file(
            FileRow(item.relative, item.size, item.mtime_ns, file_hash, article_id, None)
        )

    for path in vanished:
        store.delete_file(path)
    for article_id in stored:
        if article_id not in sync.claims:
            store.delete_article(article_id)
    return sync


def _choose_id(
    site: SiteConfig,
    parsed: ParsedArticle,
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
    parsed: ParsedArticle,
    article_id: str,
    previous: StoredArticle | None,
    *,
    now: datetime,
) -> None:
    edited_at = previous.edited_at if previous else None
    if previous is not None and previous.text_hash != parsed.text_hash:
        edited_at = now.replace(microsecond=0)  # an edit: first seen now
    article = Article(
        id=article_id,
        path=parsed.path,
        title=parsed.title,
        date=parsed.date,
        updated=effective_updated(parsed.date, parsed.updated, edited_at),
        authors=parsed.authors,
        tags=parsed.tags,
        summary=parsed.summary,
        link=parsed.link,
        slug=parsed.slug,
        is_draft=parsed.is_draft,
    )
    first_seen = previous.first_seen if previous else now.replace(microsecond=0)
    store.save_article(
        StoredArticle(article, parsed.text_hash, first_seen, edited_at, parsed.updated),
        body=parsed.body,
        body_format=parsed.body_format,
    )


def _record_problem(
    store: Store,
    sync: IndexResult,
    site: SiteConfig,
    item: FoundFile,
    row: FileRow | None,
    stored: dict[str, StoredArticle],
    lines: Iterable[str],
    *,
    file_hash: str,
) -> None:
    previous_id = row.article_id if row is not None else None
    if previous_id is not None and previous_id not in stored:
        previous_id = None
    if previous_id is not None:
        sync.claims.setdefault(previous_id, item.relative)
    problem_lines = tuple(lines)
    store.save_file(
        FileRow(item.relative, item.size, item.mtime_ns, file_hash, previous_id, problem_lines)
    )
    sync.problems.append(_problem(problem_lines, stored, previous_id, site, item))


def problem_from_row(site: SiteConfig, row: FileRow) -> ContentProblem:
    """The cached problem of a file that did not change since it was reported."""
    return ContentProblem(
        display(site, site.content_dir / row.path),
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


def _problem(
    lines: tuple[str, ...],
    stored: dict[str, StoredArticle],
    article_id: str | None,
    site: SiteConfig,
    item: FoundFile,
) -> ContentProblem:
    kept = article_id is not None and article_id in stored
    return ContentProblem(display(site, item.path), lines, kept_previous=kept)
