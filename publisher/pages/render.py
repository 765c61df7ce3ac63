"""One page's bytes: its template (templates/pages/, Jinja2 with autoescape) and what it shows.

Everything a template prints is escaped by Jinja2 but the article's content,
which is the sanitised HTML the feeds carry, and the JSON-LD, which is
escaped here for a script element. Dates are the articles' own, in the
site's time zone: nothing here reads the clock.
"""

from __future__ import annotations

import html as html_text
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import jinja2

from publisher import templating
from publisher.config import SiteConfig
from publisher.errors import OutputError
from publisher.model import Article, DigestArticle, DigestIssue
from publisher.pages.layout import alternates, layout_context, local
from publisher.pages.plan import INDEX, PageSpec, list_path, url_of

TEMPLATES = {
    "article": "pages/article.html.j2",
    "home": "pages/list.html.j2",
    "tag": "pages/list.html.j2",
    "year": "pages/year.html.j2",
    "tags": "pages/tags.html.j2",
    "years": "pages/years.html.j2",
    "digest": "pages/digest.html.j2",
    "digests": "pages/digests.html.j2",
    "missing": "pages/404.html.j2",
}
STYLESHEET_TEMPLATE = "pages/style.css"
# The elements of an article's HTML that scroll sideways when wider than the page.
_SCROLLERS = {"pre", "table"}


