"""Markdown and plain text to safe HTML, and plain summaries of them; no I/O.

Markdown is CommonMark with GitHub's extensions (tables, strikethrough,
autolinks), rendered by cmark-gfm: the C reference implementation is about
ten times faster than the pure-Python renderers and CommonMark-correct.
Raw HTML in articles is allowed through the renderer and then cleaned by nh3
(ammonia), which also makes every relative URL absolute.
"""

from __future__ import annotations

import functools
import html
import re
import threading
from collections.abc import Iterator
from typing import Any

import cmarkgfm
import nh3
from cmarkgfm import _cmark, cmark
from cmarkgfm.cmark import Options

from publisher.text import one_line, strip_forbidden

# A change here that changes the HTML of an unchanged article must bump
# publisher.version.RENDER_RULES.

_TAG = re.compile(r"<[^>]*>")
_BLANK_LINE = re.compile(r"\n\s*\n")
# An inline link whose text and URL hold nothing special: its rendered text is its text
# (unless GFM's autolinks, which take in brackets, come near: see _plain_text).
_PLAIN_LINK = re.compile(
    r"\[([^\[\]\\`<>*_!&~|\x00-\x1f\x7f-\x9f]+)\]\([A-Za-z0-9._~:/?#@!$&'*+,;=%-]+\)"
)
_AUTOLINK_HINTS = ("://", "www.", "@")
# What makes a block more than plain prose to CommonMark + GFM: inline markup, a BOM,
# a CR, entities and escapes anywhere, or a line that opens a list, quote, heading,
# fence or table (a line of `:-` under text is a GFM table).
_INLINE_MARKUP = re.compile(r"[*_`\[\]<>&\\!~|\r\ufeff]")
_BLOCK_START = re.compile(r"\s*(?:[-+=#:]|\d{1,9}[.)](?:[ \t]|$))")

# Presentational attributes the HTML Standard made obsolete (§16.2, "Non-conforming
# features"), which nh3's defaults still allow on table parts, hr and img: the pages
# must be valid HTML, so they go (img's width and height are conforming: kept below).
_OBSOLETE = {"align", "char", "charoff", "size", "summary", "valign", "width"}
# nh3's defaults drop script, style, iframe, object, forms and every on* handler;
# we add the harmless attributes articles use for images, quotes and code.
_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) - _OBSOLETE for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {"src", "alt", "title", "width", "height"},
    "a": {"href", "hreflang", "title"},
    "abbr": {"title"},
    "code": {"class"},
    "ol": {"start"},
    "td": {"style", "colspan", "rowspan"},
    "th": {"style", "colspan", "rowspan", "scope"},
}
# A table cell's style keeps its alignment and nothing else, written as one of these
# (a Markdown table's column alignment comes out so): the site's Content-Security-Policy
# lets exactly these inline styles apply (web.files), and no other.
TABLE_ALIGNMENTS = ("text-align:left", "text-align:center", "text-align:right")
_ALIGNMENT = re.compile(r"\s*text-align\s*:\s*(left|center|right)\s*", re.IGNORECASE)
_CLEAN_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}
_GFM_EXTENSIONS = ["table", "strikethrough", "autolink"]
# data: passes nh3's scheme check so that _data_url_filter can keep inline pictures.
_URL_SCHEMES = {"http", "https", "mailto", "tel", "ftp", "data"}
# A data: URL as nh3 hands it over (entities decoded): URL parsers skip leading
# spaces and C0 controls and ignore tabs and line breaks anywhere, and schemes
# are case-insensitive, so "\tDa\nTa:" is a data: URL too (WHATWG URL §4.4).
_DATA_URL = re.compile(r"[\x00-\x20]*d[\t\n\r]*a[\t\n\r]*t[\t\n\r]*a[\t\n\r]*:", re.IGNORECASE)
_URL_NOISE = str.maketrans("", "", "\t\n\r")
# What may follow "data:" in an image's src (RFC 2397: type, parameters, ","): raster
# types only, as an SVG document can carry script.
_RASTER_MEDIA = re.compile(r"image/(?:png|jpeg|gif|webp|avif)(?:;[^,]*)?,", re.IGNORECASE)
_PROSE_ATTRIBUTES = {"alt", "title", "summary"}  # "Data: Eurostat" here is text, not a URL


