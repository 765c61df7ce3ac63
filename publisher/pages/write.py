"""Writing the pages: only those whose inputs changed, and removing those no longer made.

As for the feeds, each page's signature and stat are kept in the store, so a
page whose inputs did not change and that nobody touched is neither rendered
nor read. The rest are rendered in batches (for many pages, on workers forked
once for all the batches), each batch's files made durable with one sync and
then renamed into place, while the workers go on with the next: a killed
build leaves old pages or new ones, never half of one. The HTML of the
articles comes from the caller's cache, batch by batch, so that no more
than two batches of bodies are ever in memory; a body
not cached is rendered by the worker that renders its page (the file read
there, the HTML handed back to be cached), not in a round of its own first.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from publisher import parallel
from publisher.config import SiteConfig
from publisher.errors import OutputError
from publisher.model import Article, Bodies, DigestIssue, PageWrites
from publisher.output import OutputWriter, Staged, commit_staged, left_as, sync_tree
from publisher.pages.memo import SignedPlan
from publisher.pages.plan import PageSpec
from publisher.store import OutputRow, Store

if TYPE_CHECKING:
    from publisher.pages.render import PageRenderer

BATCH = 1000  # pages rendered, synced and renamed together
PARALLEL_RENDER_THRESHOLD = 200  # a page renders in ~0.2 ms: worth two cores from this many


class _Shared(NamedTuple):
    """What every page job reads: the workers have it from the fork, not pickled."""

    renderer: PageRenderer
    writer: OutputWriter
    articles: Mapping[str, Article]  # those the pages show, and the articles' neighbours
    bodies: Bodies
    issues: Mapping[str, DigestIssue]  # by number: what the digest archive lists
    pid: int  # the build's: its temp files are named for it, not for a worker


class _Job(NamedTuple):
    """One page to render, as it goes to a worker."""

    page: PageSpec
    html: str | None
    body: Any  # rendered with the page when its HTML is not cached (Bodies.render)
    digest: DigestIssue | None
    signature: str


class _Done(NamedTuple):
    relative: str
    staged: Staged | None  # None: the file already held these bytes
    row: OutputRow
    body: Any  # what Bodies.render made of the job's body, if it had one to render


def write_pages(
    site: SiteConfig,
    store: Store,
    signed: SignedPlan,
    digests: Sequence[DigestIssue],
    *,
    bodies: Bodies,
) -> PageWrites:
    """Render and write the pages whose inputs changed; remove the ones no longer made.

    :raises OutputError: when the site folder cannot be written.
    :raises TemplateError: for a page template that fails.
    """
    pages = _SitePages(site, store)
    stale = pages.stale(signed.plan.pages, signed.signatures)
    if stale:
        from publisher import templating
        from publisher.pages.render import PageRenderer

        environment = templating.make_environment(
            site.templates_dir, reload=False, state_dir=site.state_dir
        )
        renderer = PageRenderer(site, environment)
        renderer.preload()
        pages.render(renderer, stale, digests, bodies)
    pages.remove_the_rest()
    return pages.report()


def remove_pages(site: SiteConfig, store: Store) -> PageWrites:
    """Remove every page earlier builds wrote: the site turned its pages off."""
    pages = _SitePages(site, store)
    pages.remove_the_rest()
    return pages.report()


class _SitePages:
    """The site folder's pages, before and after this build."""

    def __init__(self, site: SiteConfig, store: Store) -> None:
        self.site = site
        self.store = store
        self.writer = OutputWriter(site.site_dir, display_root=site.display(site.site_dir))
        self.previous = store.page_outputs()
        self.root = str(site.site_dir)  # a string: joined and stat-ed 10,000 times
        self.outputs: dict[str, OutputRow] = {}
        self.rendered = 0
        self.written: list[str] = []
        self.unchanged = 0
        self.removed: list[str] = []

    def stale(
        self, pages: Sequence[PageSpec], signatures: Sequence[str]
    ) -> list[tuple[PageSpec, str]]:
        """The pages to render: those whose inputs changed, or that someone touched."""
        stale = []
        for page, page_signature in zip(pages, signatures, strict=True):
            old = self.previous.get(page.path)
            if old is not None and old.signature == page_signature and self._intact(page.path):
                self.outputs[page.path] = old
                self.unchanged += 1
            else:
                stale.append((page, page_signature))
        return stale

    def render(
        self,
        renderer: PageRenderer,
        stale: Sequence[tuple[PageSpec, str]],
        digests: Sequence[DigestIssue],
        bodies: Bodies,
    ) -> None:
        self.writer.ensure_root()
        needed = {i for page, _ in stale for i in (*page.items, page.previous, page.following) if i}
        articles = self.store.articles(needed)
        by_number = {str(d.id): d for d in digests}
        shared = _Shared(renderer, self.writer, articles, bodies, by_number, os.getpid())
        use_workers = len(stale) >= PARALLEL_RENDER_THRESHOLD
        # The batches handed to the workers and not yet in place, with their results.
        pending: list[tuple[Sequence[_Job], Iterator[_Done]]] = []
        try:
            # One pool for every batch: each worker keeps what it made (the lists'
            # cards) and the memory it touched, instead of being forked anew.
            with parallel.forked_pool(
                _render_job, shared, use_workers=use_workers, chunk=16
            ) as render_all:
                for start in range(0, len(stale), BATCH):
                    jobs = self._jobs(stale[start : start + BATCH], shared)
                    # The workers start on this batch now, while the last one is synced,
                    # renamed and its bodies stored here: they never wait for that.
                    pending.append((jobs, render_all(jobs)))
                    if len(pending) > 1:
                        self._commit(*pending[0], bodies)
                        pending.pop(0)
                while pending:
                    self._commit(*pending[0], bodies)
                    pending.pop(0)
        except BaseException:
            for batch, _ in pending:  # what the workers, gone by now, staged and nobody renamed
                self._discard(batch)
            raise
        finally:
            sync_tree(self.site.site_dir)  # the renames too, before the store says so
            self._record(self.outputs)

    @staticmethod
    def _jobs(batch: Sequence[tuple[PageSpec, str]], shared: _Shared) -> list[_Job]:
        """A batch's jobs, with the HTML of its articles: cached, or to be rendered."""
        shown = [shared.articles[p.items[0]] for p, _ in batch if p.kind == "article"]
        html, to_render = shared.bodies.split(shown) if shown else ({}, {})
        return [
            _Job(
                page,
                html.get(page.items[0]) if page.kind == "article" else None,
                to_render.get(page.items[0]) if page.kind == "article" else None,
                shared.issues.get(page.key) if page.kind == "digest" else None,
                page_signature,
            )
            for page, page_signature in batch
        ]

    def _commit(self, jobs: Sequence[_Job], results: Iterator[_Done], bodies: Bodies) -> None:
        """Wait for a batch's pages, put them in place and keep what they rendered."""
        try:
            done = list(results)
            # Each temp file is beside its target, which the worker checked.
            commit_staged([d.staged for d in done if d.staged], self.site.site_dir)
        except OSError as err:
            self._discard(jobs)
            message = f"cannot write ({err.strerror or err})"
            raise OutputError(self.writer.display_root, message) from err
        except BaseException:
            self._discard(jobs)  # a template failed, or the build was stopped
            raise
        pairs = zip(jobs, done, strict=True)
        rendered = [(job.body, item.body) for job, item in pairs if job.body is not None]
        if rendered:
            bodies.keep(rendered)
        self.rendered += len(done)
        for item in done:
            self.outputs[item.relative] = item.row
            if item.staged is None:
                self.unchanged += 1
            else:
                self.written.append(item.relative)

    def _discard(self, jobs: Sequence[_Job]) -> None:
        """Remove what a failed batch staged and never put in place."""
        pid = os.getpid()
        for job in jobs:
            target = self.site.site_dir / job.page.path
            for temp in target.parent.glob(f".{glob.escape(target.name)}.{pid}-*.tmp"):
                with contextlib.suppress(OSError):
                    temp.unlink()

    def remove_the_rest(self) -> None:
        gone = self.previous.keys() - self.outputs.keys()
        for relative in sorted(gone):
            if self.writer.remove(relative):
                self.removed.append(relative)
        if gone:
            with self.store.transaction():
                self.store.delete_page_outputs(gone)

    def report(self) -> PageWrites:
        return PageWrites(self.rendered, tuple(self.written), self.unchanged, tuple(self.removed))

    def _record(self, outputs: Mapping[str, OutputRow]) -> None:
        changed = {p: row for p, row in outputs.items() if self.previous.get(p) != row}
        if changed:
            with self.store.transaction():
                self.store.update_page_outputs(changed)

    def _intact(self, relative: str) -> bool:
        row = self.previous[relative]
        return left_as(f"{self.root}/{relative}", row.size, row.mtime_ns)


def _render_job(shared: _Shared, job: _Job) -> _Done:
    """One page rendered and staged beside its target (not yet in place), with its body's
    HTML first when that was not cached."""
    body = None if job.body is None else shared.bodies.render(job.body)
    html = job.html if body is None else body.html
    data = shared.renderer.render(
        job.page, shared.articles, html=html, digest=job.digest, issues=shared.issues
    )
    staged = shared.writer.stage_if_changed(job.page.path, data, pid=shared.pid)
    stat = os.stat(staged.temp if staged else shared.writer.target(job.page.path))
    digest = hashlib.sha256(data).hexdigest()
    row = OutputRow(digest, stat.st_size, stat.st_mtime_ns, job.signature)
    return _Done(job.page.path, staged, row, body)
