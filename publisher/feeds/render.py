"""Feed items to RSS 2.0 and Atom 1.0 bytes (feedgen) and JSON Feed 1.1 bytes (by hand).

Every renderer is deterministic: dates come from the items (never "now"),
items are added in the order given, and serialisation is stable.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from publisher.model import FEED_FILES, FEED_MEDIA_TYPES, Author, FeedItem, FeedSpec
from publisher.text import strip_forbidden

if TYPE_CHECKING:
    from feedgen.entry import FeedEntry
    from feedgen.feed import FeedGenerator

GENERATOR_URI = "https://pypi.org/project/publisher/"
# An empty feed has no newest item to take its date from; a fixed date keeps
# the bytes deterministic instead of leaking the build time.
EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=UTC)


def feed_updated(items: Sequence[FeedItem]) -> datetime:
    """The feed's date: the newest item's last modification, never the build time."""
    if not items:
        return EMPTY_FEED_DATE
    return max(item.article.last_modified for item in items)


def preload() -> None:
    """Import feedgen (and lxml) now: before forking renderers, so each need not."""
    # feedgen.feed first: it imports lxml.etree, which feedgen.ext assumes.
    import feedgen.feed  # noqa: I001
    import feedgen.ext.dc  # noqa: F401


def render(fmt: str, spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """Render one format ('rss', 'atom' or 'json'): the feed around its items' entries."""
    return assemble(fmt, spec, items, render_entries(fmt, items))


def render_entries(fmt: str, items: Sequence[FeedItem]) -> list[bytes]:
    """Each item's entry, byte for byte as it stands in any feed of *fmt* that shows it.

    An entry depends on its article alone, so it is rendered once and reused in
    the site feed and every tag feed (and, cached, by later builds). RSS and
    Atom entries are cut from a feed of just these items serialised by
    feedgen: lxml indents an element by its depth alone, and all text is
    escaped, so the bytes between an entry's tags are those of any feed.
    """
    if fmt == "json":
        return [_json_entry(item) for item in items]
    if fmt not in ("rss", "atom"):
        message = f"unknown feed format {fmt!r}"
        raise ValueError(message)
    if not items:
        return []
    feed = _entry_feed()
    entries = [_add_entry(feed, item, fmt) for item in items]
    try:
        data: bytes = feed.rss_str(pretty=True) if fmt == "rss" else feed.atom_str(pretty=True)
    finally:
        for entry in entries:
            feed.remove_entry(entry)
    tag = b"item" if fmt == "rss" else b"entry"
    start = data.rindex(b"\n", 0, data.index(b"<" + tag + b">")) + 1
    close = b"</" + tag + b">\n"
    pieces = data[start : data.rindex(close) + len(close)].split(close)
    return [piece + close for piece in pieces[:-1]]


def _json_entry(item: FeedItem) -> bytes:
    """An item as json.dumps(indent=2) writes it inside a feed's "items" list."""
    lines = json.dumps(_json_item(item), ensure_ascii=False, indent=2).split("\n")
    return "\n".join("    " + line for line in lines).encode("utf-8")


def assemble(
    fmt: str, spec: FeedSpec, items: Sequence[FeedItem], entries: Sequence[bytes]
) -> bytes:
    """The feed of *items* from their entries (`render_entries`), in that order."""
    if fmt == "json":
        return _json_feed(spec, entries)
    if fmt not in ("rss", "atom"):
        message = f"unknown feed format {fmt!r}"
        raise ValueError(message)
    # The channel alone, its dates taken from the items, then the entries before its end.
    generator = _generator(spec, items, fmt)
    if fmt == "rss":
        head: bytes = generator.rss_str(pretty=True)
        tail = b"  </channel>\n</rss>\n"
    else:
        head = generator.atom_str(pretty=True)
        tail = b"</feed>\n"
    if not head.endswith(tail):  # feedgen changed how it closes a feed: fail, never garble
        message = f"unexpected end of a feedgen {fmt} feed: {head[-40:]!r}"
        raise RuntimeError(message)
    return head[: -len(tail)] + b"".join(entries) + tail


