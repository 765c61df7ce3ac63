"""Writing the feed files: only those whose inputs changed, and removing those no longer made.

Each file's signature (what went into its bytes) and stat are kept in the
store, so a file whose inputs did not change and that nobody touched is
neither rendered nor read. The HTML of the articles shown comes from the
caller (the content stage renders and caches it), for the files that need it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from publisher import parallel
from publisher.config import SiteConfig
from publisher.feeds import render
from publisher.feeds.plan import FeedPlan, signature
from publisher.model import Article, FeedItem, FeedSpec
from publisher.output import OutputWriter, left_as
from publisher.store import OutputRow, Store

# A cold build of a big site renders ~100 feed files: worth two cores.
PARALLEL_RENDER_THRESHOLD = 40

HtmlFor = Callable[[Iterable[Article]], dict[str, str]]


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


class _RenderJob(NamedTuple):
    writer: OutputWriter
    fmt: str
    spec: FeedSpec
    items: list[FeedItem]
    relative: str
    signature: str


def write_feeds(
    site: SiteConfig,
    store: Store,
    plans: Sequence[FeedPlan],
    versions: Mapping[str, str],
    *,
    fingerprint: str,
    html_for: HtmlFor,
) -> FeedWrites:
    """Render and write the feeds whose items changed; remove the ones no longer made.

    :raises OutputError: when the output folder cannot be written.
    """
    feeds = _FeedFiles(site, store)
    jobs = feeds.stale(plans, versions, fingerprint)
    html: dict[str, str] = {}
    if site.feeds.full_content and jobs:
        html = html_for(a for job in jobs for a in job.plan.articles)
    feeds.write(jobs, html)
    feeds.remove_the_rest()
    return feeds.done


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
                relative = f"{plan.spec.folder}/{render.FEED_FILES[fmt]}".lstrip("/")
                old = self.previous.get(relative)
                if old is not None and old.signature == plan_signature and self._intact(relative):
                    self.outputs[relative] = old
                    self.done.unchanged.append(self.writer.where(relative))
                else:
                    jobs.append(_Job(plan, fmt, relative, plan_signature))
        return jobs

    def write(self, jobs: Sequence[_Job], html: Mapping[str, str]) -> None:
        renders = [
            _RenderJob(
                self.writer,
                job.fmt,
                job.plan.spec,
                [FeedItem(a, html.get(a.id)) for a in job.plan.articles],
                job.relative,
                job.signature,
            )
            for job in jobs
        ]
        try:
            for job, (is_written, row) in zip(jobs, _render_and_write(renders), strict=True):
                where = self.writer.where(job.relative)
                if is_written:
                    self.done.written.append(where)
                    self.done.changed_urls.append(job.plan.spec.url(render.FEED_FILES[job.fmt]))
                else:
                    self.done.unchanged.append(where)
                self.outputs[job.relative] = row
        finally:
            # What was written is recorded even if a later write fails, so the
            # next build compares against the truth.
            if self.outputs:
                with self.store.transaction():
                    self.store.update_outputs(self.outputs)

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


def _render_and_write(jobs: Sequence[_RenderJob]) -> Iterator[tuple[bool, OutputRow]]:
    """Render and write each feed file (on several cores for a big batch), in order.

    Workers write the files themselves: sending ~30 MB of feeds back to be
    written here cost more than rendering them on two cores saved.

    :returns: for each job, whether the file was written and its output row.
    """
    if jobs:
        render.preload()
    return parallel.forked_map(_render_job, jobs, threshold=PARALLEL_RENDER_THRESHOLD, chunk=4)


def _render_job(job: _RenderJob) -> tuple[bool, OutputRow]:
    data = render.render(job.fmt, job.spec, job.items)
    is_written = job.writer.write_if_changed(job.relative, data)
    stat = job.writer.target(job.relative).stat()
    digest = hashlib.sha256(data).hexdigest()
    return is_written, OutputRow(digest, stat.st_size, stat.st_mtime_ns, job.signature)
