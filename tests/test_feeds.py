"""Feeds: the renderers on hand-made items, then whole sites as readers and validators see them.

tests/feedcheck.py stands in for the W3C Feed Validation Service (which is not
on PyPI); the tests at the end of part (a) prove that it reports what the
validator would, so that a clean report means something.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree
from support import feedcheck

from publisher.config import SiteConfig, load_config
from publisher.feeds import render
from publisher.model import Article, ArticleMeta, Author, FeedItem, FeedSpec, Tag
from publisher.pipelines.build import build

REPO = Path(__file__).parents[1]
GOLDEN = Path(__file__).parent / "golden"
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
FORMATS = ("rss", "atom", "json")

SPEC = FeedSpec(
    title="Test Gazette",
    description="A small site for the test suite.",
    home_url="https://gazette.example/news/",
    folder_url="https://gazette.example/news/feeds/",
    folder="",
    language="en",
    author=Author("Gazette Desk", "desk@gazette.example"),
    generator_version="9.9",
)
DESK = Author("Gazette Desk", "desk@gazette.example")
# Later than every hand-made date, so that no date is implausible.
CHECK_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def make_item(n: int, content_html: str | None = "", **changes: Any) -> FeedItem:
    """Article n of March 2021 (dated the nth, 09:00 UTC), with a link and an image.

    *changes* replace the article's metadata fields (or its id).
    """
    link = f"https://gazette.example/news/2021/03/article-{n}/"
    article_id = changes.pop("id", f"urn:uuid:00000000-0000-4000-8000-{n:012d}")
    meta = ArticleMeta(
        path=f"2021-03-0{n}-article-{n}.md",
        title=f"Article {n}",
        date=datetime(2021, 3, n, 9, 0, tzinfo=UTC),
        updated=None,
        authors=(Author("Lena Hofbauer"),),
        tags=(Tag("Europe", "europe"),),
        summary=f"Summary {n}.",
        link=link,
        slug=f"article-{n}",
    )
    if content_html == "":
        content_html = (
            f'<p>Body {n}, <a href="{link}#fn-1">a note</a>.</p>\n'
            f'<p><img src="{link}figure-{n}.png" alt="Figure {n}"></p>\n'
        )
    meta = replace(meta, **changes)
    return FeedItem(Article(article_id, meta, first_seen=meta.date), content_html)


def render_all(items: list[FeedItem], spec: FeedSpec = SPEC) -> dict[str, bytes]:
    return {fmt: render.render(fmt, spec, items) for fmt in FORMATS}


def problems(fmt: str, data: bytes, spec: FeedSpec = SPEC) -> list[str]:
    """feedcheck's report for one rendered format, its self URL included."""
    url = spec.url(render.FEED_FILES[fmt])
    if fmt == "rss":
        return feedcheck.rss_problems(data, now=CHECK_NOW, self_url=url)
    if fmt == "atom":
        return feedcheck.atom_problems(data, now=CHECK_NOW, self_url=url)
    return feedcheck.json_feed_problems(data, now=CHECK_NOW, feed_url=url)


def assert_valid(rendered: dict[str, bytes], atom_schema: etree.RelaxNG) -> None:
    for fmt, data in rendered.items():
        assert problems(fmt, data) == [], fmt
    assert feedcheck.atom_schema_problems(rendered["atom"], atom_schema) == []
    assert feedcheck.json_schema_problems(rendered["json"]) == []


def rss_items(data: bytes) -> list[etree._Element]:
    return etree.fromstring(data).findall("channel/item")


def atom_entries(data: bytes) -> list[etree._Element]:
    return etree.fromstring(data).findall(f"{ATOM}entry")


@pytest.fixture(scope="session")
def atom_schema() -> etree.RelaxNG:
    return feedcheck.load_atom_schema()


# -- (a) the renderers -------------------------------------------------------------


def test_items_keep_the_order_they_are_given_in():
    items = [make_item(3), make_item(1), make_item(2)]  # not by date: the caller decides
    expected = [item.article.id for item in items]
    rendered = render_all(items)
    assert [i.findtext("guid") for i in rss_items(rendered["rss"])] == expected
    assert [e.findtext(f"{ATOM}id") for e in atom_entries(rendered["atom"])] == expected
    assert [i["id"] for i in json.loads(rendered["json"])["items"]] == expected