# GFM's tagfilter would turn <script> into visible text; it is left out, and nh3
# drops such elements with their content instead. Table columns are aligned with
# style="text-align: …", not the obsolete align attribute.
_CMARK_OPTIONS = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_TABLE_PREFER_STYLE_ATTRIBUTES


def markdown_to_html(source: str) -> str:
    """Render CommonMark + GFM; raw HTML passes through to be cleaned by sanitize()."""
    freeing = _cmark_freeing()
    if freeing is None:  # cmark-gfm's functions not at hand: cmarkgfm's own way
        rendered: str = cmarkgfm.markdown_to_html_with_extensions(
            source, options=_CMARK_OPTIONS, extensions=_GFM_EXTENSIONS
        )
        return rendered
    return _render_and_free(source, *freeing)


def _render_and_free(source: str, node_free: Any, free: Any) -> str:
    """What cmarkgfm.markdown_to_html_with_extensions does, freeing what it leaves behind.

    That function never frees the document tree it parses nor the HTML string
    cmark-gfm returns (about 28 KB a news article): a long-running `publisher
    run`, and every worker process, grew with each body rendered. The same
    calls, then cmark-gfm's own cmark_node_free for the tree and free() for
    the string, which cmark-gfm's default allocator made.
    """
    parser = cmark.parser_new(options=_CMARK_OPTIONS)
    try:
        for extension in _gfm_extensions():
            cmark.parser_attach_syntax_extension(parser, extension)
        cmark.parser_feed(parser, source)
        root = cmark.parser_finish(parser)
        try:
            extensions = cmark.parser_get_syntax_extensions(parser)
            raw = _cmark.lib.cmark_render_html(root, _CMARK_OPTIONS, extensions)
            try:
                return str(_cmark.ffi.string(raw).decode("utf-8"))
            finally:
                free(_address(raw))
        finally:
            node_free(_address(root))
    finally:
        cmark.parser_free(parser)


def _address(pointer: Any) -> int:
    return int(_cmark.ffi.cast("uintptr_t", pointer))


@functools.cache
def _gfm_extensions() -> tuple[Any, ...]:
    cmark.core_extensions_ensure_registered()
    return tuple(cmark.find_syntax_extension(name) for name in _GFM_EXTENSIONS)


@functools.cache
def _cmark_freeing() -> tuple[Any, Any] | None:
    """cmark-gfm's cmark_node_free (exported by cmarkgfm's extension module) and the C
    library's free(), through ctypes; None where either cannot be found."""
    import ctypes

    try:
        node_free = ctypes.CDLL(_cmark.__file__).cmark_node_free
        free = ctypes.CDLL(None).free
    except (OSError, AttributeError):
        return None
    for function in (node_free, free):
        function.argtypes = [ctypes.c_void_p]
        function.restype = None
    return node_free, free


