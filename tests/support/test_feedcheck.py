"""support/feedcheck.py reports what the W3C feed validator would.

The renderers' own output, broken one way at a time, is reported under the validator's own
message keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from support import feedcheck
from support.feeds import DESK, make_item, problems, render_all


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