def test_feed_date_is_the_newest_items_last_modification(atom_schema):
    edited = make_item(1, updated=datetime(2021, 3, 10, 12, 0, tzinfo=UTC))
    rendered = render_all([make_item(3), make_item(2), edited])
    channel = etree.fromstring(rendered["rss"]).find("channel")
    assert channel.findtext("lastBuildDate") == "Wed, 10 Mar 2021 12:00:00 +0000"
    assert channel.findtext("pubDate") == "Wed, 03 Mar 2021 09:00:00 +0000"  # newest date
    atom = etree.fromstring(rendered["atom"])
    assert atom.findtext(f"{ATOM}updated") == "2021-03-10T12:00:00+00:00"
    entry = atom_entries(rendered["atom"])[2]
    assert entry.findtext(f"{ATOM}published") == "2021-03-01T09:00:00+00:00"
    assert entry.findtext(f"{ATOM}updated") == "2021-03-10T12:00:00+00:00"
    item = json.loads(rendered["json"])["items"][2]
    assert (item["date_published"], item["date_modified"]) == (
        "2021-03-01T09:00:00+00:00",
        "2021-03-10T12:00:00+00:00",
    )
    assert_valid(rendered, atom_schema)


def test_rendering_a_second_later_gives_the_same_bytes():
    items = [make_item(2), make_item(1)]
    first = render_all(items)
    time.sleep(1.1)  # any "now" inside the renderers would show up in the bytes
    assert render_all(items) == first


@pytest.mark.parametrize(
    ("article_id", "permalink"),
    [
        ("urn:uuid:00000000-0000-4000-8000-000000000001", "false"),
        ("tag:gazette.example,2021:article-1", "false"),
        ("https://gazette.example/news/2021/03/article-1/", "true"),  # the id is the link
        ("https://gazette.example/news/?p=1", "false"),  # a URL, but not the link
    ],
)
def test_guid_is_a_permalink_only_when_the_id_is_the_link(article_id, permalink, atom_schema):
    rendered = render_all([make_item(1, id=article_id)])
    guid = rss_items(rendered["rss"])[0].find("guid")
    assert (guid.text, guid.get("isPermaLink")) == (article_id, permalink)
    assert atom_entries(rendered["atom"])[0].findtext(f"{ATOM}id") == article_id
    assert json.loads(rendered["json"])["items"][0]["id"] == article_id
    assert_valid(rendered, atom_schema)


def test_atom_has_html_content_and_a_text_summary():
    entry = atom_entries(render.render_atom(SPEC, [make_item(1)]))[0]
    content = entry.find(f"{ATOM}content")
    assert content.get("type") == "html"
    assert content.text == make_item(1).content_html
    summary = entry.find(f"{ATOM}summary")
    assert summary.get("type", "text") == "text"
    assert summary.text == "Summary 1."


def test_rss_description_is_the_summary_and_content_encoded_the_html(atom_schema):
    summary = "Catch limits for saury & mackerel <for nine years>."
    item = make_item(1, summary=summary)
    rendered = render_all([item])
    element = rss_items(rendered["rss"])[0]
    # The item description is HTML, so the plain-text summary is escaped in it.
    assert element.findtext("description") == html.escape(summary, quote=False)
    assert element.findtext(CONTENT_ENCODED) == item.content_html
    entry = feedparser.parse(rendered["rss"]).entries[0]
    # A reader shows the description as HTML: all of the summary, "<for …>" too.
    assert (entry.summary_detail.type, html.unescape(entry.summary)) == ("text/html", summary)
    assert entry.content[0].type == "text/html"
    assert 'href="https://gazette.example/news/2021/03/article-1/#fn-1"' in entry.content[0].value
    assert feedparser.parse(rendered["atom"]).entries[0].summary == summary
    assert json.loads(rendered["json"])["items"][0]["summary"] == summary
    assert_valid(rendered, atom_schema)


def test_without_content_the_rss_description_carries_the_summary():
    element = rss_items(render.render_rss(SPEC, [make_item(1, content_html=None)]))[0]
    assert element.findtext("description") == "Summary 1."
    assert element.find(CONTENT_ENCODED) is None
    item = json.loads(render.render_json_feed(SPEC, [make_item(1, content_html=None)]))["items"][0]
    assert (item["content_text"], "content_html" in item) == ("Summary 1.", False)


@pytest.mark.parametrize(
    ("authors", "author_element", "creators"),
    [
        ((DESK,), "desk@gazette.example (Gazette Desk)", []),
        ((Author("Lena Hofbauer"),), None, ["Lena Hofbauer"]),
        # One <author> only, and never next to dc:creator: all names as dc:creator.
        ((Author("Aiko Watanabe"), DESK), None, ["Aiko Watanabe", "Gazette Desk"]),
        ((DESK, Author("Tomás Ferreira", "tomas@gazette.example")), None,
         ["Gazette Desk", "Tomás Ferreira"]),
    ],
)  # fmt: skip
def test_rss_authors(authors, author_element, creators, atom_schema):
    rendered = render_all([make_item(1, authors=authors)])
    item = rss_items(rendered["rss"])[0]
    assert item.findtext("author") == author_element
    assert [c.text for c in item.iterfind(DC_CREATOR)] == creators
    entry = atom_entries(rendered["atom"])[0]
    names = [author.findtext(f"{ATOM}name") for author in entry.iterfind(f"{ATOM}author")]
    assert names == [a.name for a in authors]
    assert_valid(rendered, atom_schema)


