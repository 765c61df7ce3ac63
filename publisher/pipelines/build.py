"""The one place that knows the order of stages: index → plan → render → write.

`build` first asks whether anything can have changed: the same files with the
same sizes and mtimes, the same settings, no scheduled article come due and
every output file as it was left. Then it answers from the store without
parsing, rendering or importing the feed libraries. Otherwise it indexes
what changed, and renders only the feeds whose items changed, with Markdown
rendered only for articles that appear in some feed (and cached).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar
from urllib.parse import quote

from publisher import __version__, parallel
from publisher.config import SiteConfig
from publisher.content import articles, markup
from publisher.content.indexing import (
    IndexResult,
    content_files,
    defaults_for,
    index_content,
    is_racy,
    problem_from_row,
)
from publisher.errors import ConfigError, ContentError, OutputError
from publisher.feeds import render
from publisher.model import Article, BuildReport, ContentProblem, FeedItem, FeedSpec, Tag
from publisher.output import OutputWriter
from publisher.store import ArticleKey, FileRow, OutputRow, Store, open_store, settings
from publisher.store.settings import INDEXED_AT
from publisher.text import one_line, slugify

__all__ = [
    "build",
    "check",
    "content_files",
    "index_content",
    "new_article",
    "plan_feeds",
]

logger = logging.getLogger(__name__)


# -- check ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckReport:
    checked: int
    problems: tuple[ContentProblem, ...]
    warnings: tuple[str, ...] = ()


def check(site: SiteConfig) -> CheckReport:
    """Parse every article afresh, write nothing, and report every problem."""
    defaults = defaults_for(site)
    problems: list[ContentProblem] = []
    warnings: list[str] = []
    owners: dict[str, str] = {}
    found = content_files(site).files
    for item in found:
        where = site.display(item.path)
        try:
            data, _size, _mtime = articles.read_article(item.path, where)
            parsed = articles.parse_article(where, item.relative, data, defaults)
        except ContentError as err:
            problems.append(ContentProblem(where, tuple(err.lines())))
            continue
        warnings += parsed.warnings
        if parsed.explicit_id is not None:
            owner = owners.setdefault(parsed.explicit_id, where)
            if owner != where:
                line = f"{where}: id: {parsed.explicit_id!r} is already used by {owner}"
                problems.append(ContentProblem(where, (line,)))
    return CheckReport(len(found), tuple(problems), tuple(warnings))


# -- build -----------------------------------------------------------------------


def build(site: SiteConfig, *, now: datetime) -> BuildReport:
    """Bring the output folder in line with the content folder.

    :raises PublisherError: for a missing content folder, an unusable store or
        an unwritable output folder. Bad articles are reported, never raised.
    """
    # With no state yet every file is read: their stats would be thrown away.
    scan = content_files(site, with_stat=(site.state_db).exists())
    with open_store(site.state_db) as store:
        rows = store.files()
        unchanged = _unchanged_report(site, store, scan.files, rows, now=now)
        if unchanged is not None:
            return unchanged
        with store.transaction():
            # Until this build completes, the next one may not take the quick path:
            # "counts" is written back only at the end.
            store.delete_setting(settings.COUNTS)
            index = index_content(site, store, scan, now=now, rows=rows)
        keys = store.article_keys()
        versions = {key.id: key.version for key in keys}
        planned = _plan(site, keys, now=now)
        # Full records only for the articles that appear in some feed.
        full = store.articles(key.id for _spec, items in planned for key in items)
        plans = [FeedPlan(spec, tuple(full[key.id] for key in items)) for spec, items in planned]
        written, unchanged_paths, removed, changed_urls = _write_feeds(site, store, plans, versions)
        counts = _counts(keys, now=now)
        upcoming = [key.date for key in keys if not key.is_draft and key.date > now]
        with store.transaction():
            store.set_setting(settings.RENDER, _render_fingerprint(site))
            store.set_setting(settings.COUNTS, json.dumps(counts))
            store.set_setting(settings.NEXT_DUE, min(upcoming).isoformat() if upcoming else "")
            store.set_setting(settings.LAST_BUILD, now.isoformat())
            if site.feeds.websub_hub and changed_urls:
                # Sent by the caller once the site lock is released (feeds.websub):
                # a slow hub must never hold up the build or the lock.
                store.queue_pings(changed_urls, now=now)
    return _report(counts, index, written, unchanged_paths, removed)


def _report(
    counts: Mapping[str, int],
    index: IndexResult,
    written: Sequence[str],
    unchanged: Sequence[str],
    removed: Sequence[str],
) -> BuildReport:
    return BuildReport(
        loaded=counts["loaded"],
        published=counts["published"],
        drafts=counts["drafts"],
        scheduled=counts["scheduled"],
        problems=tuple(index.problems),
        written=tuple(written),
        unchanged=tuple(unchanged),
        removed=tuple(removed),
        parsed=index.parsed,
        warnings=tuple(index.warnings),
    )


def _counts(articles: Sequence[ArticleKey], *, now: datetime) -> dict[str, int]:
    published = sum(1 for a in articles if a.is_published(now))
    drafts = sum(1 for a in articles if a.is_draft)
    return {
        "loaded": len(articles),
        "published": published,
        "drafts": drafts,
        "scheduled": len(articles) - published - drafts,
    }


def _render_fingerprint(site: SiteConfig) -> str:
    """Everything besides the articles that shapes the feeds' bytes."""
    shape = (
        site.title,
        site.description,
        site.base_url,
        site.language,
        site.author,
        site.feeds,
        str(site.output_dir),
        __version__,
        markup.RENDER_RULES,
    )
    return hashlib.sha256(repr(shape).encode()).hexdigest()


