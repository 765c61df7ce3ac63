"""Writing the feed files: only those whose inputs changed, and removing those no longer made.

Each file's signature (what went into its bytes) and stat are kept in the
store, so a file whose inputs did not change and that nobody touched is
neither rendered nor read. A feed is assembled from its items' entries, and
an entry depends on its article alone: each is rendered once per format for
every feed that shows it, and kept in the store, so that after one edit only
that article's entries are rendered. The HTML of the articles comes from the
caller's cache (the content stage's); a body not cached is rendered by the
worker that renders its entries, and handed back to be cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from publisher import parallel
from publisher.config import SiteConfig
from publisher.errors import OutputError
from publisher.feeds import render
from publisher.feeds.plan import FeedPlan, signature
from publisher.model import FEED_FILES, Article, Bodies, FeedItem
from publisher.output import OutputWriter, Staged, commit_staged, left_as, sync_tree
from publisher.store import OutputRow, Store

# A cold build of a big site renders ~1,000 articles' entries: worth two cores.
PARALLEL_RENDER_THRESHOLD = 200
ENTRY_CHUNK = 25  # articles whose entries are rendered in one feed (the channel's cost shared)
SAVE_BATCH = 600  # entries stored in one transaction

Entries = dict[tuple[str, str], bytes]  # (article id, format) -> the entry's bytes


class FeedWrites(NamedTuple):
    """What a build did to the feed files: paths for messages, URLs for WebSub."""

    written: list[str]
    unchanged: list[str]
    removed: list[str]
    changed_urls: list[str]


class _Job(NamedTuple):
    plan: FeedPlan
    fmt: str
    relative: str
    signature: str


def write_feeds(
    site: SiteConfig,
    store: Store,
    plans: Sequence[FeedPlan],
    versions: Mapping[str, str],
    *,
    fingerprint: str,
    bodies: Bodies,
) -> FeedWrites:
    """Render and write the feeds whose items changed; remove the ones no longer made.

    :raises OutputError: when the output folder cannot be written.
    """
    feeds = _FeedFiles(site, store)
    jobs = feeds.stale(plans, versions, fingerprint)
    if jobs:
        # Full records only for the articles that the stale feeds show.
        shown = store.articles({item.id for job in jobs for item in job.plan.items})
        entries = _entries(site, store, jobs, shown, versions, fingerprint, bodies)
        feeds.write(jobs, shown, entries)
    with store.transaction():
        store.keep_feed_entries(item.id for p in plans for item in p.items)
    feeds.remove_the_rest()
    return feeds.done


def entry_signature(fingerprint: str, version: str) -> str:
    """Changes when anything that goes into an article's entries changes."""
    return hashlib.sha256(f"{fingerprint}\0{version}".encode()).hexdigest()


def _entries(
    site: SiteConfig,
    store: Store,
    jobs: Sequence[_Job],
    shown: Mapping[str, Article],
    versions: Mapping[str, str],
    fingerprint: str,
    bodies: Bodies,
) -> Entries:
    """Every entry the stale feeds show (*shown*): from the store, or rendered (and then
    stored)."""
    formats = tuple(sorted({job.fmt for job in jobs}))
    signatures = {i: entry_signature(fingerprint, versions.get(i, "")) for i in shown}
    entries = {
        key: data
        for key, (entry_signature_, data) in store.feed_entries(shown).items()
        if entry_signature_ == signatures[key[0]]
    }
    missing = [a for i, a in shown.items() if any((i, f) not in entries for f in formats)]
    if not missing:
        return entries
    html, to_render = bodies.split(missing) if site.feeds.full_content else ({}, {})
    items = [FeedItem(a, html.get(a.id)) for a in missing]
    tasks = [
        _Task(chunk, formats, [to_render.get(item.article.id) for item in chunk], bodies)
        for chunk in (items[i : i + ENTRY_CHUNK] for i in range(0, len(items), ENTRY_CHUNK))
    ]
    render.preload()
    rendered = parallel.forked_map(
        _render_entries, tasks, threshold=PARALLEL_RENDER_THRESHOLD // ENTRY_CHUNK, chunk=1
    )
    fresh: dict[tuple[str, str], tuple[str, bytes]] = {}
    kept: list[tuple[Any, Any]] = []
    for task, (by_format, chunk_bodies) in zip(tasks, rendered, strict=True):
        pairs = zip(task.jobs, chunk_bodies, strict=True)
        kept += [(job, body) for job, body in pairs if job is not None]
        for fmt, datas in zip(formats, by_format, strict=True):
            for item, data in zip(task.items, datas, strict=True):
                fresh[item.article.id, fmt] = (signatures[item.article.id], data)
                entries[item.article.id, fmt] = data
        if len(fresh) >= SAVE_BATCH:
            _save(store, fresh)
    _save(store, fresh)
    if kept:
        bodies.keep(kept)
    return entries