def test_characters_xml_forbids_are_removed_not_fatal(atom_schema):
    item = make_item(
        1,
        content_html="<p>con\x01tent\ud800 with \x85C1 and \ufffdreplacement</p>\n",
        title="Bad\x00 \x0bti\x1ftle\ufffe\uffff",
        summary="Sum\x7fmary\x08.",
        authors=(Author("Lena\x0c Hofbauer"),),
        tags=(Tag("Eu\x02rope", "europe"),),
    )
    rendered = render_all([item])
    rss = rss_items(rendered["rss"])[0]
    assert rss.findtext("title") == "Bad title"
    assert rss.findtext("description") == "Summary."
    assert rss.findtext(CONTENT_ENCODED) == "<p>content with C1 and replacement</p>\n"
    assert rss.findtext(DC_CREATOR) == "Lena Hofbauer"
    assert rss.findtext("category") == "Europe"
    entry = atom_entries(rendered["atom"])[0]
    assert entry.findtext(f"{ATOM}title") == "Bad title"
    json_item = json.loads(rendered["json"])["items"][0]
    assert (json_item["title"], json_item["summary"]) == ("Bad title", "Summary.")
    assert json_item["content_html"] == "<p>content with C1 and replacement</p>\n"
    assert_valid(rendered, atom_schema)


def test_cdata_end_marker_in_content_survives_as_text(atom_schema):
    code = "<pre><code>if a[b[0]]>c: print(']]>')</code></pre>\n"
    rendered = render_all([make_item(1, content_html=code)])
    assert b"<![CDATA[" not in rendered["rss"]
    assert rss_items(rendered["rss"])[0].findtext(CONTENT_ENCODED) == code
    assert atom_entries(rendered["atom"])[0].findtext(f"{ATOM}content") == code
    assert json.loads(rendered["json"])["items"][0]["content_html"] == code
    assert feedparser.parse(rendered["rss"]).entries[0].content[0].value == code.strip()
    assert_valid(rendered, atom_schema)


def test_documents_start_with_their_declaration():
    rendered = render_all([make_item(1)])
    assert rendered["rss"].startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<rss ")
    assert rendered["atom"].startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<feed ")
    assert rendered["json"].startswith(b'{\n  "version": "https://jsonfeed.org/version/1.1"')
    assert rendered["json"].endswith(b"}\n")


def test_empty_feed_is_valid_and_dated_by_a_constant(atom_schema):
    rendered = render_all([])
    assert_valid(rendered, atom_schema)
    channel = etree.fromstring(rendered["rss"]).find("channel")
    assert channel.findall("item") == []
    assert channel.findtext("lastBuildDate") == "Sat, 01 Jan 2000 00:00:00 +0000"
    assert channel.find("pubDate") is None
    assert etree.fromstring(rendered["atom"]).findtext(f"{ATOM}updated") == (
        "2000-01-01T00:00:00+00:00"
    )
    assert json.loads(rendered["json"])["items"] == []
    for fmt in ("rss", "atom"):
        parsed = feedparser.parse(rendered[fmt])
        assert (parsed.bozo, parsed.entries) == (0, [])


@pytest.mark.parametrize(
    ("zone", "rss_date", "atom_date"),
    [
        (timezone(timedelta(hours=5, minutes=30)), "Mon, 01 Mar 2021 14:30:00 +0530",
         "2021-03-01T14:30:00+05:30"),
        # RFC 822 offsets end in 00 or 30 for the validator: Nepal goes out in UTC.
        (timezone(timedelta(hours=5, minutes=45)), "Mon, 01 Mar 2021 09:00:00 +0000",
         "2021-03-01T14:45:00+05:45"),
        (timezone(timedelta(hours=-9, minutes=-30)), "Sun, 28 Feb 2021 23:30:00 -0930",
         "2021-02-28T23:30:00-09:30"),
    ],
)  # fmt: skip
def test_dates_keep_their_zone_where_the_format_can_say_it(zone, rss_date, atom_date, atom_schema):
    moment = datetime(2021, 3, 1, 9, 0, tzinfo=UTC).astimezone(zone)
    rendered = render_all([make_item(1, date=moment)])
    assert rss_items(rendered["rss"])[0].findtext("pubDate") == rss_date
    assert atom_entries(rendered["atom"])[0].findtext(f"{ATOM}published") == atom_date
    assert json.loads(rendered["json"])["items"][0]["date_published"] == atom_date
    assert_valid(rendered, atom_schema)