def _unchanged_report(
    site: SiteConfig,
    store: Store,
    found: Sequence[articles.FoundFile],
    rows: Mapping[str, FileRow],
    *,
    now: datetime,
) -> BuildReport | None:
    """The last build's report if nothing can have changed since, else None.

    Reads only the store and the file system's stat data: nothing is parsed,
    rendered or written.
    """
    counts_json = store.get_setting(settings.COUNTS)
    if counts_json is None or store.get_setting(settings.RENDER) != _render_fingerprint(site):
        return None
    if store.get_setting(settings.CONFIG) != site.fingerprint():
        return None
    next_due = store.get_setting(settings.NEXT_DUE)
    if next_due and datetime.fromisoformat(next_due) <= now:
        return None  # a scheduled article has come due
    if len(rows) != len(found):
        return None
    indexed_at = store.get_setting(INDEXED_AT)
    for item in found:
        row = rows.get(item.relative)
        if row is None or row.size != item.size or row.mtime_ns != item.mtime_ns:
            return None
        if is_racy(row, indexed_at):
            return None  # it may have changed since without its stat showing it
    outputs = store.outputs()
    if not outputs:
        return None
    for relative, output in outputs.items():
        try:
            stat = os.stat(site.output_dir / relative)
        except OSError:
            return None
        if stat.st_size != output.size or stat.st_mtime_ns != output.mtime_ns:
            return None  # someone (or a killed build) touched the output
    root = site.display(site.output_dir)
    index = IndexResult()
    index.problems = [
        problem_from_row(site, row)
        for row in sorted(rows.values(), key=lambda r: r.path)
        if row.problem
    ]
    return _report(json.loads(counts_json), index, (), [f"{root}/{p}" for p in outputs], ())


# -- plan, render and write -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedPlan:
    spec: FeedSpec
    articles: tuple[Article, ...]


class _Plannable(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def date(self) -> datetime: ...
    @property
    def tags(self) -> tuple[Tag, ...]: ...
    def is_published(self, now: datetime) -> bool: ...


_Item = TypeVar("_Item", bound=_Plannable)


def plan_feeds(site: SiteConfig, articles: Iterable[Article], *, now: datetime) -> list[FeedPlan]:
    """Which articles go into which feed: newest first, at most max_items each."""
    return [FeedPlan(spec, items) for spec, items in _plan(site, articles, now=now)]


def _plan(
    site: SiteConfig, articles: Iterable[_Item], *, now: datetime
) -> list[tuple[FeedSpec, tuple[_Item, ...]]]:
    published = sorted(
        (a for a in articles if a.is_published(now)), key=attrgetter("date", "id"), reverse=True
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
        hub=site.feeds.websub_hub,
    )
    plans = [(base, tuple(published[:limit]))]
    if site.feeds.tag_feeds:
        by_tag: dict[str, list[_Item]] = {}
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
                folder_url=f"{site.feeds.url}tags/{quote(slug)}/",
                folder=f"tags/{slug}",
                tag=tag,
            )
            plans.append((spec, tuple(by_tag[slug][:limit])))
    return plans


