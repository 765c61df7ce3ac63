"""The build pipeline, the one place that knows its order: index → plan → render → write.

`build` first asks whether anything can have changed: the same files with the
same sizes and mtimes, the same settings, no scheduled article come due and
every output file as it was left (a file modified just before the last scan
is read again and its bytes compared). Then it answers from the store without
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from publisher import templating, version
from publisher.config import SiteConfig
from publisher.content import files
from publisher.content.files import FoundFile
from publisher.content.scan import (
    IndexResult,
    Scan,
    content_files,
    content_where,
    is_racy,
    problem_from_row,
)
from publisher.errors import ConfigError, ContentError, OutputError
from publisher.model import BuildReport, ContentProblem, DigestIssue, PageWrites
from publisher.output import atomic_write, left_as
from publisher.pages import assets
from publisher.store import ArticleKey, Store, open_store, settings
from publisher.store.settings import INDEXED_AT
from publisher.text import one_line, slugify
from publisher.version import __version__

if TYPE_CHECKING:
    from publisher.feeds.write import FeedWrites

# The feeds' and pages' writers, and what they import, are imported where a build
# writes: the quick path, which answers from the store, never needs them (15-20 ms).

logger = logging.getLogger(__name__)


# -- check ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckReport:
    checked: int
    problems: tuple[ContentProblem, ...]
    warnings: tuple[str, ...] = ()


def check(site: SiteConfig) -> CheckReport:
    """Parse every article afresh, write nothing, and report every problem."""
    from publisher.content import articles
    from publisher.content.indexing import defaults_for

    defaults = defaults_for(site)
    problems: list[ContentProblem] = []
    warnings: list[str] = []
    owners: dict[str, str] = {}
    found = content_files(site).files
    for item in found:
        where = site.display(item.path)
        try:
            data, _size, _mtime = files.read_article(item.path, where)
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
    scan = content_files(site, with_stat=site.state_url is not None or site.state_db.exists())
    with open_store(site.state) as store:
        unchanged = _unchanged_report(site, store, scan, now=now)
        if unchanged is not None:
            return unchanged
        rows = store.files()
        # Only now the parsing (YAML, Markdown) and worker modules: not for the quick path.
        from publisher.content.indexing import index_content

        with store.bulk_transaction():
            # Until this build completes, the next one may not take the quick path:
            # "counts" is written back only at the end.
            store.delete_setting(settings.COUNTS)
            index = index_content(site, store, scan, now=now, rows=rows)
        keys = store.article_keys()
        writes = _write_feeds(site, store, keys, now=now)
        pages = write_site_pages(site, store, keys, now=now)
        counts = _counts(keys, now=now)
        _record_build(site, store, keys, counts, writes, now=now)
    index.warnings += pages.warnings
    return _report(counts, index, writes.written, writes.unchanged, writes.removed, pages.writes)


@dataclass(frozen=True, slots=True)
class SitePages:
    writes: PageWrites | None  # None when the site has no pages
    warnings: tuple[str, ...] = ()


def write_site_pages(
    site: SiteConfig, store: Store, keys: Sequence[ArticleKey] | None = None, *, now: datetime
) -> SitePages:
    """Bring the site folder in line with the store: the pages whose inputs changed.

    Called by the build, and by the digest pipeline once it has made a digest
    (its page must exist before any message links to it).

    :raises OutputError: when the site folder cannot be written.
    :raises TemplateError: for a page template that fails.
    """
    from publisher.pages import memo
    from publisher.pages import write as pages_write

    if not site.pages.enabled:
        removed = pages_write.remove_pages(site, store)
        with store.transaction():
            store.set_setting(settings.PAGES, _PAGES_OFF)
        return SitePages(None if not removed.removed else removed)
    from publisher.content import bodies

    keys = store.article_keys() if keys is None else keys
    digests = _with_audiences(site, store.digest_issues())
    statics = assets.static_files(site.pages.static_dir)
    fingerprint = _pages_fingerprint(site)  # reads every page template: once a build
    signed = memo.signed_plan(
        site, keys, digests, now=now, statics=statics, fingerprint=fingerprint
    )
    writes = pages_write.write_pages(
        site, store, signed, digests, bodies=bodies.BodyCache(site, store)
    )
    with store.transaction():
        store.set_setting(settings.PAGES, _pages_state(site, store, statics, fingerprint))
    return SitePages(writes, signed.plan.warnings)


def _with_audiences(site: SiteConfig, issues: Sequence[DigestIssue]) -> list[DigestIssue]:
    """Where subscribers choose, each digest's page says for whom it was (its segment)."""
    if not site.offers_choices:
        return list(issues)
    from publisher.mail.segments import segment_from_key

    return [
        replace(issue, audience=segment_from_key(site, issue.segment).describe(site))
        for issue in issues
    ]