def test_non_ascii_links_and_ids_are_written_as_uris(atom_schema):
    link = "https://gazette.example/news/über-uns/"
    uri = "https://gazette.example/news/%C3%BCber-uns/"
    rendered = render_all([make_item(1, id=link, link=link)])
    item = rss_items(rendered["rss"])[0]
    assert (item.findtext("link"), item.findtext("guid")) == (uri, uri)
    assert item.find("guid").get("isPermaLink") == "true"
    entry = atom_entries(rendered["atom"])[0]
    assert entry.findtext(f"{ATOM}id") == uri
    assert entry.find(f"{ATOM}link").get("href") == uri
    assert json.loads(rendered["json"])["items"][0]["url"] == uri
    assert_valid(rendered, atom_schema)


def test_tag_feed_with_a_non_ascii_slug_links_to_itself(atom_schema):
    spec = replace(
        SPEC,
        folder_url="https://gazette.example/news/feeds/tags/%D1%8D%D0%BA%D0%BE/",
        folder="tags/эко",
        title="Test Gazette: эко",
    )
    rendered = render_all([make_item(1)], spec)
    for fmt, data in rendered.items():
        assert problems(fmt, data, spec) == [], fmt
    assert feedcheck.atom_schema_problems(rendered["atom"], atom_schema) == []


# -- (a, continued) the checker reports what the validator would ---------------------


@pytest.fixture(scope="module")
def base_feeds() -> dict[str, bytes]:
    """Two items: one with an emailed author (RSS <author>), one with dc:creator."""
    rendered = render_all([make_item(2, authors=(DESK,)), make_item(1)])
    for fmt, data in rendered.items():
        assert problems(fmt, data) == [], fmt
    return rendered


LINK_1 = "https://gazette.example/news/2021/03/article-1/"
RSS_SELF = (
    '<atom:link href="https://gazette.example/news/feeds/rss.xml" rel="self" '
    'type="application/rss+xml"/>'
)