class PageRenderer:
    """Renders the pages of one site: the environment is made (and templates compiled) once."""

    def __init__(self, site: SiteConfig, environment: jinja2.Environment) -> None:
        self.site = site
        self.environment = environment
        self.layout = layout_context(site, signup=site.web.offers_signup)
        # An article shows on ~5 pages (home, its tags, its year): its card is made once.
        self._cards: dict[str, dict[str, Any]] = {}

    def preload(self) -> None:
        """Compile every template now, before worker processes fork and share them.

        :raises TemplateError: naming the template that does not compile.
        """
        for name in {*TEMPLATES.values(), STYLESHEET_TEMPLATE}:
            templating.load_template(self.environment, name)

    def stylesheet(self) -> bytes:
        return templating.render_template(self.environment, STYLESHEET_TEMPLATE).encode("utf-8")

    def render(
        self,
        page: PageSpec,
        articles: Mapping[str, Article],
        *,
        html: str | None = None,
        digest: DigestIssue | None = None,
        issues: Mapping[str, DigestIssue] | None = None,
    ) -> bytes:
        """*page* as bytes; *articles* holds those it shows (and an article's neighbours).

        :raises TemplateError: for a template that fails.
        """
        if page.kind == "sitemap":
            return sitemap(page.entries)
        if page.kind == "style":
            return self.stylesheet()
        if page.kind == "static":
            return self._static(page.path)
        context = self._context(page, articles, html, digest, issues or {})
        text = templating.render_template(
            self.environment, TEMPLATES[page.kind], **self.layout, **context
        )
        return text.encode("utf-8")

    def _static(self, relative: str) -> bytes:
        path = self.site.pages.static_dir / relative
        try:
            return path.read_bytes()
        except OSError as err:
            message = f"cannot read ({err.strerror or err})"
            raise OutputError(self.site.display(path), message) from err

    def _context(
        self,
        page: PageSpec,
        articles: Mapping[str, Article],
        html: str | None,
        digest: DigestIssue | None,
        issues: Mapping[str, DigestIssue],
    ) -> dict[str, Any]:
        site = self.site
        context: dict[str, Any] = {"canonical": url_of(site, page.path)}
        if page.kind == "article":
            context.update(self._article(articles[page.items[0]], articles, page, html))
        elif page.kind in ("home", "tag"):
            context.update(self._list(page, [articles[i] for i in page.items]))
        elif page.kind == "year":
            shown = [articles[i] for i in page.items]
            context.update(year=page.title, entries=[self._card(a) for a in shown])
        elif page.kind == "tags":
            context["tags"] = [
                {"name": name, "url": self._path(f"tags/{slug}/"), "count": count}
                for slug, name, count in page.entries
            ]
        elif page.kind == "years":
            context["years"] = [
                {"year": year, "url": self._path(f"archive/{year}/"), "count": count}
                for year, _name, count in page.entries
            ]
        elif page.kind == "digests":
            context["digests"] = [
                self._digest_item(issues[number], subject, int(count))
                for number, subject, count in page.entries
            ]
        elif page.kind == "digest" and digest is not None:
            context.update(self._digest(digest))
        elif page.kind == "missing":
            context["canonical"] = None  # the same page answers for every missing address
        return context

    # -- each kind --------------------------------------------------------------------

    def _article(
        self,
        article: Article,
        articles: Mapping[str, Article],
        page: PageSpec,
        html: str | None,
    ) -> dict[str, Any]:
        site = self.site
        tags = [
            {"name": tag.name, "url": self._path(f"tags/{tag.slug}/"), "slug": tag.slug}
            for tag in article.tags
        ]
        feeds = []
        if site.feeds.tag_feeds:
            for tag in article.tags:
                feeds += alternates(site, _tag_folder(site, tag.slug), f"{site.title}: {tag.name}")
        updated = article.updated
        return {
            "article": {
                **self._card(article),
                "updated": updated.isoformat() if updated else None,
                "updated_text": _date_text(updated, site) if updated else "",
                "tags": tags,
            },
            "content": _focusable_scrollers(html) if html is not None else _summary_html(article),
            "previous": self._neighbour(articles, page.previous),
            "following": self._neighbour(articles, page.following),
            "canonical": article.link,
            "alternates": feeds,
            "meta": _open_graph(site, article),
            "json_ld": _json_ld(site, article),
        }

    def _list(self, page: PageSpec, shown: Sequence[Article]) -> dict[str, Any]:
        site = self.site
        prefix = "" if page.kind == "home" else f"tags/{page.key}/"
        pager = {
            "number": page.number,
            "count": page.last,
            "newer": self._link(list_path(prefix, page.number - 1)) if page.number > 1 else None,
            "older": (
                self._link(list_path(prefix, page.number + 1)) if page.number < page.last else None
            ),
        }
        context: dict[str, Any] = {
            "kind": page.kind,
            "cards": [self._card(a) for a in shown],
            "pager": pager,
            "tag_feeds": [],
        }
        if page.kind == "home":
            context.update(heading=site.title, intro=site.description if page.number == 1 else "")
            return context
        folder = _tag_folder(site, page.key)
        feeds = alternates(site, folder, f"{site.title}: {page.title}")
        context.update(
            heading=page.title,
            intro=f"Articles tagged “{page.title}”.",
            alternates=feeds if site.feeds.tag_feeds else [],
            tag_feeds=feeds if site.feeds.tag_feeds else [],
        )
        return context

    def _digest(self, digest: DigestIssue) -> dict[str, Any]:
        return {
            "digest": self._digest_item(digest, digest.subject, len(digest.articles)),
            "cards": [self._digest_card(a) for a in digest.articles],
        }

    def _digest_item(self, digest: DigestIssue, subject: str, count: int) -> dict[str, Any]:
        return {
            "number": str(digest.id),
            "subject": subject,
            "count": count,
            "url": self._path(f"digests/{digest.id}/"),
            "date": digest.created_at.isoformat(),
            "date_text": _date_text(digest.created_at, self.site),
            "audience": digest.audience,
        }

    # -- pieces ----------------------------------------------------------------------------

    def _card(self, article: Article) -> dict[str, Any]:
        card = self._cards.get(article.version)
        if card is None:
            card = self._cards[article.version] = self._new_card(article)
        return card

    def _new_card(self, article: Article) -> dict[str, Any]:
        authors = [author.name for author in article.authors]
        return self._card_of(article.title, article.link, article.date, authors, article.summary)

    def _digest_card(self, article: DigestArticle) -> dict[str, Any]:
        """An article as the digest froze it (it may have changed since)."""
        return self._card_of(
            article.title, article.link, article.date, article.authors, article.summary
        )

    def _card_of(
        self, title: str, link: str, date: datetime, authors: Sequence[str], summary: str
    ) -> dict[str, Any]:
        return {
            "title": title,
            "url": local(self.site, link),
            "date": date.isoformat(),
            "date_text": _date_text(date, self.site),
            "authors": ", ".join(authors),
            "summary": summary,
        }

    def _neighbour(self, articles: Mapping[str, Article], article_id: str | None) -> Any:
        if article_id is None or article_id not in articles:
            return None
        article = articles[article_id]
        return {"title": article.title, "url": local(self.site, article.link)}

    def _path(self, relative: str) -> str:
        """The link to the folder *relative* ("tags/<slug>/"), its index page."""
        return self._link(relative + INDEX)

    def _link(self, path: str) -> str:
        """The link to the page at *path* under [paths] site ("page/2/index.html")."""
        return local(self.site, url_of(self.site, path))


