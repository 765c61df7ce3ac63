"""The links in what a build wrote, and whether the built folders answer each one.

`publisher check --links` reads the feeds, the pages and the digests back and
asks of every link inside base_url (or [feeds] url) whether a file that the
build wrote answers it, as `publisher serve` or a static host would: no
network, no build. Pure functions over bytes and paths: the caller reads the
folders and the store (pipelines.links).

A link is resolved as a browser resolves it (against the document's address
or its <base>, dot segments removed); its query and fragment are ignored.
Then, in the order `publisher serve` routes it: the service's own routes
(subscribe, confirm, unsubscribe, preferences, answered only where a [web]
table says the service runs at base_url), the feeds' folder, the site's folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from publisher.config import SiteConfig
from publisher.errors import OutputError
from publisher.model import FEED_FILES
from publisher.pages.plan import SITEMAP, path_under

FEED_NAMES = frozenset(FEED_FILES.values())
# The attributes of an HTML element that name an address a reader's browser asks for.
_HTML_ATTRIBUTES = ("href", "src", "action", "poster")
_OPEN_GRAPH_LINKS = frozenset({"og:url", "og:image"})
_ATOM = "{http://www.w3.org/2005/Atom}"
_XHTML = "{http://www.w3.org/1999/xhtml}"
_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
# Atom's text constructs (type="html" holds escaped HTML) and the elements holding a URL.
_ATOM_TEXT = frozenset(f"{_ATOM}{n}" for n in ("content", "summary", "title", "subtitle", "rights"))
_ATOM_URL_TEXT = frozenset(f"{_ATOM}{n}" for n in ("icon", "logo", "uri"))
_RSS_URL_TEXT = frozenset({"link", "url", "comments", "docs"})
_JSON_URL_KEYS = frozenset(
    {"url", "home_page_url", "feed_url", "external_url", "image", "banner_image", "icon", "favicon"}
)
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+")
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

Verdict = Literal["resolves", "broken", "unchecked", "outside"]


@dataclass(frozen=True, slots=True)
class Link:
    written: str  # as the document has it (entities decoded)
    url: str  # absolute: resolved against the document's address


@dataclass(frozen=True, slots=True)
class Resolution:
    verdict: Verdict
    why: str = ""  # for a broken link: what is missing


RESOLVES = Resolution("resolves")
OUTSIDE = Resolution("outside")  # not the site's: never followed
UNCHECKED = Resolution("unchecked")  # a page, and the site has none of its own


@dataclass(frozen=True, slots=True)
class Targets:
    """What answers at the site's addresses, read from its configuration."""

    base_url: str
    feeds_url: str
    feeds_dir: Path
    feeds_label: str  # "feeds/", as messages name the folder
    site_dir: Path | None  # None: pages are off, links to pages are not checked
    site_label: str
    routes: frozenset[str]  # the service's routes, as absolute URLs
    serves: bool  # a [web] table: `publisher serve` answers those routes

    @classmethod
    def of(cls, site: SiteConfig) -> Targets:
        """The routes as web.paths.SitePaths makes them (the web layer is above this one)."""
        routes = {site.base_url + "subscribe", site.base_url + "confirm"}
        routes.add(bare_url(site.digest.unsubscribe_url))
        routes.add(bare_url(site.digest.preferences_url))
        return cls(
            base_url=site.base_url,
            feeds_url=site.feeds.url,
            feeds_dir=site.output_dir,
            feeds_label=site.display(site.output_dir) + "/",
            site_dir=site.site_dir if site.pages.enabled else None,
            site_label=site.display(site.site_dir) + "/",
            routes=frozenset(routes),
            serves=site.web.configured,
        )


# -- resolution ----------------------------------------------------------------------


def resolve(targets: Targets, url: str) -> Resolution:
    """Whether a built file (or the service) answers the absolute *url*."""
    bare = bare_url(url)
    in_feeds = bare.startswith(targets.feeds_url)
    if not in_feeds and not bare.startswith(targets.base_url):
        return OUTSIDE
    if bare in targets.routes:
        if targets.serves:
            return RESOLVES
        return Resolution(
            "broken", "a route of publisher serve, and publisher.toml has no [web] table"
        )
    if in_feeds:
        return _in_folder(targets.feeds_url, targets.feeds_dir, targets.feeds_label, bare)
    if targets.site_dir is None:
        return UNCHECKED
    return _in_folder(targets.base_url, targets.site_dir, targets.site_label, bare)


def _in_folder(root_url: str, folder: Path, label: str, url: str) -> Resolution:
    relative = path_under(root_url, url)
    if relative is None:
        why = f"no file of {label} can answer it (a dot segment, an encoded slash or a dot-file)"
        return Resolution("broken", why)
    target = folder / relative
    if target.is_file():
        return RESOLVES
    if target.is_dir():
        return Resolution("broken", f"{label}{relative} is a folder: end the link with /")
    return Resolution("broken", f"no such file in {label} ({relative})")