@pytest.mark.parametrize(
    ("fmt", "pattern", "replacement", "key"),
    [
        # well-formedness and characters
        ("rss", r"</channel>", "", "SAXError"),
        ("rss", r"\A", "\n", "WPBlankLine"),
        ("atom", r"Article 1", "Article\u0085 1", "BadCharacters"),
        # RSS structure
        ("rss", r"<description>A small site for the test suite\.</description>", "",
         "MissingDescription"),
        ("rss", re.escape(RSS_SELF), "", "MissingAtomSelfLink"),
        ("rss", r'rel="self" type="application/rss\+xml"', 'rel="self" type="text/xml"',
         "SelfNotAtom"),
        ("rss", r"feeds/rss\.xml", "feeds/other.xml", "SelfDoesntMatchLocation"),
        ("rss", r"<title>Article 1</title>", "<title>Article 1</title><title>Again</title>",
         "DuplicateElement"),
        ("rss", r"<title>Article 1</title>", "<title>Article 1</title><extra>x</extra>",
         "UndefinedElement"),
        ("rss", r"<description>Summary 1\.</description>", "", "NeedDescriptionBeforeContent"),
        ("rss", r"</item>\s*</channel>", "</item><ttl>5</ttl></channel>", "MisplacedItem"),
        ("rss", r'xmlns:dc="http://purl\.org/dc/elements/1\.1/"',
         'xmlns:dc="http://example.org/dc"', "ReservedPrefix"),
        ("rss", r"<rss ", '<rss xmlns:x="http://example.org/x" ', "UnknownNamespace"),
        # guid
        ("rss", r'<guid isPermaLink="false">', "<guid>", "InvalidPermalink"),
        ("rss", r'isPermaLink="false"', 'isPermaLink="False"', "InvalidBooleanAttribute"),
        ("rss", r'<guid isPermaLink="false">urn:uuid:[^<]*1</guid>',
         '<guid isPermaLink="true">article-1</guid>', "InvalidHttpGUID"),
        ("rss", r'<guid isPermaLink="false">urn:uuid:[^<]*1</guid>',
         '<guid isPermaLink="false">42</guid>', "NotSufficientlyUnique"),
        ("rss", r'<guid isPermaLink="false">urn:uuid:[^<]*</guid>', "", "MissingGuid"),
        ("rss", r"-000000000001</guid>", "-000000000002</guid>", "DuplicateValue"),
        # authors
        ("rss", r"<author>[^<]*</author>", "<author>Gazette Desk</author>", "InvalidContact"),
        ("rss", r"<author>[^<]*</author>", "<author>desk@gazette.example</author>",
         "MissingRealName"),
        ("rss", r"<author>[^<]*</author>",
         "<author>Gazette Desk &lt;desk@gazette.example&gt;</author>", "EmailFormat"),
        ("rss", r"<author>[^<]*</author>", r"\g<0><dc:creator>Desk</dc:creator>",
         "DuplicateItemSemantics"),
        ("rss", r"<managingEditor>[^<]*</managingEditor>",
         "<managingEditor>desk</managingEditor>", "InvalidContact"),
        # dates
        ("rss", r"\+0000</pubDate>", "UTC</pubDate>", "InvalidRFC2822Date"),
        ("rss", r"Mon, 01 Mar 2021", "Tue, 01 Mar 2021", "IncorrectDOW"),
        ("rss", r"01 Mar 2021 09:00:00 \+0000", "01 Mar 21 09:00:00 +0000",
         "ProblematicalRFC822Date"),
        ("rss", r"09:00:00 \+0000</pubDate>", "09:00:00 +0545</pubDate>",
         "ProblematicalRFC822Date"),
        ("rss", r"Mon, 01 Mar 2021", "Wed, 01 Mar 1989", "ImplausibleDate"),
        ("rss", r"Mon, 01 Mar 2021", "Wed, 01 Mar 2028", "ImplausibleDate"),
        # links, language, plain text
        ("rss", r"<link>https://gazette\.example/news/</link>", "<link>/news/</link>",
         "InvalidFullLink"),
        ("rss", r"<link>https://gazette\.example/news/</link>",
         "<link>https://gazette.example/news and views/</link>", "InvalidUriChar"),
        ("rss", r"<link>https://gazette\.example/news/</link>",
         "<link>https://gazette.example/über/</link>", "UriNotIri"),
        ("rss", r"<language>en</language>", "<language>english</language>", "InvalidLanguage"),
        ("rss", r"<language>en</language>", "<language>en_GB</language>", "InvalidLanguage"),
        ("rss", r"<title>Article 1</title>", "<title>Article &lt;b&gt;1&lt;/b&gt;</title>",
         "ContainsHTML"),
        ("rss", r"<title>Article 1</title>", "<title>Article &lt;b 1</title>", "CharacterData"),
        ("rss", r"<title>Article 1</title>", "<title> </title>", "NotBlank"),
        # HTML in description and content:encoded
        ("rss", re.escape(LINK_1) + "#fn-1", "#fn-1", "ContainsRelRef"),
        ("rss", re.escape(LINK_1) + "figure-1", "figure-1", "ContainsRelRef"),
        ("rss", re.escape(LINK_1) + "#fn-1", "/news/#fn 1", "InvalidUriChar"),
        ("rss", r"&lt;p&gt;Body 1", "&lt;script&gt;alert(1)&lt;/script&gt;&lt;p&gt;Body 1",
         "SecurityRisk"),
        ("rss", r"&lt;p&gt;Body 1", "&lt;iframe src='https://x.example/'&gt;&lt;/iframe&gt;",
         "SecurityRisk"),
        ("rss", r'&lt;a href=', '&lt;a onclick="steal()" href=', "SecurityRiskAttr"),
        ("rss", r'alt="Figure 1"', 'alt="Figure 1" style="position: absolute"',
         "DangerousStyleAttr"),
        ("rss", r'alt="Figure 1"', 'alt="Figure 1" style="background: url(x.png)"',
         "DangerousStyleAttr"),
        ("rss", r"&lt;p&gt;Body 1", "&lt;blink2&gt;x&lt;/blink2&gt;&lt;p&gt;Body 1", "NotHtml"),
        ("rss", r"&lt;p&gt;Body 1", "&lt;div&gt;&lt;p&gt;Body 1", "NotHtml"),
        ("rss", r"&lt;/a&gt;", "&lt;/a&gt;&lt;/span&gt;", "NotHtml"),
        ("rss", r"<description>Summary 1\.</description>",
         "<description>Summary &lt;for nine years&gt;</description>", "NotHtml"),
        # Atom structure
        ("atom", r'<content type="html">', '<content type="CDATA">', "InvalidMIMEType"),
        ("atom", r"<summary>Summary 1\.</summary>",
         '<summary type="xhtml">Summary 1.</summary>', "MissingXhtmlDiv"),
        ("atom", r"<summary>Summary 1\.</summary>",
         '<summary type="text/plain">Summary 1.</summary>', "InvalidTextType"),
        ("atom", r"<title>Article 1</title>", "<title>Article &lt;b&gt;1&lt;/b&gt;</title>",
         "ContainsUndeclaredHTML"),
        ("atom", r"(?s)<author>.*?</author>", "", "MissingElement"),
        ("atom", r"<title>Test Gazette</title>", "", "MissingElement"),
        ("atom", r"</entry>\s*</feed>", "</entry><rights>x</rights></feed>",
         "MisplacedMetadata"),
        ("atom", r'<link href="[^"]*" rel="self" [^>]*/>', "", "MissingSelf"),
        ("atom", r'rel="self" type="application/atom\+xml"', 'rel="self"', "SelfNotAtom"),
        ("atom", r'<link href="https://gazette\.example/news/"',
         '<link href="/news/"', "InvalidFullLink"),
        ("atom", r'rel="alternate" type="text/html"', 'rel="sideways" type="text/html"',
         "UnregisteredAtomLinkRel"),
        ("atom", r'(<link href="https://gazette.example/news/" [^>]*/>)', r"\1\1",
         "DuplicateAtomLink"),
        ("atom", r'(?s)<content type="html">.*?</content>\s*<link href="[^"]*"/>', "",
         "MissingContentOrAlternate"),
        ("atom", r"<category term=\"Europe\"/>", "<category/>", "MissingAttribute"),
        ("atom", r"<email>desk@gazette\.example</email>", "<email>desk at gazette</email>",
         "InvalidAddrSpec"),
        ("atom", r'xml:lang="en"', 'xml:lang="english"', "InvalidLanguage"),
        ("atom", r'xmlns="http://www\.w3\.org/2005/Atom"',
         r'\g<0> xmlns:atom="http://www.w3.org/2005/Atom"', "AvoidNamespacePrefix"),
        ("atom", r"<feed ", "<feed bogus=\"1\" ", "UnexpectedAttribute"),
        ("atom", r"<summary>Summary 1\.</summary>", "<summary>Summary 1.</summary><bogus/>",
         "UndefinedElement"),
        ("atom", r"&lt;p&gt;Body 1", "&lt;object&gt;&lt;/object&gt;&lt;p&gt;Body 1",
         "SecurityRisk"),
        ("atom", re.escape(LINK_1) + "#fn-1", "#fn-1", "ContainsRelRef"),
        # Atom ids and dates
        ("atom", r"<id>urn:uuid:", "<id>URN:uuid:", "NonCanonicalURI"),
        ("atom", r"<id>https://gazette\.example/news/feeds/atom\.xml</id>",
         "<id>https://gazette.example</id>", "NonCanonicalURI"),
        ("atom", r"<id>https://gazette\.example/news/feeds/atom\.xml</id>",
         "<id>HTTPS://gazette.example:443/news/./feeds/%7efeed</id>", "NonCanonicalURI"),
        ("atom", r"<id>urn:uuid:[^<]*1</id>", "<id>article-1</id>", "InvalidFullLink"),
        ("atom", r"<id>urn:uuid:[^<]*1</id>", "<id>urn:uuid:not-a-uuid</id>", "InvalidUUID"),
        ("atom", r"<id>urn:uuid:[^<]*1</id>", "<id>tag:Gazette.example,2021:1</id>",
         "InvalidTAG"),
        ("atom", r"<id>urn:uuid:[^<]*1</id>", "<id> urn:uuid:00000000-0000-4000-8000-"
         "000000000001</id>", "UnexpectedWhitespace"),
        ("atom", r"-000000000001</id>", "-000000000002</id>", "DuplicateEntries"),
        ("atom", r"2021-03-01T09:00:00\+00:00</updated>", "2021-03-02T09:00:00+00:00</updated>",
         "DuplicateUpdated"),
        ("atom", r"2021-03-01T09:00:00\+00:00</published>", "2021-03-01T09:00:00</published>",
         "InvalidRFC3339Date"),
        ("atom", r"2021-03-01T09:00:00\+00:00</published>",
         "2021-03-01T09:00:00+0000</published>", "InvalidRFC3339Date"),
        ("atom", r"2021-03-01T09:00:00\+00:00</published>",
         "2021-02-30T09:00:00+00:00</published>", "InvalidRFC3339Date"),
        ("atom", r"2021-03-01T09:00:00\+00:00</published>",
         "1989-03-01T09:00:00+00:00</published>", "ImplausibleDate"),
    ],
)  # fmt: skip
def test_feedcheck_reports_what_the_validator_would(base_feeds, fmt, pattern, replacement, key):
    text = base_feeds[fmt].decode("utf-8")
    broken, count = re.subn(pattern, replacement, text)
    assert count, f"{pattern!r} does not occur in the {fmt} feed"
    reported = problems(fmt, broken.encode("utf-8"))
    assert key in [p.split(":", 1)[0] for p in reported], reported


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda feed: feed.pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda feed: feed.__setitem__(key, value)


