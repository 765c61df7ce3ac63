"""Articles' bodies as HTML, for the feeds that show them: rendered once, kept in the store.

Markdown is rendered only for articles some feed shows in full, and each
result is cached by what it was made from (the rendering rules, the text,
the link relative URLs are resolved against).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from publisher import parallel, version
from publisher.config import SiteConfig
from publisher.content import markup
from publisher.content.articles import body_of
from publisher.model import Article
from publisher.store import Store

logger = logging.getLogger(__name__)


# Rendering one article's Markdown and cleaning it costs ~0.3 ms: a cold build
# renders the ~1,000 articles its feeds show, worth two cores from this many.
PARALLEL_HTML_THRESHOLD = 200


def html_for(site: SiteConfig, store: Store, articles: Iterable[Article]) -> dict[str, str]:
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
    return hashlib.sha256(f"{version.RENDER_RULES}\0{link}\0{text_hash}".encode()).hexdigest()


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
    return markup.render_body(body_of(data), body_format=body_format, base_url=base_url)