def render_rss(spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """RSS 2.0: summary in <description>, full HTML in <content:encoded>."""
    return render("rss", spec, items)


def render_atom(spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """Atom 1.0 (RFC 4287): content type="html", summary type="text"."""
    return render("atom", spec, items)


@functools.cache
def _entry_feed() -> FeedGenerator:
    """A feed with what feedgen requires and nothing else: entries are rendered in it."""
    from feedgen.feed import FeedGenerator

    feed = FeedGenerator()
    feed.load_extension("dc")
    feed.id("urn:publisher:entries")
    feed.title("entries")
    feed.description("entries")
    feed.link(href="urn:publisher:entries", rel="alternate")
    feed.updated(EMPTY_FEED_DATE)
    return feed


def _generator(spec: FeedSpec, items: Sequence[FeedItem], fmt: str) -> FeedGenerator:
    """The feed's channel, without entries: its dates are the items'."""
    # Imported here so that a build with nothing to render never pays for lxml.
    from feedgen.feed import FeedGenerator

    self_url = _uri(spec.url(FEED_FILES[fmt]))
    feed = FeedGenerator()
    feed.load_extension("dc")
    feed.id(self_url)
    feed.title(_clean(spec.title))
    feed.subtitle(_clean(spec.description))  # RSS <description>, Atom <subtitle>
    feed.link(
        href=self_url,
        rel="self",
        type=FEED_MEDIA_TYPES[fmt],
    )
    if spec.hub:
        # WebSub §4 discovery: Atom takes it as a link; RSS gets atom:link rel="hub"
        # from a small extension, as feedgen writes only rel="self" into RSS.
        if fmt == "rss":
            feed.register_extension("websub", _hub_extension(_uri(spec.hub)), atom=False)
        else:
            feed.link(href=_uri(spec.hub), rel="hub")
    # feedgen takes RSS <link> from the last link added: the site must come last.
    feed.link(href=_uri(spec.home_url), rel="alternate", type="text/html")
    feed.language(spec.language)
    feed.generator("publisher", version=spec.generator_version, uri=GENERATOR_URI)
    feed.author(_author_dict(spec.author))
    if spec.author.email:
        feed.managingEditor(f"{spec.author.email} ({_clean(spec.author.name)})")
    # Every date goes through one converter, so RSS gets offsets the validator accepts.
    stamp = _rss_date if fmt == "rss" else _atom_date
    updated = stamp(feed_updated(items))
    feed.updated(updated)
    feed.lastBuildDate(updated)
    if items:
        feed.pubDate(stamp(max(item.article.date for item in items)))
    return feed


def _add_entry(feed: FeedGenerator, item: FeedItem, fmt: str) -> FeedEntry:
    article = item.article
    stamp = _rss_date if fmt == "rss" else _atom_date
    entry = feed.add_entry(order="append")
    is_permalink = article.id == article.link
    # A permalink guid must be a URI; other ids are opaque strings in RSS
    # but IRIs in Atom, where non-ASCII is not canonical (NonCanonicalURI).
    guid = _uri(article.id) if is_permalink or fmt == "atom" else article.id
    entry.guid(guid, permalink=is_permalink)
    entry.title(_clean(article.title))
    entry.link(href=_uri(article.link), rel="alternate", type="text/html")
    entry.published(stamp(article.date))
    entry.updated(stamp(article.last_modified))
    summary = _clean(article.summary) or _clean(article.title)
    if item.content_html is not None:
        # One type serves both formats: Atom needs type="html" (feedgen's
        # "CDATA" type writes an invalid Atom type), and RSS then carries
        # the HTML escaped in content:encoded, which readers unescape.
        entry.content(_clean(item.content_html), type="html")
    # Sets Atom <summary> and, as nothing else set it, RSS <description>.
    # (feedgen's description() would overwrite the Atom content.) The
    # summary is plain text, but an RSS item description is HTML: escape
    # it there, or a reader drops "<for nine years>" as an unknown tag.
    entry.summary(html.escape(summary, quote=False) if fmt == "rss" else summary)
    if fmt == "atom":
        for author in article.authors:
            entry.author(_author_dict(author))
    else:
        _rss_authors(entry, article.authors)
    for tag in article.tags:
        entry.category(term=_clean(tag.name))
    return entry


def _rss_authors(entry: FeedEntry, authors: Sequence[Author]) -> None:
    """One author with an email as <author>, anyone else as dc:creator, never both.

    RSS 2.0 allows one <author>, and it must be an email address
    ("email (Name)"); the W3C validator reports a second one as
    DuplicateElement and <author> next to dc:creator as DuplicateItemSemantics.
    """
    if len(authors) == 1 and authors[0].email:
        entry.author(_author_dict(authors[0]))  # feedgen writes "email (name)"
        return
    for author in authors:
        entry.dc.dc_creator(_clean(author.name), replace=False)


def _hub_extension(hub: str) -> type:
    from feedgen.ext.base import BaseExtension

    class HubLinkExtension(BaseExtension):  # type: ignore[misc]
        def extend_rss(self, feed: Any) -> Any:
            channel = feed[0]
            link = channel.makeelement(
                "{http://www.w3.org/2005/Atom}link", {"href": hub, "rel": "hub"}
            )
            # Right after the self link, where readers look for it.
            position = next(
                (
                    i + 1
                    for i, child in enumerate(channel)
                    if child.tag == "{http://www.w3.org/2005/Atom}link"
                ),
                len(channel),
            )
            channel.insert(position, link)
            return feed

    return HubLinkExtension


def render_json_feed(spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/); key order is fixed."""
    return render("json", spec, items)


def _json_feed(spec: FeedSpec, entries: Sequence[bytes]) -> bytes:
    document: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": _clean(spec.title),
        "home_page_url": _uri(spec.home_url),
        "feed_url": _uri(spec.url(FEED_FILES["json"])),
        "description": _clean(spec.description),
        "language": spec.language,
        "authors": [_json_author(spec.author)],
    }
    if spec.hub:
        document["hubs"] = [{"type": "WebSub", "url": spec.hub}]
    document["items"] = []
    head = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    if entries:
        # As json.dumps(indent=2) writes a list of objects: each entry is one, indented.
        head = head[: -len(b"[]\n}")] + b"[\n" + b",\n".join(entries) + b"\n  ]\n}"
    return head + b"\n"


def _json_item(item: FeedItem) -> dict[str, Any]:
    article = item.article
    entry: dict[str, Any] = {
        "id": article.id,
        "url": _uri(article.link),
        "title": _clean(article.title),
    }
    if item.content_html is not None:
        entry["content_html"] = _clean(item.content_html)
    else:
        entry["content_text"] = _clean(article.summary) or _clean(article.title)
    if article.summary:
        entry["summary"] = _clean(article.summary)
    entry["date_published"] = _rfc3339(article.date)
    if article.updated is not None:
        entry["date_modified"] = _rfc3339(article.updated)
    entry["authors"] = [_json_author(a) for a in article.authors]
    if article.tags:
        entry["tags"] = [_clean(t.name) for t in article.tags]
    return entry


def _json_author(author: Author) -> dict[str, str]:
    result = {"name": _clean(author.name)}
    if author.email:
        result["url"] = f"mailto:{author.email}"
    return result


def _author_dict(author: Author) -> dict[str, str]:
    result = {"name": _clean(author.name)}
    if author.email:
        result["email"] = author.email
    return result


def _rfc3339(moment: datetime) -> str:
    return _atom_date(moment).isoformat(timespec="seconds")


def _rss_date(moment: datetime) -> datetime:
    """The moment in its own zone, or in UTC if RSS cannot say that zone.

    The W3C validator's RFC 822 pattern takes only offsets ending in 00 or 30
    minutes ("+0545", Nepal, is ProblematicalRFC822Date).
    """
    if _offset(moment) % timedelta(minutes=30):
        return moment.astimezone(UTC)
    return moment


def _atom_date(moment: datetime) -> datetime:
    # RFC 3339 offsets are hours and minutes; zoneinfo's local mean times
    # (before about 1900) have seconds, which isoformat() would write.
    if _offset(moment) % timedelta(minutes=1):
        return moment.astimezone(UTC)
    return moment


def _offset(moment: datetime) -> timedelta:
    return moment.utcoffset() or timedelta(0)


# Characters a URI may hold literally (RFC 3986 §2.2 reserved, plus '%' of
# escapes already made); quote() keeps letters, digits and "_.-~" too.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%"
# Printable ASCII but for space and "<>\\^`{|}: a URI as it stands.
_CLEAN_URI = re.compile(r"[!#-;=?-\[\]_a-z~]*")


def _uri(iri: str) -> str:
    """An IRI as a URI (RFC 3987 §3.1): non-ASCII host by IDNA, the rest %-encoded.

    RSS and the W3C validator take only URIs (a non-ASCII link is UriNotIri),
    and a non-ASCII Atom id is NonCanonicalURI. A URI already clean comes back as is.
    """
    if _CLEAN_URI.fullmatch(iri):
        return iri
    netloc = urlsplit(iri).netloc
    if not netloc.isascii():
        userinfo, at, hostport = netloc.rpartition("@")
        host, colon, port = hostport.partition(":")
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(host, safe="")
        iri = iri.replace(netloc, userinfo + at + host + colon + port, 1)
    return quote(iri, safe=_URI_SAFE)


def _clean(text: str) -> str:
    # U+FFFD marks text that was mis-decoded somewhere; the W3C validator
    # reports it (BadCharacters) like the C1 controls strip_forbidden removes.
    return strip_forbidden(text)