def _tag_folder(site: SiteConfig, slug: str) -> str:
    return f"{site.feeds.url}tags/{quote(slug)}/"


def _date_text(moment: datetime, site: SiteConfig) -> str:
    local_moment = moment.astimezone(site.timezone)
    return f"{local_moment.day} {local_moment:%B %Y}"


class _ScrollerTags(HTMLParser):
    """Where, in sanitised HTML, each start tag of an element that may scroll sideways ends
    its name."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=False)
        self.positions: list[tuple[int, int]] = []  # (line from 1, column just past the name)
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SCROLLERS and "tabindex" not in dict(attrs):
            line, column = self.getpos()
            self.positions.append((line, column + 1 + len(tag)))


def _focusable_scrollers(html: str) -> str:
    """*html* with its code blocks and tables reachable from the keyboard (tabindex="0").

    On a narrow screen they scroll sideways inside their box (style.css), and a
    region that scrolls must be reachable without a mouse to be scrolled (WCAG
    2.1.1; axe-core's scrollable-region-focusable). Only the pages get this:
    the feeds carry the article's HTML as it was sanitised.
    """
    if not any(f"<{tag}" in html for tag in _SCROLLERS):  # most articles: no parse at all
        return html  # (nh3 writes tag names in lower case)
    starts = [0, *(found.end() for found in re.finditer("\n", html))]
    offsets = [starts[line - 1] + column for line, column in _ScrollerTags(html).positions]
    pieces = []
    previous = 0
    for offset in offsets:
        pieces += [html[previous:offset], ' tabindex="0"']
        previous = offset
    return "".join([*pieces, html[previous:]])


def _escape(text: str) -> str:
    """&, < and > as entities: what xml.sax.saxutils.escape does, whose module imports
    urllib.request (17 ms of every build that renders a page)."""
    return html_text.escape(text, quote=False)


def _summary_html(article: Article) -> str:
    """An article whose HTML could not be made shows its summary (escaped) instead."""
    return f"<p>{_escape(article.summary)}</p>" if article.summary else ""


def _open_graph(site: SiteConfig, article: Article) -> list[tuple[str, str]]:
    meta = [
        ("og:type", "article"),
        ("og:site_name", site.title),
        ("og:title", article.title),
        ("og:url", article.link),
        ("og:description", article.summary or site.description),
        ("article:published_time", article.date.isoformat()),
    ]
    if article.updated is not None:
        meta.append(("article:modified_time", article.updated.isoformat()))
    meta += [("article:author", author.name) for author in article.authors]
    meta += [("article:tag", tag.name) for tag in article.tags]
    return meta


def _json_ld(site: SiteConfig, article: Article) -> str:
    """schema.org NewsArticle, escaped so that no text can end the script element."""
    document: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "url": article.link,
        "mainEntityOfPage": {"@type": "WebPage", "@id": article.link},
        "datePublished": article.date.isoformat(),
        "dateModified": article.last_modified.isoformat(),
        "inLanguage": site.language,
        "author": [{"@type": "Person", "name": author.name} for author in article.authors],
        "publisher": {"@type": "Organization", "name": site.title, "url": site.base_url},
    }
    if article.summary:
        document["description"] = article.summary
    if article.tags:
        document["keywords"] = [tag.name for tag in article.tags]
    text = json.dumps(document, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def sitemap(entries: Sequence[tuple[str, str, int | str]]) -> bytes:
    """sitemaps.org 0.9: each page's URL, and an article's last change."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    for url, _name, modified in entries:
        lastmod = f"<lastmod>{_escape(str(modified))}</lastmod>" if modified else ""
        lines.append(f"  <url><loc>{_escape(url)}</loc>{lastmod}</url>")
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode("utf-8")
