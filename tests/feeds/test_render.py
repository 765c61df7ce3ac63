"""feeds.render: RSS 2.0, Atom 1.0 and JSON Feed 1.1, as readers and validators see them.

First on hand-made items, then on whole sites. support/feedcheck.py stands in for the W3C Feed
Validation Service (which is not on PyPI); support/test_feedcheck.py proves that it reports
what the validator would, so that a clean report means something.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import feedparser
import pytest
from lxml import etree
from support import feedcheck
from support.feedcheck import atom_problems, rss_problems
from support.feeds import (
    ATOM,
    CONTENT_ENCODED,
    DC_CREATOR,
    DESK,
    SPEC,
    assert_valid,
    atom_entries,
    make_item,
    problems,
    render_all,
    rss_items,
    site_with_hub,
)
from support.paths import GOLDEN, REPO

from publisher.config import SiteConfig, load_config
from publisher.feeds import render
from publisher.model import FEED_FILES, Author, Tag
from publisher.pipelines.build import build

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


def test_a_uri_passes_as_it_stands_exactly_when_every_character_may_stand_in_one():
    # Printable ASCII but for space and "<>\^`{|} (RFC 3986's excluded characters).
    for code in range(0x3000):
        character = chr(code)
        may_stand = " " < character < "\x7f" and character not in '"<>\\^`{|}'
        iri = f"https://example.org/a{character}b"
        assert (render._uri(iri) == iri) is may_stand, repr(character)


def test_feeds_advertise_the_hub(site_dir, hub, now):
    site = site_with_hub(site_dir, hub.url)
    build(site, now=now)
    rss = (site.output_dir / "rss.xml").read_bytes()
    atom = (site.output_dir / "atom.xml").read_bytes()
    document = json.loads((site.output_dir / "feed.json").read_text(encoding="utf-8"))
    assert document["hubs"] == [{"type": "WebSub", "url": hub.url}]
    for data in (rss, atom):
        parsed = feedparser.parse(data)
        assert not parsed.bozo
        assert {"rel": "hub", "href": hub.url} in [
            {"rel": link.get("rel"), "href": link.get("href")} for link in parsed.feed.links
        ]
        assert parsed.feed.link == "https://gazette.example/news/"  # the site, not the hub
    assert rss_problems(rss) == []
    assert atom_problems(atom) == []


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
    assert {name.rsplit("/", 1)[-1] for name in files} == set(FEED_FILES.values())
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