def text_to_html(source: str) -> str:
    """Plain text: blank lines separate paragraphs; everything is escaped."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", source) if p.strip()]
    return "".join(f"<p>{html.escape(p, quote=False)}</p>\n" for p in paragraphs)


def sanitize(fragment: str, *, base_url: str) -> str:
    """Remove dangerous markup and make relative href/src absolute against *base_url*.

    Feed readers ignore xml:base, so a relative image in a feed is a broken image.
    The base differs per article, and nh3 builds its rules anew on each call
    that takes one (more than half the cost of cleaning a news article). So a
    fragment is first cleaned by one reusable Cleaner that leaves relative URLs
    alone and notes whether it met any: without them (most articles: their
    links are absolute) the result is the same, and only with them is it
    cleaned again with the base.
    """
    text = strip_forbidden(fragment)
    _seen.relative = False
    cleaned: str = _cleaner().clean(text)
    if not _seen.relative:
        return cleaned
    return _clean_with_base(text, base_url)


def _clean_with_base(text: str, base_url: str) -> str:
    cleaned: str = nh3.clean(
        text,
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_relative=("rewrite_with_base", base_url),
        **_RULES,
    )
    return cleaned


@functools.cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        attributes=_ATTRIBUTES,
        attribute_filter=_noting_filter,
        url_relative="pass_through",
        **_RULES,
    )


# What both ways of cleaning share besides the attributes (nh3 types each keyword).
_RULES: dict[str, Any] = {
    "clean_content_tags": _CLEAN_CONTENT,
    "link_rel": None,
    "url_schemes": _URL_SCHEMES,
}


# Whether the reusable Cleaner met a relative URL in the fragment it is cleaning (per
# thread: `publisher serve` cleans on several).
_seen = threading.local()
# What nh3 (ammonia) takes for an absolute URL: a scheme, then a colon. Anything else
# in href or src it resolves against the base (a "//host" one too).
_ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_URL_ATTRIBUTES = {"href", "src"}  # the URL attributes of the elements kept (ammonia's list)


def _noting_filter(element: str, attribute: str, value: str) -> str | None:
    if attribute in _URL_ATTRIBUTES and not _ABSOLUTE_URL.match(value):
        _seen.relative = True
    return _attribute_filter(element, attribute, value)


def _attribute_filter(element: str, attribute: str, value: str) -> str | None:
    """Each attribute nh3 keeps, checked once more: a style, or a URL that may be data:."""
    if attribute == "style":
        return _cell_alignment(value)
    return _data_url_filter(element, attribute, value)


def _cell_alignment(style: str) -> str | None:
    """The alignment in a table cell's *style*, as TABLE_ALIGNMENTS spells it; else None
    (the attribute is dropped)."""
    for declaration in style.split(";"):
        found = _ALIGNMENT.fullmatch(declaration)
        if found:
            return f"text-align:{found.group(1).lower()}"
    return None


def _data_url_filter(element: str, attribute: str, value: str) -> str | None:
    """Keep a data: URL only as an image's picture, in a raster type; drop it anywhere else.

    A data: link opens a document of the article's making (`data:text/html`)
    when clicked in a reader. The callback runs for every kept attribute: on
    the bench corpus it adds about 4 % to sanitising (articles carry a couple
    of attributes each), less than a search of the output for "data:" costs.
    """
    if attribute in _PROSE_ATTRIBUTES:
        return value
    scheme = _DATA_URL.match(value)
    if scheme is None:
        return value
    media = value[scheme.end() :].translate(_URL_NOISE)
    if element == "img" and attribute == "src" and _RASTER_MEDIA.match(media):
        return value
    return None


def is_usable_base(url: str) -> bool:
    """Whether sanitize() can resolve relative links against *url* (a valid host and port)."""
    try:
        nh3.clean("", url_relative=("rewrite_with_base", url))
    except ValueError:
        return False
    return True


def render_body(source: str, *, body_format: str, base_url: str) -> str:
    """Article body (Markdown or plain text) to clean, absolute-linked HTML."""
    raw = markdown_to_html(source) if body_format == "markdown" else text_to_html(source)
    return sanitize(raw, base_url=base_url)


def html_to_text(fragment: str) -> str:
    """Text of cmark's own (well-formed) output: tags dropped, entities decoded."""
    return one_line(html.unescape(_TAG.sub("", fragment)))


def first_paragraph(source: str, *, body_format: str) -> str:
    """The first paragraph of the body as plain text (headings, images and code skipped)."""
    for block in _blocks(source, 9):
        block = block.strip()
        if not block:
            continue
        if body_format == "text":
            return one_line(block)
        if block.startswith(("#", "```", "~~~", "|", "<", "---", "***", "    ")):
            continue
        text = _plain_text(block)
        if text:
            return text
    return ""


def _blocks(source: str, limit: int) -> Iterator[str]:
    """What `_BLANK_LINE.split(source, limit - 1)` gives, found one at a time (the
    first block is nearly always the one wanted, and bodies run to pages)."""
    position = 0
    for _ in range(limit - 1):
        separator = _BLANK_LINE.search(source, position)
        if separator is None:
            break
        yield source[position : separator.start()]
        position = separator.end()
    yield source[position:]


def _plain_text(block: str) -> str:
    """The text of one Markdown block; plain prose (and plain links) reads the same
    rendered, so cmark runs only for the rest."""
    if not _has_markup(block):
        return one_line(block)
    if "](" in block:
        unlinked = _PLAIN_LINK.sub(r"\1", block)
        if not _has_markup(unlinked) and not any(h in unlinked for h in _AUTOLINK_HINTS):
            return one_line(unlinked)
    return html_to_text(markdown_to_html(block))


def _has_markup(block: str) -> bool:
    if _INLINE_MARKUP.search(block):
        return True
    return any(_BLOCK_START.match(line) for line in block.split("\n"))