def _signature(site: SiteConfig, plan: FeedPlan, versions: Mapping[str, str]) -> str:
    """Changes when anything that goes into this feed's bytes changes."""
    digest = hashlib.sha256(_render_fingerprint(site).encode())
    digest.update(repr(plan.spec).encode())
    for article in plan.articles:
        digest.update(f"\0{article.id}\0{versions.get(article.id, '')}".encode())
    return digest.hexdigest()


def _write_feeds(
    site: SiteConfig, store: Store, plans: Sequence[FeedPlan], versions: Mapping[str, str]
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Render and write the feeds whose items changed; remove the ones no longer made.

    :returns: written, unchanged and removed paths (for messages), and the public
        URLs of the feeds that changed (for WebSub).
    """
    writer = OutputWriter(site.output_dir, display_root=site.display(site.output_dir))
    writer.ensure_root()
    previous = store.outputs()
    outputs: dict[str, OutputRow] = {}
    written: list[str] = []
    unchanged: list[str] = []
    changed_urls: list[str] = []
    # Which files need rendering: those whose inputs changed or that were touched.
    jobs: list[tuple[FeedPlan, str, str, str]] = []  # plan, format, path, signature
    for plan in plans:
        signature = _signature(site, plan, versions)
        for fmt in site.feeds.formats:
            relative = f"{plan.spec.folder}/{render.FEED_FILES[fmt]}".lstrip("/")
            old = previous.get(relative)
            if old is not None and old.signature == signature and _is_intact(site, relative, old):
                outputs[relative] = old
                unchanged.append(writer.where(relative))
            else:
                jobs.append((plan, fmt, relative, signature))
    html: dict[str, str] = {}
    if site.feeds.full_content and jobs:
        html = _html_for(site, store, (a for plan, *_ in jobs for a in plan.articles))
    results = _render_and_write(
        [
            _FeedJob(
                writer,
                fmt,
                plan.spec,
                [FeedItem(a, html.get(a.id)) for a in plan.articles],
                relative,
                signature,
            )
            for plan, fmt, relative, signature in jobs
        ]
    )
    try:
        for (plan, fmt, relative, _sig), (is_written, row) in zip(jobs, results, strict=True):
            if is_written:
                written.append(writer.where(relative))
                changed_urls.append(plan.spec.url(render.FEED_FILES[fmt]))
            else:
                unchanged.append(writer.where(relative))
            outputs[relative] = row
    finally:
        # What was written is recorded even if a later write fails, so the
        # next build compares against the truth.
        if outputs:
            with store.transaction():
                store.update_outputs(outputs)
    removed: list[str] = []
    for relative in sorted(set(previous) - set(outputs)):
        if writer.remove(relative):
            removed.append(writer.where(relative))
    if previous.keys() - outputs.keys():
        with store.transaction():
            store.delete_outputs(previous.keys() - outputs.keys())
    return written, unchanged, removed, changed_urls


class _FeedJob(NamedTuple):
    writer: OutputWriter
    fmt: str
    spec: FeedSpec
    items: list[FeedItem]
    relative: str
    signature: str


# A cold build of a big site renders ~100 feed files: worth two cores.
PARALLEL_RENDER_THRESHOLD = 40


def _render_and_write(jobs: Sequence[_FeedJob]) -> Iterator[tuple[bool, OutputRow]]:
    """Render and write each feed file (on several cores for a big batch), in order.

    Workers write the files themselves: sending ~30 MB of feeds back to be
    written here cost more than rendering them on two cores saved.

    :returns: for each job, whether the file was written and its output row.
    """
    if jobs:
        render.preload()
    return parallel.forked_map(_render_job, jobs, threshold=PARALLEL_RENDER_THRESHOLD, chunk=4)


def _render_job(job: _FeedJob) -> tuple[bool, OutputRow]:
    data = render.render(job.fmt, job.spec, job.items)
    is_written = job.writer.write_if_changed(job.relative, data)
    stat = job.writer.target(job.relative).stat()
    digest = hashlib.sha256(data).hexdigest()
    return is_written, OutputRow(digest, stat.st_size, stat.st_mtime_ns, job.signature)


def _is_intact(site: SiteConfig, relative: str, row: OutputRow) -> bool:
    try:
        stat = os.stat(site.output_dir / relative)
    except OSError:
        return False
    return stat.st_size == row.size and stat.st_mtime_ns == row.mtime_ns


# Rendering one article's Markdown and cleaning it costs ~0.3 ms: a cold build
# renders the ~1,000 articles its feeds show, worth two cores from this many.
PARALLEL_HTML_THRESHOLD = 200


def _html_for(site: SiteConfig, store: Store, articles: Iterable[Article]) -> dict[str, str]:
    """Rendered bodies of *articles*: from the cache when still fresh, else from their files.

    The cache key is the article's text hash and link (links are made absolute
    against it). A file is rendered only while it still holds the version the
    store has (same bytes as when it was indexed); otherwise the last HTML
    rendered stays, and an article never rendered before goes out with its
    summary only (logged).
    """
    needed = {article.id: article for article in articles}
    files = store.files_for(article.path for article in needed.values())
    text_hashes = store.text_hashes(needed)
    html: dict[str, str] = {}
    stale: list[tuple[str, str | None, str]] = []  # id, cached HTML, cache key
    jobs: list[tuple[str, str, str, str]] = []  # file, its indexed hash, body format, base URL
    for article_id, body_format, cached, cached_key in store.cached_html(sorted(needed)):
        article = needed[article_id]
        key = _html_key(article.link, text_hashes.get(article_id))
        if cached is not None and cached_key == key:
            html[article_id] = cached
            continue
        row = files.get(article.path)
        is_current = row is not None and not row.problem and row.article_id == article_id
        file_path = str(site.content_dir / row.path) if is_current and row is not None else ""
        stale.append((article_id, cached, key))
        jobs.append((file_path, row.file_hash if row else "", body_format, article.link))
    rendered = parallel.forked_map(
        _render_current, jobs, threshold=PARALLEL_HTML_THRESHOLD, chunk=16
    )
    fresh: list[tuple[str, str, str]] = []
    for (article_id, cached, key), body_html in zip(stale, rendered, strict=True):
        if body_html is not None:
            html[article_id] = body_html
            fresh.append((article_id, body_html, key))
        elif cached is not None:
            html[article_id] = cached  # the last good version
        else:
            path = needed[article_id].path
            logger.warning("%s: cannot render its last good version; summary only", path)
    if fresh:
        with store.transaction():
            for article_id, body_html, key in fresh:
                store.save_html(article_id, body_html, key)
    return html


def _html_key(link: str, text_hash: str | None) -> str:
    """What an article's cached HTML was made from: links are made absolute against *link*."""
    return hashlib.sha256(f"{markup.RENDER_RULES}\0{link}\0{text_hash}".encode()).hexdigest()