def _item(key: str, value: Any = None) -> Callable[[dict[str, Any]], None]:
    """Change (or, with value None, remove) one key of the second item."""

    def change(feed: dict[str, Any]) -> None:
        if value is None:
            del feed["items"][1][key]
        else:
            feed["items"][1][key] = value

    return change


JSON_CASES = [
    # (change, feedcheck key, caught by the JSON Schema too)
    (_set("version", "https://jsonfeed.org/version/1"), "InvalidValue", True),
    (_drop("title"), "MissingElement", True),
    (_drop("items"), "MissingElement", True),
    (_set("feed_url", "feeds/feed.json"), "InvalidFullLink", True),
    (_set("home_page_url", "https://gazette.example/news and views/"), "InvalidUriChar", True),
    (_set("feed_url", "https://gazette.example/other.json"), "SelfDoesntMatchLocation", False),
    (_set("authors", "Gazette Desk"), "InvalidValue", True),
    (_set("authors", [{}]), "MissingElement", True),
    (_set("language", "english"), "InvalidLanguage", False),
    (_set("expired", "no"), "InvalidValue", True),
    (_set("next_url", "https://gazette.example/news/feeds/feed.json"), "InvalidValue", False),
    (_set("unknown", 1), "UndefinedElement", True),
    (_set("_ext.ra", {}), "UndefinedElement", True),
    (lambda feed: feed.update({"version": feed.pop("version")}), "MisplacedMetadata", False),
    (_item("id", 1), "InvalidValue", True),
    (_item("id", " "), "NotBlank", True),
    (_item("id"), "MissingElement", True),
    (_item("id", "urn:uuid:00000000-0000-4000-8000-000000000002"), "DuplicateValue", False),
    (_item("content_html"), "MissingElement", True),
    (_item("content_html", '<p><a href="#fn-1">1</a></p>'), "ContainsRelRef", False),
    (_item("content_html", "<script>alert(1)</script>"), "SecurityRisk", False),
    (_item("title", "Article <b>1</b>"), "ContainsHTML", False),
    (_item("url", "/2021/03/article-1/"), "InvalidFullLink", True),
    (_item("date_published", "2021-03-01 09:00:00"), "InvalidRFC3339Date", True),
    (_item("date_published", "1989-03-01T09:00:00Z"), "ImplausibleDate", False),
    (_item("date_modified", "2031-03-01T09:00:00Z"), "ImplausibleDate", False),
    (_item("tags", "Europe"), "InvalidValue", True),
    (_item("authors", [{"url": "https://x.example/", "nick": "x"}]), "UndefinedElement", True),
    (_item("attachments", [{"url": "https://x.example/a.mp3"}]), "MissingAttribute", True),
]


