"""Articles' bodies as HTML, for the feeds and pages that show them: rendered once, kept
in the store.

Markdown is rendered only for articles a feed shows in full or a page shows,
by the worker that renders that entry or page (`render_body` reads the file
there), and each result is cached by what it was made from (the rendering
rules, the text, the link relative URLs are resolved against).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from publisher import version
from publisher.config import SiteConfig
from publisher.content import markup
from publisher.content.articles import body_of
from publisher.model import Article
from publisher.store import Store

logger = logging.getLogger(__name__)


class BodyJob(NamedTuple):
    """One body to render from its file (on any process), and what the cache keeps of it."""

    article_id: str
    file: str  # the article's content file; "" when the store has no current one
    file_hash: str  # the bytes it was indexed with
    body_format: str
    link: str  # relative links are made absolute against it
    cached: str | None  # the last HTML rendered from it: its last good version
    key: str  # what new HTML is made from (html_key)
    where: str  # the article's path, as a warning names it


class Body(NamedTuple):
    """A body as rendered for a page or feed."""

    html: str | None  # None: neither rendered nor ever rendered before (the summary shows)
    is_fresh: bool  # rendered now from its file (and so to be kept)


class BodyCache:
    """The bodies' HTML as the store keeps it: which is fresh, what the rest needs to be
    rendered (`render_body`, on worker processes if need be), and keeping what was."""

    def __init__(self, site: SiteConfig, store: Store) -> None:
        self.site = site
        self.store = store

    def split(self, articles: Iterable[Article]) -> tuple[dict[str, str], dict[str, BodyJob]]:
        """The fresh HTML of *articles* by id, and a job for each of the others.

        The cache key is the article's text hash and link (see html_key).
        """
        needed = {article.id: article for article in articles}
        fresh: dict[str, str] = {}
        stale: list[tuple[Article, str, str | None, str]] = []  # article, format, HTML, key
        for row in self.store.cached_html(needed):
            article = needed[row.id]
            key = html_key(article.link, row.text_hash)
            if row.html is not None and row.html_key == key:
                fresh[row.id] = row.html
            else:
                stale.append((article, row.body_format, row.html, key))
        return fresh, self._jobs(stale)

    def _jobs(self, stale: Sequence[tuple[Article, str, str | None, str]]) -> dict[str, BodyJob]:
        files = self.store.files_for(article.path for article, *_ in stale)
        jobs: dict[str, BodyJob] = {}
        for article, body_format, cached, key in stale:
            row = files.get(article.path)
            is_current = row is not None and not row.problem and row.article_id == article.id
            path = str(self.site.content_dir / row.path) if is_current and row is not None else ""
            file_hash = row.file_hash if row else ""
            jobs[article.id] = BodyJob(
                article.id, path, file_hash, body_format, article.link, cached, key, article.path
            )
        return jobs

    @staticmethod
    def render(job: BodyJob) -> Body:
        """`render_body`: it touches no store, so it may run on a worker process."""
        return render_body(job)

    def keep(self, done: Sequence[tuple[BodyJob, Body]]) -> None:
        """Store the bodies rendered now; say which show their summary only."""
        for job, body in done:
            if body.html is None:
                logger.warning("%s: cannot render its last good version; summary only", job.where)
        fresh = [(job, body.html) for job, body in done if body.is_fresh and body.html is not None]
        if fresh:
            with self.store.transaction():
                for job, html in fresh:
                    self.store.save_html(job.article_id, html, job.key)


def html_key(link: str, text_hash: str | None) -> str:
    """What an article's cached HTML was made from: links are made absolute against *link*."""
    return hashlib.sha256(f"{version.RENDER_RULES}\0{link}\0{text_hash}".encode()).hexdigest()


def render_body(job: BodyJob) -> Body:
    """The body of *job*'s article from its file, if the file still holds the indexed
    version; else its last good version (when it has one)."""
    html = _render_current(job.file, job.file_hash, job.body_format, job.link)
    return Body(html, True) if html is not None else Body(job.cached, False)


def _render_current(path: str, file_hash: str, body_format: str, base_url: str) -> str | None:
    """An article file's body as HTML, if the file still holds the indexed version.

    An empty path means the store has no current file for the article.
    """
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != file_hash:
        return None  # changed since it was indexed: the next build picks it up
    return markup.render_body(body_of(data), body_format=body_format, base_url=base_url)
