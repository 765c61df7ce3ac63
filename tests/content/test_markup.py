"""content.markup: Markdown and plain text to clean HTML, and a first paragraph as a summary."""

from __future__ import annotations

import json
import os
import re

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.strategies import MARKDOWN_TEXT, SETTINGS

from publisher.content import markup
from publisher.pipelines.build import build
from publisher.text import strip_forbidden


@pytest.mark.parametrize(
    ("source", "body_format", "expected"),
    [
        ("\n\nFirst\nline.\n\nSecond.", "text", "First line."),
        ("# Title\n\n<div>raw</div>\n\n```\ncode\n```\n\n*Real* text.", "markdown", "Real text."),
        ("# Only a heading", "markdown", ""),
        ("", "markdown", ""),
    ],
)
def test_first_paragraph(source, body_format, expected):
    assert markup.first_paragraph(source, body_format=body_format) == expected


def test_text_to_html_escapes():
    assert markup.text_to_html("a < b & c > d\n \nnext") == (
        "<p>a &lt; b &amp; c &gt; d</p>\n<p>next</p>\n"
    )


PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        # A data: URL is a document of its own: never a link, whatever its spelling.
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "<a>x</a>"),
        ('<a href="&#100;ata:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="&#x64;&#x61;&#x74;&#x61;&#x3a;text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="data&colon;text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="DaTa:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="da&#9;ta:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="d\nat\ra:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="&NewLine; data:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="&#1;data:text/html,hi">x</a>', "<a>x</a>"),
        (
            f'<a href="{PNG}">an image type is still a link</a>',
            "<a>an image type is still a link</a>",
        ),
        ('<blockquote cite="data:text/html,x">q</blockquote>', "<blockquote>q</blockquote>"),
        # A picture may be inline, if it is a raster image (an SVG can hold script).
        (f'<img src="{PNG}" alt="dot">', f'<img src="{PNG}" alt="dot">'),
        (
            '<img src="data:image/jpeg;base64,/9j/4AAQ" alt="j">',
            '<img src="data:image/jpeg;base64,/9j/4AAQ" alt="j">',
        ),
        (
            '<img src="data:image/gif,GIF89a%01%00" alt="g">',
            '<img src="data:image/gif,GIF89a%01%00" alt="g">',
        ),
        (
            '<img src="data:image/webp;base64,UklGRg==" alt="w">',
            '<img src="data:image/webp;base64,UklGRg==" alt="w">',
        ),
        (
            '<img src="data:image/avif;base64,AAAAIGZ0eXA=" alt="a">',
            '<img src="data:image/avif;base64,AAAAIGZ0eXA=" alt="a">',
        ),
        (
            '<img src="DATA:Image/PNG;BASE64,iVBORw0KGgo=" alt="p">',
            '<img src="DATA:Image/PNG;BASE64,iVBORw0KGgo=" alt="p">',
        ),
        ('<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="s">', '<img alt="s">'),
        ('<img src="data:image/svg+xml,<svg onload=alert(1)>" alt="s">', '<img alt="s">'),
        ('<img src="data:text/html,<script>alert(1)</script>" alt="h">', '<img alt="h">'),
        ('<img src="data:image/pngx;base64,iVBORw0KGgo=" alt="x">', '<img alt="x">'),
        ('<img src="data:image/png" alt="no data">', '<img alt="no data">'),
        ('<img src="data:,plain" alt="t">', '<img alt="t">'),
        ('<img src="&#100;ata:image/svg+xml,<svg/>" alt="e">', '<img alt="e">'),
        # Text that merely starts with "data:" is text.
        (
            '<img alt="Data: Eurostat" src="chart.png">',
            '<img alt="Data: Eurostat" src="https://gazette.example/news/chart.png">',
        ),
        (
            '<abbr title="data: the raw figures">raw</abbr>',
            '<abbr title="data: the raw figures">raw</abbr>',
        ),
        ('<a href="https://gazette.example/">x</a>', '<a href="https://gazette.example/">x</a>'),
    ],
)
def test_sanitize_keeps_data_urls_only_as_raster_images(fragment, expected):
    assert markup.sanitize(fragment, base_url="https://gazette.example/news/") == expected