@pytest.mark.parametrize(("change", "key", "schema_too"), JSON_CASES)
def test_feedcheck_and_schema_report_json_feed_breaches(base_feeds, change, key, schema_too):
    feed = json.loads(base_feeds["json"])
    change(feed)
    broken = json.dumps(feed, ensure_ascii=False).encode("utf-8")
    reported = problems("json", broken)
    assert key in [p.split(":", 1)[0] for p in reported], reported
    if schema_too:
        assert feedcheck.json_schema_problems(broken) != []


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [
        (r'<content type="html">', '<content type="CDATA">'),
        (r"<id>urn:uuid:[^<]*1</id>", ""),
        (r"2021-03-01T09:00:00\+00:00</published>", "Mon, 01 Mar 2021 09:00:00 +0000</published>"),
        (r"<summary>Summary 1\.</summary>", '<summary type="xhtml">Summary 1.</summary>'),
        (r"<category term=\"Europe\"/>", "<category/>"),
        (r"</entry>\s*</feed>", "</entry><bogus/></feed>"),
    ],
)
def test_atom_schema_rejects_what_rfc4287_forbids(base_feeds, atom_schema, pattern, replacement):
    broken, count = re.subn(pattern, replacement, base_feeds["atom"].decode("utf-8"))
    assert count
    assert feedcheck.atom_schema_problems(broken.encode("utf-8"), atom_schema) != []


def test_feedcheck_rejects_what_is_not_a_feed():
    assert feedcheck.json_feed_problems(b'{"version": NaN}')[0].startswith("SAXError:")
    assert feedcheck.json_feed_problems(b"[]") == ["InvalidValue: /: the feed is not a JSON object"]
    assert feedcheck.rss_problems(b"<?xml version='1.0' encoding='UTF-8'?><feed/>") == [
        "UndefinedElement: /: root element is <feed>, not <rss>"
    ]
    assert feedcheck.atom_problems(b"<?xml version='1.1'?><feed/>")[:2] == [
        "BadXmlVersion: 1.1",
        "MissingEncoding: the XML declaration names no encoding",
    ]