class _Task(NamedTuple):
    """Some articles' entries to render, with the bodies to render first (None: the item
    has its HTML, or shows its summary)."""

    items: list[FeedItem]
    formats: tuple[str, ...]
    jobs: list[Any]
    bodies: Bodies


def _save(store: Store, fresh: dict[tuple[str, str], tuple[str, bytes]]) -> None:
    """Keep rendered entries for later builds, a batch at a time: a cold build renders
    ~3,000 (20 MB), which one transaction would hold in memory twice over."""
    if fresh:
        with store.transaction():
            store.save_feed_entries(fresh)
        fresh.clear()


def _render_entries(task: _Task) -> tuple[list[list[bytes]], list[Any]]:
    """Each format's entries of the task's items, and the bodies rendered for them."""
    made = [None if job is None else task.bodies.render(job) for job in task.jobs]
    items = [
        item if body is None else FeedItem(item.article, body.html)
        for item, body in zip(task.items, made, strict=True)
    ]
    return [render.render_entries(fmt, items) for fmt in task.formats], made


class _FeedFiles:
    """The output folder's feed files, before and after this build."""

    def __init__(self, site: SiteConfig, store: Store) -> None:
        self.site = site
        self.store = store
        self.writer = OutputWriter(site.output_dir, display_root=site.display(site.output_dir))
        self.writer.ensure_root()
        self.previous = store.outputs()
        self.outputs: dict[str, OutputRow] = {}
        self.done = FeedWrites([], [], [], [])

    def stale(
        self, plans: Sequence[FeedPlan], versions: Mapping[str, str], fingerprint: str
    ) -> list[_Job]:
        """The files to render: those whose inputs changed, or that someone touched."""
        jobs = []
        for plan in plans:
            plan_signature = signature(fingerprint, plan, versions)
            for fmt in self.site.feeds.formats:
                relative = f"{plan.spec.folder}/{FEED_FILES[fmt]}".lstrip("/")
                old = self.previous.get(relative)
                if old is not None and old.signature == plan_signature and self._intact(relative):
                    self.outputs[relative] = old
                    self.done.unchanged.append(self.writer.where(relative))
                else:
                    jobs.append(_Job(plan, fmt, relative, plan_signature))
        return jobs

    def write(self, jobs: Sequence[_Job], shown: Mapping[str, Article], entries: Entries) -> None:
        """Assemble each stale feed from its entries, and put the files in place together.

        The files are staged, made durable with one sync and renamed: a
        killed build leaves each feed old or new, never half of one.
        """
        staged: list[tuple[_Job, str, Staged | None]] = []  # each file's sha256, not its bytes
        try:
            for job in jobs:
                articles = [shown[item.id] for item in job.plan.items]
                data = render.assemble(
                    job.fmt,
                    job.plan.spec,
                    [FeedItem(a, None) for a in articles],  # the feed's dates are the items'
                    [entries[a.id, job.fmt] for a in articles],
                )
                temp = self.writer.stage_if_changed(job.relative, data, pid=os.getpid())
                staged.append((job, hashlib.sha256(data).hexdigest(), temp))
            commit_staged([temp for _, _, temp in staged if temp], self.site.output_dir)
            sync_tree(self.site.output_dir)  # the renames too, before the store says so
        except OSError as err:
            _discard(temp for _, _, temp in staged)
            message = f"cannot write ({err.strerror or err})"
            raise OutputError(self.writer.display_root, message) from err
        except BaseException:
            _discard(temp for _, _, temp in staged)
            raise
        for job, digest, temp in staged:
            self._done(job, digest, is_written=temp is not None)
        with self.store.transaction():
            self.store.update_outputs(self.outputs)

    def _done(self, job: _Job, digest: str, *, is_written: bool) -> None:
        where = self.writer.where(job.relative)
        if is_written:
            self.done.written.append(where)
            self.done.changed_urls.append(job.plan.spec.url(FEED_FILES[job.fmt]))
        else:
            self.done.unchanged.append(where)
        stat = os.stat(self.writer.target(job.relative))
        self.outputs[job.relative] = OutputRow(
            digest, stat.st_size, stat.st_mtime_ns, job.signature
        )

    def remove_the_rest(self) -> None:
        gone = self.previous.keys() - self.outputs.keys()
        for relative in sorted(gone):
            if self.writer.remove(relative):
                self.done.removed.append(self.writer.where(relative))
        if gone:
            with self.store.transaction():
                self.store.delete_outputs(gone)

    def _intact(self, relative: str) -> bool:
        row = self.previous[relative]
        return left_as(self.site.output_dir / relative, row.size, row.mtime_ns)


def _discard(temps: Iterable[Staged | None]) -> None:
    """Remove the temp files of a batch that failed before they were put in place."""
    for temp in temps:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp.temp)