def test_table_columns_are_aligned_with_css_not_the_obsolete_align_attribute():
    source = "| Left | Right | Centre | None |\n|:--|--:|:-:|---|\n| a | 1 | x | - |\n"
    html = markup.render_body(source, body_format="markdown", base_url="https://g.example/")
    assert "align=" not in html
    assert html.count('style="text-align:left"') == 2
    assert html.count('style="text-align:right"') == 2
    assert html.count('style="text-align:center"') == 2
    assert "<th>None</th>" in html
    assert "<td>-</td>" in html
    # The inline styles are exactly those the pages' Content-Security-Policy lets apply.
    assert set(re.findall(r'style="([^"]*)"', html)) == set(markup.TABLE_ALIGNMENTS)


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        # Presentational attributes the HTML Standard made obsolete (§16 "Obsolete features").
        (
            '<table align="center" summary="s" width="50%"><tr align="left" valign="top">'
            '<td align="right" char="." charoff="1" colspan="2">1</td></tr></table>',
            '<table><tbody><tr><td colspan="2">1</td></tr></tbody></table>',
        ),
        ('<hr align="left" size="3" width="50%">', "<hr>"),
        (
            '<img src="a.png" alt="a" align="left" width="8" height="4">',
            '<img src="https://g.example/a.png" alt="a" width="8" height="4">',
        ),
        # An inline style keeps a table cell's alignment and nothing else.
        (
            '<table><tr><th style="text-align: right; color: red; position: fixed">h</th></tr>'
            "</table>",
            '<table><tbody><tr><th style="text-align:right">h</th></tr></tbody></table>',
        ),
        (
            '<table><tr><td style="color: red">a</td><td style="TEXT-ALIGN : Center;">b</td>'
            '<td style="text-align: justify">c</td></tr></table>',
            '<table><tbody><tr><td>a</td><td style="text-align:center">b</td><td>c</td></tr>'
            "</tbody></table>",
        ),
        ('<p style="text-align: right">p</p>', "<p>p</p>"),
    ],
)
def test_sanitize_keeps_no_obsolete_or_presentational_attributes(fragment, expected):
    assert markup.sanitize(fragment, base_url="https://g.example/") == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://gazette.example/news/", True),
        ("https://exämple.org/ü/", True),
        ("http://%zz/", False),
        ("http://gazette.example:99999/", False),
    ],
)
def test_is_usable_base(url, expected):
    assert markup.is_usable_base(url) is expected


# -- in the feeds a build writes ----------------------------------------------------

DATA_ARTICLE = """---
title: "Inline data"
date: "2026-11-20T10:00:00+01:00"
---

A [trap](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==), an
<a href="&#100;ata:text/html,hi">encoded trap</a> and a
<a href="DaTa:text/html,hi">mixed-case one</a>.

![dot](data:image/png;base64,iVBORw0KGgo=)

<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="vector">
"""


def test_data_urls_reach_no_feed_but_as_raster_images(site, now):
    (site.content_dir / "2026-11-20-inline-data.md").write_text(DATA_ARTICLE, encoding="utf-8")
    assert build(site, now=now).problems == ()
    # feedparser's own sanitiser would hide what the feed holds: read it raw.
    contents = {
        fmt: feedparser.parse(
            (site.output_dir / f"{fmt}.xml").read_bytes(),
            sanitize_html=False,
            resolve_relative_uris=False,
        ).entries[0]
        for fmt in ("rss", "atom")
    }
    html_parts = {fmt: entry.content[0].value for fmt, entry in contents.items()}
    first = json.loads((site.output_dir / "feed.json").read_bytes())["items"][0]
    html_parts["json"] = first["content_html"]
    assert {fmt: entry.title for fmt, entry in contents.items()} == dict.fromkeys(
        ("rss", "atom"), "Inline data"
    )
    assert first["title"] == "Inline data"
    for fmt, content_html in html_parts.items():
        assert "<a>trap</a>" in content_html, fmt
        assert "<a>encoded trap</a>" in content_html, fmt
        assert "<a>mixed-case one</a>" in content_html, fmt
        assert '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">' in content_html, fmt
        assert '<img alt="vector">' in content_html, fmt
        assert content_html.lower().count("data:") == 1, fmt