def _render_current(job: tuple[str, str, str, str]) -> str | None:
    """An article file's body as HTML, if the file still holds the indexed version.

    An empty path means the store has no current file for the article.
    """
    path, file_hash, body_format, base_url = job
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != file_hash:
        return None  # changed since it was indexed: the next build picks it up
    return markup.render_body(articles.body_of(data), body_format=body_format, base_url=base_url)


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

    clean_title = one_line(title)
    slug = slugify(clean_title)
    if not slug:
        where = "TITLE"
        message = f"{title!r} has no letters or digits to make a file name from"
        raise ConfigError(where, message)
    local = now.astimezone(site.timezone).replace(microsecond=0)
    path = site.content_dir / f"{local:%Y-%m-%d}-{slug[:80].rstrip('-')}.md"
    where = site.display(path)
    if path.exists():
        message = "already exists; choose another title or edit that file"
        raise OutputError(where, message)
    environment = templating.make_environment(site.templates_dir)
    text = templating.render_template(
        environment,
        "new-article.md.j2",
        # Random, not name-based: identity must not rest on a title or path.
        id=uuid.uuid4().urn,
        title=clean_title,
        date=local.isoformat(),
        author=site.author.name,
        tags=[one_line(t) for t in tags],
        draft=is_draft,
    )
    try:
        atomic_write(path, text.encode("utf-8"))
    except OSError as err:
        raise OutputError(where, f"cannot write ({err.strerror})") from err
    return path