# -- (b) whole sites, as readers and validators see them ---------------------------


@pytest.fixture(params=["basic", "example"])
def built_site(request, make_site, tmp_path, now) -> SiteConfig:
    """tests/sites/basic, or the repository's own example site, built at conftest.NOW."""
    if request.param == "basic":
        folder = make_site("basic")
    else:
        folder = tmp_path / "example"
        shutil.copytree(REPO / "content", folder / "content")
        shutil.copy2(REPO / "publisher.toml", folder / "publisher.toml")
    site = load_config(folder / "publisher.toml")
    report = build(site, now=now)
    assert report.problems == ()
    return site


def feed_files(site: SiteConfig) -> dict[str, bytes]:
    """Every file build wrote, by its path under the output folder."""
    files = {
        path.relative_to(site.output_dir).as_posix(): path.read_bytes()
        for path in sorted(site.output_dir.rglob("*"))
        if path.is_file()
    }
    assert any(name.startswith("tags/") for name in files)  # per-tag feeds are covered
    assert {name.rsplit("/", 1)[-1] for name in files} == set(render.FEED_FILES.values())
    return files


def test_every_feed_reads_back_in_feedparser(built_site):
    for name, data in feed_files(built_site).items():
        if name.endswith(".json"):
            items = json.loads(data)["items"]
            assert items, name
            keys = ("id", "title", "url", "date_published", "content_html")
            for item in items:
                assert [k for k in keys if not item.get(k)] == [], name
            continue
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, (name, parsed.get("bozo_exception"))
        assert parsed.version == ("rss20" if name.endswith("rss.xml") else "atom10"), name
        assert parsed.entries, name
        for entry in parsed.entries:
            keys = ["id", "title", "link", "published_parsed", "content", "summary"]
            if parsed.version == "atom10":
                keys.append("updated_parsed")
            assert [k for k in keys if not entry.get(k)] == [], (name, entry.get("id"))
            assert entry.content[0].value.strip(), name


def test_the_three_formats_list_the_same_items(built_site):
    files = feed_files(built_site)
    for name in files:
        if not name.endswith("feed.json"):
            continue
        folder = name.removesuffix("feed.json")
        ids = [item["id"] for item in json.loads(files[name])["items"]]
        assert [i.findtext("guid") for i in rss_items(files[folder + "rss.xml"])] == ids
        atom = atom_entries(files[folder + "atom.xml"])
        assert [e.findtext(f"{ATOM}id") for e in atom] == ids


def test_every_feed_passes_feedcheck(built_site, now):
    reports: dict[str, list[str]] = {}
    for name, data in feed_files(built_site).items():
        url = built_site.feeds.url + name
        if name.endswith("rss.xml"):
            reports[name] = feedcheck.rss_problems(data, now=now, self_url=url)
        elif name.endswith("atom.xml"):
            reports[name] = feedcheck.atom_problems(data, now=now, self_url=url)
        else:
            reports[name] = feedcheck.json_feed_problems(data, now=now, feed_url=url)
    assert {name: found for name, found in reports.items() if found} == {}


def test_atom_feeds_match_the_rfc4287_schema(built_site, atom_schema):
    for name, data in feed_files(built_site).items():
        if name.endswith("atom.xml"):
            assert feedcheck.atom_schema_problems(data, atom_schema) == [], name


def test_json_feeds_match_the_json_feed_schema(built_site):
    for name, data in feed_files(built_site).items():
        if name.endswith("feed.json"):
            assert feedcheck.json_schema_problems(data) == [], name


# -- (c) golden files, for byte-determinism --------------------------------------------


@pytest.mark.parametrize("name", ["rss.xml", "atom.xml", "feed.json"])
def test_basic_site_feeds_match_the_golden_files(site, now, update_golden, name):
    build(site, now=now)
    data = (site.output_dir / name).read_bytes()
    golden = GOLDEN / name
    if update_golden:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(data)
    assert data == golden.read_bytes(), (
        f"feeds/{name} differs from tests/golden/{name}; if the change is intended, "
        "run `pytest --update-golden` and review the diff"
    )


def test_a_uri_passes_as_it_stands_exactly_when_every_character_may_stand_in_one():
    # Printable ASCII but for space and "<>\^`{|} (RFC 3986's excluded characters).
    for code in range(0x3000):
        character = chr(code)
        may_stand = " " < character < "\x7f" and character not in '"<>\\^`{|}'
        iri = f"https://example.org/a{character}b"
        assert (render._uri(iri) == iri) is may_stand, repr(character)