# -- shortcuts that must give what the long way gives ---------------------------------


def _first_paragraph_rendered(source: str) -> str:
    """first_paragraph as it was before plain prose skipped the renderer."""
    for block in markup._BLANK_LINE.split(source, maxsplit=8):
        block = block.strip()
        if not block or block.startswith(("#", "```", "~~~", "|", "<", "---", "***", "    ")):
            continue
        text = markup.html_to_text(markup.markdown_to_html(block))
        if text:
            return text
    return ""


@SETTINGS
@given(MARKDOWN_TEXT)
def test_first_paragraph_of_plain_prose_reads_as_rendered(source):
    assert markup.first_paragraph(source, body_format="markdown") == _first_paragraph_rendered(
        source
    )


@SETTINGS
@given(MARKDOWN_TEXT)
def test_blocks_are_what_a_split_gives(source):
    assert list(markup._blocks(source, 9)) == markup._BLANK_LINE.split(source, maxsplit=8)


_URLS = st.sampled_from(
    [
        "https://example.org/a b",
        "HTTP://example.org/",
        "mailto:desk@example.org",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:text/html,<b>x</b>",
        "/images/map.png",
        "images/map.png",
        "../up",
        "//cdn.example.org/x.png",
        "#section",
        "?page=2",
        "",
        " https://example.org/",
        "\thttps://example.org/",
        "h ttps://example.org/",
        "1http://example.org/",
        "c:\\path",
        "&#x2F;etc",
        "https://[bad",
        "tel:+431234",
    ]
)
_FRAGMENT = st.lists(
    st.one_of(
        st.builds('<a href="{}">link</a>'.format, _URLS),
        st.builds('<img src="{}" alt="a">'.format, _URLS),
        st.builds('<blockquote cite="{}">q</blockquote>'.format, _URLS),
        st.sampled_from(
            ["<p>text</p>", "<script>x</script>", "<td style='text-align: left'>c</td>"]
        ),
    ),
    max_size=5,
).map("".join)


@SETTINGS
@given(fragment=_FRAGMENT)
def test_the_reusable_cleaner_gives_what_cleaning_with_the_base_gives(fragment):
    base = "https://gazette.example/news/2024/05/story/"
    assert markup.sanitize(fragment, base_url=base) == markup._clean_with_base(
        strip_forbidden(fragment), base
    )


# -- cmark-gfm's memory -------------------------------------------------------------------

GFM_SAMPLE = (
    "Talks *resumed* in **Vienna**, see www.example.org or <https://example.org/a>.\n\n"
    "| Round | Result |\n|:--|--:|\n| 1 | ~~none~~ |\n| 2 | <b>a text</b> |\n\n"
    "```\ncode & <tags>\n```\n\n- one\n- two\n\n> quoted, with a [link](../page/) \u00e9\u00e8\n"
)


def _as_cmarkgfm_renders(source: str) -> str:
    import cmarkgfm
    from cmarkgfm.cmark import Options

    options = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_TABLE_PREFER_STYLE_ATTRIBUTES
    return cmarkgfm.markdown_to_html_with_extensions(
        source, options=options, extensions=["table", "strikethrough", "autolink"]
    )


@SETTINGS
@given(st.one_of(MARKDOWN_TEXT, st.text(), st.just(GFM_SAMPLE)))
def test_markdown_renders_as_cmarkgfm_itself_would(source):
    assert markup.markdown_to_html(source) == _as_cmarkgfm_renders(source)


def _resident_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads Linux's /proc")
def test_rendering_markdown_gives_its_memory_back():
    """cmarkgfm's own function keeps each document's tree (28 KB a news article): a
    long-running `publisher run` grew with every body rendered."""
    assert markup._cmark_freeing() is not None  # the freeing path is the one taken here
    body = GFM_SAMPLE * 20  # about 5 KB, as a news article
    for _ in range(200):
        markup.markdown_to_html(body)
    before = _resident_mb()
    for _ in range(3000):
        markup.markdown_to_html(body)
    grown = _resident_mb() - before
    assert grown < 8, f"{grown:.1f} MB more after 3,000 bodies"  # leaking: about 80 MB
