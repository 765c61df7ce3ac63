"""The one place that knows the order of stages: load → index → render → write.

`build` reads only what changed since the last run (by path, size and mtime,
then by content hash), keeps each article's stable id and last good version in
the store, renders Markdown only for articles that appear in some feed, and
writes only the files whose bytes changed.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from publisher import __version__, content, feeds, markup
from publisher.config import SiteConfig
from publisher.content import ArticleDefaults, FoundFile, ParsedArticle
from publisher.errors import ConfigError, ContentError, OutputError, PublisherError
from publisher.model import Article, BuildReport, ContentProblem, FeedItem, FeedSpec, Tag
from publisher.output import OutputWriter
from publisher.store import FileRow, Store, StoredArticle, effective_updated, open_store

logger = logging.getLogger(__name__)

STATE_DB = "state.db"


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


# -- check ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckReport:
    checked: int
    problems: tuple[ContentProblem, ...]


def check(site: SiteConfig) -> CheckReport:
    """Parse every article afresh, write nothing, and report every problem."""
    defaults = defaults_for(site)
    problems: list[ContentProblem] = []
    owners: dict[str, str] = {}
    found = content_files(site)
    for item in found:
        where = display(site, item.path)
        try:
            parsed = content.parse_article(
                where, item.relative, content.read_article_bytes(item.path, where), defaults
            )
        except ContentError as err:
            problems.append(ContentProblem(where, tuple(err.lines())))
            continue
        if parsed.explicit_id is not None:
            if parsed.explicit_id in owners:
                problems.append(
                    _duplicate_id(where, parsed.explicit_id, owners[parsed.explicit_id])
                )
            else:
                owners[parsed.explicit_id] = where
    return CheckReport(len(found), tuple(problems))


def _duplicate_id(where: str, article_id: str, owner: str) -> ContentProblem:
    return ContentProblem(where, (f"{where}: id: {article_id!r} is already used by {owner}",))


# -- build: index ------------------------------------------------------------------


@dataclass
class IndexResult:
    """What one pass over the content folder found and decided."""

    problems: list[ContentProblem] = field(default_factory=list)
    parsed: int = 0
    claims: dict[str, str] = field(default_factory=dict)  # article id -> path that owns it


def build(site: SiteConfig, *, now: datetime) -> BuildReport:
    """Bring the output folder in line with the content folder.

    :raises PublisherError: for a missing content folder, an unusable store or
        an unwritable output folder. Bad articles are reported, never raised.
    """
    found = content_files(site)
    with open_store(site.state_dir / STATE_DB) as store:
        with store.transaction():
            sync = index_content(site, store, found, now=now)
        stored = store.stored_articles()
        articles = [s.article for s in stored.values()]
        plans = plan_feeds(site, articles, now=now)
        written, unchanged, removed = _write_feeds(site, store, plans)
    published = sum(1 for a in articles if a.is_published(now))
    drafts = sum(1 for a in articles if a.is_draft)
    return BuildReport(
        loaded=len(articles),
        published=published,
        drafts=drafts,
        scheduled=len(articles) - published - drafts,
        problems=tuple(sync.problems),
        written=tuple(written),
        unchanged=tuple(unchanged),
        removed=tuple(removed),
        parsed=sync.parsed,
    )


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
            data = content.read_article_bytes(item.path, where)
        except ContentError as err:
            _record_problem(store, sync, site, item, row, stored, err.lines(), file_hash="")
            continue
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
        article_id = _choose_id(site, parsed, row, renamed_from)
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
    site: SiteConfig, parsed: ParsedArticle, row: FileRow | None, renamed_from: dict[str, str]
) -> str:
    """Front matter id, else the id this file had, else a renamed file's, else a new one.

    A new id is a name-based UUID of the site URL and the file's path at first
    sight: stable, and the same again if the state is ever rebuilt from scratch.
    """
    if parsed.explicit_id is not None:
        return parsed.explicit_id
    if row is not None and row.article_id is not None:
        return row.article_id
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


def _problem(
    lines: tuple[str, ...],
    stored: dict[str, StoredArticle],
    article_id: str | None,
    site: SiteConfig,
    item: FoundFile,
) -> ContentProblem:
    kept = article_id is not None and article_id in stored
    return ContentProblem(display(site, item.path), lines, kept_previous=kept)


# -- build: render and write -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedPlan:
    spec: FeedSpec
    articles: tuple[Article, ...]


def plan_feeds(site: SiteConfig, articles: Iterable[Article], *, now: datetime) -> list[FeedPlan]:
    """Which articles go into which feed: newest first, at most max_items each."""
    published = sorted(
        (a for a in articles if a.is_published(now)),
        key=lambda a: (a.date, a.id),
        reverse=True,
    )
    limit = site.feeds.max_items
    base = FeedSpec(
        title=site.title,
        description=site.description,
        home_url=site.base_url,
        folder_url=site.feeds.url,
        folder="",
        language=site.language,
        author=site.author,
        generator_version=__version__,
    )
    plans = [FeedPlan(base, tuple(published[:limit]))]
    if site.feeds.tag_feeds:
        by_tag: dict[str, list[Article]] = {}
        names: dict[str, Tag] = {}
        for article in published:
            for tag in article.tags:
                by_tag.setdefault(tag.slug, []).append(article)
                names.setdefault(tag.slug, tag)  # the newest article's spelling
        for slug in sorted(by_tag):
            tag = names[slug]
            spec = replace(
                base,
                title=f"{site.title}: {tag.name}",
                description=f"{site.description} Articles tagged “{tag.name}”.",
                folder_url=f"{site.feeds.url}tags/{_quote(slug)}/",
                folder=f"tags/{slug}",
                tag=tag,
            )
            plans.append(FeedPlan(spec, tuple(by_tag[slug][:limit])))
    return plans


def _quote(slug: str) -> str:
    from urllib.parse import quote

    return quote(slug)


def _write_feeds(
    site: SiteConfig, store: Store, plans: Sequence[FeedPlan]
) -> tuple[list[str], list[str], list[str]]:
    writer = OutputWriter(site.output_dir, display_root=display(site, site.output_dir))
    writer.ensure_root()
    html = _html_for(store, plans) if site.feeds.full_content else {}
    written: list[str] = []
    unchanged: list[str] = []
    outputs: dict[str, str] = {}
    try:
        for plan in plans:
            items = [FeedItem(a, html.get(a.id)) for a in plan.articles]
            for fmt in site.feeds.formats:
                relative = f"{plan.spec.folder}/{feeds.FEED_FILES[fmt]}".lstrip("/")
                data = feeds.render(fmt, plan.spec, items)
                outputs[relative] = hashlib.sha256(data).hexdigest()
                target = writer.where(relative)
                (written if writer.write_if_changed(relative, data) else unchanged).append(target)
    except PublisherError:
        raise
    except OSError as err:  # pragma: no cover - write_if_changed wraps OS errors
        raise OutputError(display(site, site.output_dir), str(err)) from err
    removed: list[str] = []
    previous = store.outputs()
    for relative in sorted(set(previous) - set(outputs)):
        if writer.remove(relative):
            removed.append(writer.where(relative))
    if previous != outputs:
        with store.transaction():
            store.set_outputs(outputs)
    return written, unchanged, removed


def _html_for(store: Store, plans: Sequence[FeedPlan]) -> dict[str, str]:
    """Rendered bodies of the articles that appear in some feed, from the cache when fresh."""
    needed: dict[str, Article] = {}
    for plan in plans:
        for article in plan.articles:
            needed.setdefault(article.id, article)
    html: dict[str, str] = {}
    fresh: list[tuple[str, str, str]] = []
    for article_id, body, body_format, cached, cached_key in store.bodies(sorted(needed)):
        article = needed[article_id]
        key = hashlib.sha256(f"{body_format}\0{article.link}\0{body}".encode()).hexdigest()
        if cached is not None and cached_key == key:
            html[article_id] = cached
            continue
        rendered = markup.render_body(body, body_format=body_format, base_url=article.link)
        html[article_id] = rendered
        fresh.append((article_id, rendered, key))
    if fresh:
        with store.transaction():
            for article_id, rendered, key in fresh:
                store.save_html(article_id, rendered, key)
    return html


# -- new ---------------------------------------------------------------------------


def new_article(
    site: SiteConfig, title: str, *, now: datetime, tags: Sequence[str] = (), is_draft: bool = True
) -> Path:
    """Create content/<date>-<slug>.md from the new-article template.

    :raises ConfigError: for a title with nothing to make a slug from.
    :raises OutputError: when the file exists already or cannot be written.
    """
    from publisher import templating
    from publisher.output import atomic_write

    clean_title = markup.one_line(title)
    slug = markup.slugify(clean_title)
    if not slug:
        where = "TITLE"
        message = f"{title!r} has no letters or digits to make a file name from"
        raise ConfigError(where, message)
    local = now.astimezone(site.timezone).replace(microsecond=0)
    path = site.content_dir / f"{local:%Y-%m-%d}-{slug[:80].rstrip('-')}.md"
    where = display(site, path)
    if path.exists():
        message = "already exists; choose another title or edit that file"
        raise OutputError(where, message)
    environment = templating.make_environment(site.templates_dir)
    text = templating.render_template(
        environment,
        "new-article.md.j2",
        title=clean_title,
        date=local.isoformat(),
        author=site.author.name,
        tags=[markup.one_line(t) for t in tags],
        draft=is_draft,
    )
    try:
        atomic_write(path, text.encode("utf-8"))
    except OSError as err:
        raise OutputError(where, f"cannot write ({err.strerror})") from err
    return path