def _write_feeds(
    site: SiteConfig, store: Store, keys: Sequence[ArticleKey], *, now: datetime
) -> FeedWrites:
    from publisher.content import bodies
    from publisher.feeds import plan
    from publisher.feeds.plan import FeedPlan
    from publisher.feeds.write import write_feeds

    return write_feeds(
        site,
        store,
        [FeedPlan(spec, items) for spec, items in plan.plan(site, keys, now=now)],
        {key.id: key.version for key in keys},
        fingerprint=_render_fingerprint(site),
        bodies=bodies.BodyCache(site, store),
    )


def _record_build(
    site: SiteConfig,
    store: Store,
    keys: Sequence[ArticleKey],
    counts: Mapping[str, int],
    writes: FeedWrites,
    *,
    now: datetime,
) -> None:
    """What the next build's quick path and `status` read: only once everything is written."""
    upcoming = [key.date for key in keys if not key.is_draft and key.date > now]
    with store.transaction():
        store.set_setting(settings.RENDER, _render_fingerprint(site))
        store.set_setting(settings.COUNTS, json.dumps(counts))
        store.set_setting(settings.NEXT_DUE, min(upcoming).isoformat() if upcoming else "")
        store.set_setting(settings.LAST_BUILD, now.isoformat())
        if site.feeds.websub_hub and writes.changed_urls:
            # Sent by the caller once the site lock is released (feeds.websub):
            # a slow hub must never hold up the build or the lock.
            store.queue_pings(writes.changed_urls, now=now)


def _report(
    counts: Mapping[str, int],
    index: IndexResult,
    written: Sequence[str],
    unchanged: Sequence[str],
    removed: Sequence[str],
    pages: PageWrites | None,
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
        pages=pages,
    )


def _counts(keys: Sequence[ArticleKey], *, now: datetime) -> dict[str, int]:
    published = sum(1 for a in keys if a.is_published(now))
    drafts = sum(1 for a in keys if a.is_draft)
    return {
        "loaded": len(keys),
        "published": published,
        "drafts": drafts,
        "scheduled": len(keys) - published - drafts,
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
        version.RENDER_RULES,
    )
    return hashlib.sha256(repr(shape).encode()).hexdigest()


_PAGES_OFF = "off"


def _pages_fingerprint(site: SiteConfig) -> str:
    """Everything besides the articles and digests that shapes the pages' bytes."""
    shape = (
        _render_fingerprint(site),
        site.timezone.key,
        site.permalink,
        site.pages,
        site.web,
        # The sign-up form's choices (pages.layout.choices).
        (site.topics, site.digest.cadence, site.digest.cadences, site.digest.max_per_day),
        templating.templates_fingerprint(site.templates_dir, "pages"),
    )
    return hashlib.sha256(repr(shape).encode()).hexdigest()


def _pages_state(
    site: SiteConfig,
    store: Store,
    statics: Sequence[assets.StaticFile] | None = None,
    fingerprint: str | None = None,
) -> str:
    """What the pages were made from besides the articles (the settings and templates, the
    latest digest, the static folder's stats): compared by the quick path, which computes
    what a build hands in."""
    if not site.pages.enabled:
        return _PAGES_OFF
    if statics is None:
        statics = assets.static_files(site.pages.static_dir)
    if fingerprint is None:
        fingerprint = _pages_fingerprint(site)
    folder = hashlib.sha256(repr(statics).encode()).hexdigest()
    return f"{fingerprint} {store.latest_digest_id() or 0} {folder}"


