"""Which pages the site has, where each goes and what goes into it.

Planning reads only what the store keeps in columns (ArticleKey, with each
article's link), so a build after one edit decides every page of a site of
10,000 articles without decoding them. Each page's signature stands for
everything that goes into its bytes: a page whose signature did not change is
neither rendered nor read.

Paths are relative to [paths] site, which mirrors base_url: the page of
`https://meridian.example/2020/06/vienna/` is `2020/06/vienna/index.html`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Literal, NamedTuple, Protocol
from urllib.parse import quote, unquote

from publisher.config import SiteConfig
from publisher.model import DigestIssue, Listed, newest_first
from publisher.pages.assets import StaticFile

PageKind = Literal[
    "article",
    "home",
    "tag",
    "tags",
    "year",
    "years",
    "digest",
    "digests",
    "sitemap",
    "missing",
    "style",
    "static",
]
INDEX = "index.html"
STYLESHEET = "style.css"
NOT_FOUND = "404.html"
SITEMAP = "sitemap.xml"


class Plannable(Listed, Protocol):
    """What planning the pages needs of an article (store.ArticleKey has it)."""

    @property
    def link(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def modified(self) -> datetime | None: ...


class PageSpec(NamedTuple):
    """One page: where it goes, what kind it is, and which articles it shows.

    `signature` hashes every field: a field added here goes there too. A
    named tuple, not a dataclass: a plan makes one for each of a site's 13,000
    pages at every build, at a third of the cost.
    """

    path: str  # under [paths] site, with forward slashes
    kind: PageKind
    title: str = ""  # a list's heading: the tag's name, the year
    items: tuple[str, ...] = ()  # the ids of the articles shown, in order
    number: int = 1  # the page of a list (home, tag), from 1
    last: int = 1  # how many pages that list has (the number of its last)
    key: str = ""  # the tag's slug, the year, the digest's number
    previous: str | None = None  # an article's older neighbour
    following: str | None = None  # and its newer one
    # What an index shows: (key, name, count) of each tag, year or digest; the
    # sitemap's (URL, last modified).
    entries: tuple[tuple[str, str, int | str], ...] = ()
    extra: str = ""  # anything else its bytes depend on (a digest's frozen content)


@dataclass(frozen=True, slots=True)
class SitePlan:
    pages: tuple[PageSpec, ...]
    warnings: tuple[str, ...] = ()


def page_path(site: SiteConfig, url: str) -> str | None:
    """Where the page for *url* goes under [paths] site; None if outside base_url.

    A URL ending in "/" gets its index.html. A path that a browser would
    resolve elsewhere (dot segments, an encoded slash or backslash, a
    dot-file, a control character) has no page: it is refused, not normalised.
    """
    return path_under(site.base_url, url)


def path_under(root_url: str, url: str) -> str | None:
    """The file under the folder published at *root_url* that answers *url*, as page_path.

    The same rules for the feeds' folder at [feeds] url, whose files a link
    may name too.
    """
    if not url.startswith(root_url):
        return None
    rest = url[len(root_url) :]
    if _PLAIN_PATH.fullmatch(rest):  # nothing to decode or refuse: most links, checked at once
        return rest + INDEX if not rest or rest[-1] == "/" else rest
    return _decoded_path(rest)


def _decoded_path(rest: str) -> str | None:
    """path_under for what follows the root URL, whatever it holds."""
    # The path alone (what urlsplit would give, for a URL known to start with root_url).
    rest = rest.partition("#")[0].partition("?")[0]
    decoded = [unquote(s) if "%" in s else s for s in rest.split("/")]
    for segment in decoded[:-1]:
        if not segment or segment[0] == "." or _UNSAFE.search(segment):
            return None
    last = decoded[-1]
    if last.startswith(".") or _UNSAFE.search(last):
        return None
    decoded[-1] = last or INDEX
    return "/".join(decoded)


_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")
# Segments of letters, digits and "-_.~" (what needs no quoting), none empty before the last
# and none starting with a dot: a path path_under takes as it is, and url_under too.
_PLAIN_PATH = re.compile(r"(?:[\w~-][\w.~-]*/)*(?:[\w~-][\w.~-]*)?", re.ASCII)


def _unsafe(segment: str) -> bool:
    return _UNSAFE.search(segment) is not None


def url_of(site: SiteConfig, path: str) -> str:
    """The public URL of the page at *path* (an index.html is its folder's URL)."""
    return url_under(site.base_url, path)


def url_under(root_url: str, path: str) -> str:
    """The public URL of the file at *path* in the folder published at *root_url*."""
    shown = _shown(path)
    return root_url + (shown if _PLAIN_PATH.fullmatch(shown) else quote(shown))


def _shown(path: str) -> str:
    """*path* as its URL shows it, unquoted: an index.html by its folder."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/" if name == INDEX and folder else ("" if name == INDEX else path)


def list_path(prefix: str, number: int) -> str:
    """Page *number* of the list at *prefix* ("" for home, "tags/<slug>/")."""
    return f"{prefix}{INDEX}" if number == 1 else f"{prefix}page/{number}/{INDEX}"


def plan(
    site: SiteConfig,
    articles: Iterable[Plannable],
    digests: Sequence[DigestIssue],
    *,
    now: datetime,
    statics: Sequence[StaticFile] = (),
) -> SitePlan:
    """Every page of the site: lists first, then each article at its permalink, then the
    static folder's files where no page is."""
    published = newest_first(a for a in articles if a.is_published(now))
    lists = [
        *_paginated(site, "", "home", "", [a.id for a in published]),
        *_tag_pages(site, published),
        *_year_pages(site, published),
        *_digest_pages(digests),
        PageSpec(NOT_FOUND, "missing"),
        PageSpec(STYLESHEET, "style"),
    ]
    taken = {page.path: "" for page in lists}
    warnings: list[str] = []
    pages = [*lists, *_article_pages(site, published, taken, warnings)]
    pages += _static_pages(site, statics, taken, warnings)
    urls = {page.path: url_of(site, page.path) for page in pages if page.kind != "static"}
    sitemap = PageSpec(SITEMAP, "sitemap", entries=_sitemap_entries(pages, urls, published))
    return SitePlan((*pages, sitemap), tuple(warnings))


def _sitemap_entries(
    pages: Sequence[PageSpec], urls: Mapping[str, str], published: Sequence[Plannable]
) -> tuple[tuple[str, str, str], ...]:
    """Every page a search engine should know (not the 404), articles with their last change."""
    modified = {a.id: (a.modified or a.date).isoformat() for a in published}
    return tuple(
        (urls[page.path], "", modified[page.items[0]] if page.kind == "article" else "")
        for page in pages
        if page.kind not in _UNLISTED
    )


_UNLISTED = ("missing", "style", "static")  # the pages the sitemap leaves out


def restamped(site_plan: SitePlan, articles: Iterable[Plannable]) -> SitePlan:
    """*site_plan* with the sitemap's dates of *articles* made anew: all that an edit changes
    in a plan when no article moved, besides what the signatures read (pages.memo)."""
    *pages, sitemap = site_plan.pages
    modified = {a.id: (a.modified or a.date).isoformat() for a in articles}
    listed = (page for page in pages if page.kind not in _UNLISTED)
    entries = tuple(
        _dated(entry, modified.get(page.items[0])) if page.kind == "article" else entry
        for page, entry in zip(listed, sitemap.entries, strict=True)
    )
    return replace(site_plan, pages=(*pages, sitemap._replace(entries=entries)))


def _dated(entry: tuple[str, str, int | str], when: str | None) -> tuple[str, str, int | str]:
    return entry if when is None else (entry[0], entry[1], when)


def _paginated(
    site: SiteConfig, prefix: str, kind: PageKind, key: str, ids: Sequence[str], title: str = ""
) -> list[PageSpec]:
    per_page = site.pages.per_page
    count = max(1, -(-len(ids) // per_page))
    return [
        PageSpec(
            list_path(prefix, number),
            kind,
            title=title,
            items=tuple(ids[(number - 1) * per_page : number * per_page]),
            number=number,
            last=count,
            key=key,
        )
        for number in range(1, count + 1)
    ]


def _tag_pages(site: SiteConfig, published: Sequence[Plannable]) -> list[PageSpec]:
    by_tag: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for article in published:
        for tag in article.tags:
            by_tag.setdefault(tag.slug, []).append(article.id)
            names.setdefault(tag.slug, tag.name)  # as the newest article spells it
    slugs = [slug for slug in sorted(by_tag) if _safe_slug(slug)]
    entries = tuple((slug, names[slug], len(by_tag[slug])) for slug in slugs)
    pages = [PageSpec(f"tags/{INDEX}", "tags", entries=entries)]
    for slug in slugs:
        pages += _paginated(site, f"tags/{slug}/", "tag", slug, by_tag[slug], names[slug])
    return pages


def _safe_slug(slug: str) -> bool:
    return bool(slug) and not slug.startswith(".") and not _unsafe(slug)


def _year_pages(site: SiteConfig, published: Sequence[Plannable]) -> list[PageSpec]:
    by_year: dict[int, list[str]] = {}
    for article in published:
        by_year.setdefault(article.date.astimezone(site.timezone).year, []).append(article.id)
    years = sorted(by_year, reverse=True)
    entries = tuple((str(year), str(year), len(by_year[year])) for year in years)
    pages = [PageSpec(f"archive/{INDEX}", "years", entries=entries)]
    pages += [
        PageSpec(
            f"archive/{year}/{INDEX}",
            "year",
            title=str(year),
            items=tuple(by_year[year]),
            key=str(year),
        )
        for year in years
    ]
    return pages


def _digest_pages(digests: Sequence[DigestIssue]) -> list[PageSpec]:
    latest_first = sorted(digests, key=attrgetter("id"), reverse=True)
    pages = [
        PageSpec(
            f"digests/{INDEX}",
            "digests",
            entries=tuple((str(d.id), d.subject, len(d.articles)) for d in latest_first),
            extra="\n".join(_digest_signature(d) for d in latest_first),
        )
    ]
    pages += [
        PageSpec(f"digests/{d.id}/{INDEX}", "digest", key=str(d.id), extra=_digest_signature(d))
        for d in digests
    ]
    return pages


def _digest_signature(digest: DigestIssue) -> str:
    return hashlib.sha256(repr(digest).encode()).hexdigest()


def _article_pages(
    site: SiteConfig, published: Sequence[Plannable], taken: dict[str, str], warnings: list[str]
) -> list[PageSpec]:
    """Each article's page at its link, oldest first: the first to claim a path keeps it."""
    feeds_prefix = _feeds_prefix(site)
    placed: list[tuple[Plannable, str]] = []
    for article in reversed(published):
        path = page_path(site, article.link)
        if path is None:
            if article.link.startswith(site.base_url):
                where = _where(site, article)
                warnings.append(
                    f"{where}: link: {article.link} cannot be a page under [paths] site "
                    "(a dot segment, an encoded slash or a dot-file); give it another link"
                )
            continue  # a link elsewhere: that page is not ours to make
        owner = taken.get(path)
        if owner:
            owner = site.display(site.content_dir / owner)
        elif owner is None and feeds_prefix and path.startswith(feeds_prefix):
            owner = "the feeds' folder"
        if owner is not None:
            warnings.append(
                f"{_where(site, article)}: its page {article.link} would replace "
                f"{owner or 'a page of the site'}; give it another `link` or slug"
            )
            continue
        taken[path] = article.path  # a file of the content folder, named when it matters
        placed.append((article, path))
    pages = []
    for index, (article, path) in enumerate(placed):
        previous = placed[index - 1][0].id if index > 0 else None
        following = placed[index + 1][0].id if index + 1 < len(placed) else None
        pages.append(
            PageSpec(path, "article", items=(article.id,), previous=previous, following=following)
        )
    return pages


def _static_pages(
    site: SiteConfig, statics: Sequence[StaticFile], taken: dict[str, str], warnings: list[str]
) -> list[PageSpec]:
    """The static folder's files, each where no page of the site is."""
    pages = []
    for item in statics:
        where = site.display(site.pages.static_dir / item.path)
        if any(_unsafe(part) for part in item.path.split("/")):
            warnings.append(f"{where}: a file name no URL can hold; rename it")
            continue
        if item.path in taken:
            owner = taken[item.path]
            owner = site.display(site.content_dir / owner) if owner else "a page of the site"
            warnings.append(f"{where}: {owner} is at its place in the site; rename it")
            continue
        taken[item.path] = where
        extra = f"{item.size} {item.mtime_ns}"
        pages.append(PageSpec(item.path, "static", extra=extra))
    return pages


def _where(site: SiteConfig, article: Plannable) -> str:
    return site.display(site.content_dir / article.path)


def _feeds_prefix(site: SiteConfig) -> str:
    """The feeds' folder under base_url (its URLs belong to the feeds), or ""."""
    if not site.feeds.url.startswith(site.base_url):
        return ""
    return unquote(site.feeds.url[len(site.base_url) :])


def signature(fingerprint: str, page: PageSpec, versions: Mapping[str, str]) -> str:
    """Changes when anything that goes into this page's bytes changes.

    *fingerprint* stands for the site's settings, the templates and the
    program; *versions* for each article's stored version (its neighbours'
    too: their titles and links are shown).
    """
    fields = (page.path, page.kind, page.title, page.number, page.last, page.key, page.extra)
    parts = [fingerprint, *map(str, fields), repr(page.entries) if page.entries else ""]
    for article_id in (*page.items, page.previous or "", page.following or ""):
        parts += (article_id, versions.get(article_id, ""))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