def bare_url(url: str) -> str:
    """*url* without its query and fragment, its path's dot segments removed (RFC 3986)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, _without_dot_segments(parts.path), "", ""))


def _without_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(kept) > 1:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")  # "a/b/.." is the folder a/
    return "/".join(kept)


# -- extraction ----------------------------------------------------------------------


def file_links(name: str, data: bytes, url: str) -> list[Link]:
    """The links of the built file *name* (a feed, a page, the sitemap) published at *url*.

    :raises OutputError: for a feed or sitemap that cannot be parsed.
    """
    basename = name.rpartition("/")[2]
    if basename == FEED_FILES["json"]:
        return json_feed_links(data, url, where=name)
    if basename in FEED_NAMES:
        return xml_feed_links(data, url, where=name)
    if basename == SITEMAP:
        return sitemap_links(data, url, where=name)
    if basename.endswith(".html"):
        return html_links(data.decode("utf-8", errors="replace"), url)
    return []


def html_links(markup: str, base: str) -> list[Link]:
    """Every href, src, srcset, form action and Open Graph URL of an HTML document or fragment."""
    if not markup.strip():
        return []
    try:
        document = lxml.html.document_fromstring(markup)
    except etree.ParserError:
        return []  # nothing but comments: no element, no link
    for element in document.iter("base"):
        if element.get("href"):
            base = urljoin(base, element.get("href", ""))
        break
    found: list[str] = []
    for element in document.iter(etree.Element):
        if element.tag != "base":  # where links start from, not a link
            found += _element_links(element)
    return _absolute(found, base)


def _element_links(element: Any) -> list[str]:
    found = [element.get(name) for name in _HTML_ATTRIBUTES if element.get(name)]
    if element.get("srcset"):
        found += _srcset(element.get("srcset"))
    if element.tag == "meta" and element.get("property") in _OPEN_GRAPH_LINKS:
        found.append(element.get("content") or "")
    return [link for link in found if link.strip()]


def _srcset(value: str) -> list[str]:
    """The URLs of a srcset: candidates separated by commas, each a URL and a descriptor."""
    return [candidate.split()[0] for candidate in value.split(",") if candidate.split()]


def text_links(text: str, base: str) -> list[Link]:
    """The http(s) URLs written out in plain text (a digest's text part)."""
    found = []
    for match in _URL_IN_TEXT.finditer(text):
        link = match.group(0).rstrip(".,;:!?")
        if link.endswith(")") and "(" not in link:
            link = link[:-1]  # "(see https://…/)": the parenthesis is the sentence's
        found.append(link)
    return _absolute(found, base)


def xml_feed_links(data: bytes, url: str, *, where: str = "") -> list[Link]:
    """The links of an RSS 2.0 or Atom feed, those in its HTML content among them.

    RSS: <link>, <guid> when it is a permalink, enclosures, atom:link, and the
    HTML of <description> and <content:encoded>. Atom: every <link href>,
    icon, logo, author URIs, and text constructs of type html or xhtml. Ids
    are names, not links: never followed.
    """
    root = _parse_xml(data, url, where)
    found: list[Link] = []
    for element in root.iter(etree.Element):
        base = element.base or url
        written, html = _feed_element(element)
        found += _absolute(written, base)
        if html:
            found += html_links(html, base)
    return found


def _feed_element(element: Any) -> tuple[list[str], str]:
    """What one element of a feed links to: (URLs, HTML holding more)."""
    tag = element.tag
    text = (element.text or "").strip()
    if tag == f"{_ATOM}link" or tag.startswith(_XHTML):
        return [element.get(name) for name in ("href", "src") if element.get(name)], ""
    if tag in _ATOM_TEXT:
        return [], (element.text or "") if element.get("type") == "html" else ""
    if tag in (_ENCODED, "description"):
        return [], element.text or ""
    if tag in _ATOM_URL_TEXT or tag in _RSS_URL_TEXT:
        return [text] if text else [], ""
    if tag == "guid" and element.get("isPermaLink", "true") == "true":
        return [text] if text else [], ""  # RSS 2.0: a guid is a permalink unless it says not
    if tag in ("enclosure", "source") and element.get("url"):
        return [element.get("url")], ""
    return [], ""


def json_feed_links(data: bytes, url: str, *, where: str = "") -> list[Link]:
    """The links of a JSON Feed: url, home_page_url, feed_url, external_url, images,
    attachments, and those in content_html."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise OutputError(where, f"cannot be read as JSON ({err})") from err
    found: list[Link] = []
    for key, value in _json_strings(document):
        if key == "content_html":
            found += html_links(value, url)
        elif key in _JSON_URL_KEYS:
            found += _absolute([value], url)
    return found


def _json_strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _json_strings(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item, key)
    elif isinstance(value, str) and value.strip():
        yield key, value


def sitemap_links(data: bytes, url: str, *, where: str = "") -> list[Link]:
    """Each <loc> of a sitemap."""
    root = _parse_xml(data, url, where)
    written = [
        (element.text or "").strip()
        for element in root.iter(etree.Element)
        if etree.QName(element).localname == "loc" and (element.text or "").strip()
    ]
    return _absolute(written, url)


def _parse_xml(data: bytes, url: str, where: str) -> Any:
    try:
        return etree.fromstring(data, _XML_PARSER, base_url=url)
    except etree.XMLSyntaxError as err:
        raise OutputError(where, f"not well-formed XML ({err})") from err


def _absolute(written: list[str], base: str) -> list[Link]:
    return [Link(link, urljoin(base, link.strip())) for link in written]