# -- the quick path -----------------------------------------------------------------


def _unchanged_report(
    site: SiteConfig,
    store: Store,
    scan: Scan,
    *,
    now: datetime,
) -> BuildReport | None:
    """The last build's report if nothing can have changed since, else None.

    Reads only the store and the file system's stat data, and the few files
    modified just before the last scan: nothing is parsed, rendered or
    written but the time of this scan, when those files were read again.
    """
    counts_json = store.get_setting(settings.COUNTS)
    if counts_json is None or not _settings_unchanged(site, store, now=now):
        return None
    racy = _racy_files(scan.files, store.file_stats(), store.get_setting(INDEXED_AT))
    if racy is None or not _same_bytes(site, store, racy):
        return None
    outputs = store.output_stats()
    if not outputs or not _outputs_intact(site.output_dir, outputs):
        return None
    page_outputs = store.page_output_stats()
    if store.get_setting(settings.PAGES) != _pages_state(site, store) or not _outputs_intact(
        site.site_dir, page_outputs
    ):
        return None
    if racy:  # read again after this scan started: the next build need not read them
        with store.transaction():
            store.set_setting(INDEXED_AT, str(scan.started_ns))
    pages = PageWrites(unchanged=len(page_outputs)) if site.pages.enabled else None
    root = site.display(site.output_dir)
    index = IndexResult()
    index.problems = [problem_from_row(site, row) for row in store.problem_files()]
    unchanged = [f"{root}/{path}" for path, _, _ in outputs]
    return _report(json.loads(counts_json), index, (), unchanged, (), pages)


def _settings_unchanged(site: SiteConfig, store: Store, *, now: datetime) -> bool:
    """The same settings as the last build, and no scheduled article come due since."""
    if store.get_setting(settings.RENDER) != _render_fingerprint(site):
        return False
    if store.get_setting(settings.CONFIG) != site.fingerprint():
        return False
    next_due = store.get_setting(settings.NEXT_DUE)
    return not next_due or datetime.fromisoformat(next_due) > now


def _racy_files(
    found: Sequence[FoundFile], stats: set[tuple[str, int, int]], indexed_at: str | None
) -> list[FoundFile] | None:
    """The files modified near the last scan, when the files and their stats are the same
    (*stats*: the manifest's); else None.

    Such a file may have changed since without its stat showing it (see
    content.scan.RACY_WINDOW_NS): an edit saved just before a build leaves
    its file so for the next build, which must look at its bytes.
    """
    if len(stats) != len(found) or stats != {(f.relative, f.size, f.mtime_ns) for f in found}:
        return None
    if indexed_at is None:
        return None
    return [f for f in found if is_racy(f.mtime_ns, indexed_at)]


def _same_bytes(site: SiteConfig, store: Store, racy: Sequence[FoundFile]) -> bool:
    """Whether each of *racy* holds, at the stat the scan saw, the bytes the manifest
    hashed."""
    if not racy:
        return True
    rows = store.files_for(f.relative for f in racy)
    for item in racy:
        row = rows.get(item.relative)
        try:
            path = os.path.join(item.root, item.relative)
            data, size, mtime_ns = files.read_article(path, content_where(site, item.relative))
        except ContentError:
            return False  # the full build says why
        if row is None or (size, mtime_ns) != (item.size, item.mtime_ns):
            return False
        if hashlib.sha256(data).hexdigest() != row.file_hash:
            return False
    return True


def _outputs_intact(folder: Path, stats: Iterable[tuple[str, int, int]]) -> bool:
    """Every output file as the last build left it (*stats*: its path, size and mtime then):
    nobody, and no killed build, touched it."""
    root = f"{folder}/"
    return all(left_as(root + path, size, mtime_ns) for path, size, mtime_ns in stats)


# -- new ---------------------------------------------------------------------------


def new_article(
    site: SiteConfig, title: str, *, now: datetime, tags: Sequence[str] = (), is_draft: bool = True
) -> Path:
    """Create content/<date>-<slug>.md from the new-article template.

    :raises ConfigError: for a title with nothing to make a slug from.
    :raises OutputError: when the file exists already or cannot be written.
    """

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
