"""pages.links and pipelines.links: every link of the built feeds, pages and digests, followed.

The extraction and resolution are pure functions, tested on small documents;
the whole check runs on real builds of tests/sites/basic copied into
tmp_path. The basic site's Vienna article links to an image no one made and
to an earlier report that does not exist: `clean_site` points those at files
that do, so a build of it has no broken link.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from support.mailing import add_subscribers

from publisher.config import load_config
from publisher.errors import OutputError
from publisher.pages import links
from publisher.pages.links import Link, Resolution, Targets
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.pipelines.links import BrokenLink, check_links

BASE = "https://gazette.example/news/"
VIENNA = "site/2020/06/vienna-talks/index.html"
OBSERVERS = f"{BASE}2021/03/observers/"
# The feeds that link to the observers article: the site's, its tags' (elections, europe)
# and those of the clean Vienna article, whose body links to it (arms control, vienna).
OBSERVERS_FEEDS = [
    f"feeds/{folder}{name}"
    for folder in ("", *(f"tags/{t}/" for t in ("arms-control", "elections", "europe", "vienna")))
    for name in ("atom.xml", "feed.json", "rss.xml")
]
IMAGE = "site/2020/06/vienna-talks/images/delegations.jpg"


def _urls(found: list[Link]) -> list[str]:
    return [link.url for link in found]


def _append(path, text):
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def _write_article(site_dir, name, front, body):
    (site_dir / "content" / name).write_text(f"---\n{front}---\n\n{body}\n", encoding="utf-8")


# -- finding links -------------------------------------------------------------------


def test_html_links_are_every_href_src_srcset_action_and_open_graph_url():
    page = """<!doctype html><html><head>
    <link rel="canonical" href="https://gazette.example/news/a/">
    <link rel="stylesheet" href="/news/style.css">
    <meta property="og:url" content="https://gazette.example/news/a/">
    <meta property="og:title" content="Not a link">
    </head><body>
    <a href="../b/?x=1&amp;y=2#top">b</a> <a href="#main">skip</a> <a href="">self</a>
    <img src="pic.png" srcset="pic-1x.png 1x, /news/pic-2x.png 2x" alt="">
    <form action="/news/subscribe" method="post"></form>
    <video poster="still.jpg"></video>
    <!-- <a href="/news/commented-out/">no</a> -->
    </body></html>"""
    found = links.html_links(page, f"{BASE}a/")
    assert [link.written for link in found] == [
        "https://gazette.example/news/a/",
        "/news/style.css",
        "https://gazette.example/news/a/",
        "../b/?x=1&y=2#top",
        "#main",
        "pic.png",
        "pic-1x.png",
        "/news/pic-2x.png",
        "/news/subscribe",
        "still.jpg",
    ]
    assert _urls(found)[3:] == [
        f"{BASE}b/?x=1&y=2#top",
        f"{BASE}a/#main",
        f"{BASE}a/pic.png",
        f"{BASE}a/pic-1x.png",
        f"{BASE}pic-2x.png",
        f"{BASE}subscribe",
        f"{BASE}a/still.jpg",
    ]


def test_html_links_follow_a_base_element_and_skip_empty_documents():
    page = '<html><head><base href="https://gazette.example/news/x/"></head><a href="y/">y</a>'
    assert _urls(links.html_links(page, BASE)) == [f"{BASE}x/y/"]
    assert links.html_links("  \n", BASE) == []
    assert links.html_links("<!-- nothing -->", BASE) == []


def test_rss_links_are_links_permalink_guids_atom_links_and_the_content_html():
    rss = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <link>https://gazette.example/news/</link>
    <atom:link href="https://gazette.example/news/feeds/rss.xml" rel="self"/>
    <item>
      <link>https://gazette.example/news/a/</link>
      <guid isPermaLink="false">urn:uuid:1</guid>
      <description>Plain &amp;lt;b&amp;gt;summary</description>
      <content:encoded>&lt;p&gt;&lt;a href="https://gazette.example/news/b/"&gt;b&lt;/a&gt;
        &lt;img src="/news/c.png"&gt;&lt;/p&gt;</content:encoded>
      <enclosure url="https://gazette.example/news/d.mp3" length="1" type="audio/mpeg"/>
    </item>
    <item><guid>https://gazette.example/news/e/</guid></item>
  </channel>
</rss>"""
    assert _urls(links.xml_feed_links(rss, f"{BASE}feeds/rss.xml")) == [
        BASE,
        f"{BASE}feeds/rss.xml",
        f"{BASE}a/",
        f"{BASE}b/",
        "https://gazette.example/news/c.png",
        f"{BASE}d.mp3",
        f"{BASE}e/",  # a guid without isPermaLink is a permalink (RSS 2.0)
    ]


def test_atom_links_are_link_hrefs_and_html_or_xhtml_content_never_ids():
    atom = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>https://gazette.example/news/feeds/atom.xml</id>
  <link href="https://gazette.example/news/feeds/atom.xml" rel="self"/>
  <entry xml:base="https://gazette.example/news/2020/">
    <id>https://gazette.example/news/not-a-link/</id>
    <title type="html">A &amp;amp; B</title>
    <link href="talks/"/>
    <content type="html">&lt;a href="other/"&gt;other&lt;/a&gt;</content>
    <summary>&lt;a href="https://gazette.example/news/text-only/"&gt;</summary>
  </entry>
  <entry>
    <content type="xhtml">
      <div xmlns="http://www.w3.org/1999/xhtml"><a href="x/">x</a></div>
    </content>
  </entry>
</feed>"""
    assert _urls(links.xml_feed_links(atom, f"{BASE}feeds/atom.xml")) == [
        f"{BASE}feeds/atom.xml",
        f"{BASE}2020/talks/",  # against the entry's xml:base
        f"{BASE}2020/other/",
        f"{BASE}feeds/x/",
    ]


def test_json_feed_links_are_its_url_fields_and_the_content_html():
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "home_page_url": BASE,
        "feed_url": f"{BASE}feeds/feed.json",
        "authors": [{"name": "Desk", "url": "mailto:desk@gazette.example"}],
        "items": [
            {
                "id": f"{BASE}not-a-link/",
                "url": f"{BASE}a/",
                "external_url": "https://elsewhere.example/",
                "content_html": '<p><a href="/news/b/">b</a></p>',
                "summary": f"{BASE}not-a-link-either/",
                "attachments": [{"url": f"{BASE}c.mp3", "mime_type": "audio/mpeg"}],
            }
        ],
    }
    found = links.json_feed_links(json.dumps(document).encode(), f"{BASE}feeds/feed.json")
    assert _urls(found) == [
        BASE,
        f"{BASE}feeds/feed.json",
        "mailto:desk@gazette.example",
        f"{BASE}a/",
        "https://elsewhere.example/",
        f"{BASE}b/",
        f"{BASE}c.mp3",
    ]


def test_sitemap_and_text_links():
    sitemap = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>https://gazette.example/news/</loc><lastmod>2020-01-01</lastmod></url>"
        b"<url><loc> https://gazette.example/news/a/ </loc></url></urlset>"
    )
    assert _urls(links.sitemap_links(sitemap, f"{BASE}sitemap.xml")) == [BASE, f"{BASE}a/"]
    text = (
        "Read more: https://gazette.example/news/a/\n"
        "See the archive (https://gazette.example/news/archive/).\n"
        "Unsubscribe: https://gazette.example/news/unsubscribe?token=abc, or write to us."
    )
    assert _urls(links.text_links(text, BASE)) == [
        f"{BASE}a/",
        f"{BASE}archive/",
        f"{BASE}unsubscribe?token=abc",
    ]


def test_a_feed_that_cannot_be_parsed_is_an_output_error_naming_it():
    with pytest.raises(OutputError) as xml_error:
        links.file_links("tags/x/rss.xml", b"<rss><channel>", f"{BASE}feeds/tags/x/rss.xml")
    assert xml_error.value.where == "tags/x/rss.xml"
    assert xml_error.value.message.startswith("not well-formed XML (")
    with pytest.raises(OutputError) as json_error:
        links.file_links("feed.json", b"{", f"{BASE}feeds/feed.json")
    assert json_error.value.message.startswith("cannot be read as JSON (")
    assert links.file_links("style.css", b"a { color: red }", f"{BASE}style.css") == []


# -- resolving them ----------------------------------------------------------------------


@pytest.fixture
def targets(site):
    """The basic site's folders with a few files in them: its pages on, its [web] table set."""
    (site.site_dir / "2020" / "talks").mkdir(parents=True)
    (site.site_dir / "2020" / "talks" / "index.html").write_text("<p>", encoding="utf-8")
    (site.site_dir / "index.html").write_text("<p>", encoding="utf-8")
    (site.output_dir / "tags" / "x").mkdir(parents=True)
    (site.output_dir / "tags" / "x" / "rss.xml").write_text("<rss/>", encoding="utf-8")
    return Targets.of(site)


@pytest.mark.parametrize(
    ("url", "resolution"),
    [
        (BASE, links.RESOLVES),
        (f"{BASE}2020/talks/", links.RESOLVES),
        (f"{BASE}2020/talks/index.html", links.RESOLVES),
        (f"{BASE}2020/talks/?utm=x#top", links.RESOLVES),  # query and fragment ignored
        (f"{BASE}2020/other/../talks/", links.RESOLVES),  # as a browser resolves it
        (f"{BASE}feeds/tags/x/rss.xml", links.RESOLVES),
        (f"{BASE}subscribe", links.RESOLVES),
        (f"{BASE}confirm?token=abc", links.RESOLVES),
        (f"{BASE}unsubscribe", links.RESOLVES),
        ("https://elsewhere.example/news/", links.OUTSIDE),
        ("https://gazette.example/archive/", links.OUTSIDE),
        (f"{BASE}../archive/", links.OUTSIDE),
        ("mailto:desk@gazette.example", links.OUTSIDE),
        (
            f"{BASE}2021/missing/",
            Resolution("broken", "no such file in site/ (2021/missing/index.html)"),
        ),
        (
            f"{BASE}2020/talks",
            Resolution("broken", "site/2020/talks is a folder: end the link with /"),
        ),
        (
            f"{BASE}.hidden/",
            Resolution(
                "broken",
                "no file of site/ can answer it (a dot segment, an encoded slash or a dot-file)",
            ),
        ),
        (
            f"{BASE}feeds/tags/y/rss.xml",
            Resolution("broken", "no such file in feeds/ (tags/y/rss.xml)"),
        ),
    ],
)
def test_resolve(targets, url, resolution):
    assert links.resolve(targets, url) == resolution


def test_the_service_routes_answer_only_where_a_web_table_says_the_service_runs(site_dir):
    config = site_dir / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("[web]\n", ""), encoding="utf-8")
    targets = Targets.of(load_config(config))
    why = "a route of publisher serve, and publisher.toml has no [web] table"
    for route in ("subscribe", "confirm", "unsubscribe?token=abc"):
        assert links.resolve(targets, BASE + route) == Resolution("broken", why)


def test_with_pages_off_only_the_feeds_and_routes_are_resolved(site_dir):
    _append(site_dir / "publisher.toml", "\n[pages]\nenabled = false\n")
    site = load_config(site_dir / "publisher.toml")
    targets = Targets.of(site)
    assert links.resolve(targets, f"{BASE}2021/missing/") == links.UNCHECKED
    assert links.resolve(targets, f"{BASE}subscribe") == links.RESOLVES
    assert links.resolve(targets, f"{BASE}feeds/rss.xml") == Resolution(
        "broken", "no such file in feeds/ (rss.xml)"
    )


# -- the whole check, on real builds -----------------------------------------------------------


def _clean(site_dir):
    """The Vienna article's earlier report pointed at a page that exists (relatively)."""
    article = site_dir / "content" / "2020-06-22-vienna-talks.md"
    text = article.read_text(encoding="utf-8")
    article.write_text(
        text.replace("../../../2020/06/preview/", "../../../2021/03/observers/"), encoding="utf-8"
    )


def _add_image(site):
    """The image the Vienna article shows, put in place as any static file would be."""
    image = site.root / IMAGE
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"\xff\xd8\xff\xe0 a JPEG")


def _make_digest(site, now):
    add_subscribers(site, ["ada@example.org"], now)
    report = digests.send_digests(site, now=lambda: now + timedelta(hours=1))
    assert (report.made, report.sent) == ([1], 1)


@pytest.fixture
def clean_site(site_dir, now):
    """The basic site built, its image in place, and digest 1 made and sent."""
    _clean(site_dir)
    site = load_config(site_dir / "publisher.toml")
    build(site, now=now)
    _add_image(site)
    _make_digest(site, now)
    return site


def test_a_built_site_has_no_broken_link(clean_site):
    report = check_links(clean_site)
    assert report.broken == ()
    assert (report.feeds, report.pages, report.digests) == (18, 18, 1)
    assert report.pages_checked
    # Every page links to the home page, the stylesheet, the feeds and the form's route.
    assert report.checked > 18 * 3 + 18 * 8


def test_a_page_removed_by_hand_is_reported_by_everything_that_links_to_it(clean_site):
    (clean_site.site_dir / "2021" / "03" / "observers" / "index.html").unlink()
    why = "no such file in site/ (2021/03/observers/index.html)"
    absolute = [BrokenLink(where, OBSERVERS, why) for where in OBSERVERS_FEEDS]
    local = "/news/2021/03/observers/"
    assert check_links(clean_site).broken == (
        *absolute,
        BrokenLink(VIENNA, local, why),  # its "next article"
        BrokenLink(VIENNA, OBSERVERS, why),  # the body's relative link, made absolute
        BrokenLink("site/2022/08/fisheries/index.html", local, why),  # "previous article"
        BrokenLink("site/archive/2021/index.html", local, why),
        BrokenLink("site/digests/1/index.html", local, why),
        BrokenLink("site/index.html", local, why),
        BrokenLink("site/sitemap.xml", OBSERVERS, why),
        BrokenLink("site/tags/elections/index.html", local, why),
        BrokenLink("site/tags/europe/index.html", local, why),
        BrokenLink("digest 1", OBSERVERS, why),
    )


def test_a_digest_whose_article_page_was_deleted_is_reported_as_the_digest(clean_site):
    (clean_site.site_dir / "2022" / "08" / "fisheries" / "index.html").unlink()
    digest_lines = [b for b in check_links(clean_site).broken if not b.where.startswith("site/")]
    digest_lines = [b for b in digest_lines if not b.where.startswith("feeds/")]
    link = f"{BASE}2022/08/fisheries/"
    assert digest_lines == [
        BrokenLink("digest 1", link, "no such file in site/ (2022/08/fisheries/index.html)")
    ]


def test_a_feed_item_linking_to_a_page_no_build_can_make_is_reported(site_dir, now):
    _clean(site_dir)
    _write_article(
        site_dir,
        "2024-05-01-hidden.md",
        f'title: "Hidden"\ndate: "2024-05-01T10:00:00+02:00"\nlink: "{BASE}.drafts/hidden/"\n',
        "Body.",
    )
    site = load_config(site_dir / "publisher.toml")
    report = build(site, now=now)
    assert any(".drafts/hidden/ cannot be a page" in line for line in report.warnings)
    _add_image(site)
    why = "no file of site/ can answer it (a dot segment, an encoded slash or a dot-file)"
    link = f"{BASE}.drafts/hidden/"
    assert check_links(site).broken == (
        *(BrokenLink(f"feeds/{name}", link, why) for name in ("atom.xml", "feed.json", "rss.xml")),
        # The lists show it too, their cards linking to the page it could not have.
        BrokenLink("site/archive/2024/index.html", "/news/.drafts/hidden/", why),
        BrokenLink("site/index.html", "/news/.drafts/hidden/", why),
    )


def test_an_article_linking_to_a_missing_page_is_reported_in_its_page_and_feeds(site_dir, now):
    _clean(site_dir)
    _write_article(
        site_dir,
        "2024-05-01-pointer.md",
        'title: "Pointer"\ndate: "2024-05-01T10:00:00+02:00"\ntags: [vienna]\n',
        "See [what is gone](/news/missing/) and [elsewhere](https://elsewhere.example/x/).",
    )
    site = load_config(site_dir / "publisher.toml")
    build(site, now=now)
    _add_image(site)
    why = "no such file in site/ (missing/index.html)"
    missing = f"{BASE}missing/"
    assert check_links(site).broken == (
        BrokenLink("feeds/atom.xml", missing, why),
        BrokenLink("feeds/feed.json", missing, why),
        BrokenLink("feeds/rss.xml", missing, why),
        BrokenLink("feeds/tags/vienna/atom.xml", missing, why),
        BrokenLink("feeds/tags/vienna/feed.json", missing, why),
        BrokenLink("feeds/tags/vienna/rss.xml", missing, why),
        BrokenLink("site/2024/05/pointer/index.html", missing, why),
    )


def test_a_missing_image_is_reported_where_it_is_shown(site_dir, now):
    _clean(site_dir)
    site = load_config(site_dir / "publisher.toml")
    build(site, now=now)
    image = f"{BASE}2020/06/vienna-talks/images/delegations.jpg"
    why = "no such file in site/ (2020/06/vienna-talks/images/delegations.jpg)"
    shown_in = [
        f"feeds/{folder}{name}"
        for folder in ("", "tags/arms-control/", "tags/vienna/")
        for name in ("atom.xml", "feed.json", "rss.xml")
    ]
    assert check_links(site).broken == (
        *(BrokenLink(where, image, why) for where in shown_in),
        BrokenLink(VIENNA, image, why),
    )


def test_a_feed_damaged_by_hand_is_reported_and_the_others_still_checked(clean_site):
    (clean_site.output_dir / "tags" / "vienna" / "rss.xml").write_bytes(b"<rss><channel>")
    report = check_links(clean_site)
    ((broken,),) = [report.broken]
    assert broken.where == "feeds/tags/vienna/rss.xml"
    assert broken.link == ""
    assert broken.why.startswith("not well-formed XML (")
    assert report.feeds == 18


def test_with_pages_off_links_to_pages_are_not_followed(site_dir, now):
    _append(site_dir / "publisher.toml", "\n[pages]\nenabled = false\n")
    site = load_config(site_dir / "publisher.toml")
    build(site, now=now)
    _make_digest(site, now)
    report = check_links(site)
    assert report.broken == ()
    assert not report.pages_checked
    # The digest's web copy is beside the feeds; its links to pages are not followed.
    assert (report.feeds, report.pages, report.digests) == (18, 1, 1)
    (site.output_dir / "digests" / "1" / "index.html").unlink()
    assert check_links(site).broken == (
        BrokenLink(
            "digest 1", f"{BASE}feeds/digests/1/", "no such file in feeds/ (digests/1/index.html)"
        ),
    )


def test_a_site_never_built_is_told_to_build_first(site):
    with pytest.raises(OutputError) as error:
        check_links(site)
    assert str(error.value) == "site/: no such folder; run publisher build first"
    assert not site.site_dir.exists()
    assert not site.output_dir.exists()
    assert not site.state_dir.exists()


def test_folders_without_a_recorded_build_are_told_to_build_first(site):
    site.site_dir.mkdir()
    site.output_dir.mkdir()  # as a fresh checkout of a site with feeds/.gitkeep has it
    with pytest.raises(OutputError) as error:
        check_links(site)
    assert str(error.value) == "feeds/: no build recorded (no state yet); run publisher build first"
    assert not site.state_dir.exists()


def test_the_pages_of_a_paginated_list_link_to_each_other(site_dir, now):
    _clean(site_dir)
    _append(site_dir / "publisher.toml", "\n[pages]\nper_page = 1\n")
    _write_article(
        site_dir, "2024-05-01-more.md", 'title: "More"\ndate: "2024-05-01"\ntags: [europe]\n', "."
    )
    site = load_config(site_dir / "publisher.toml")
    build(site, now=now)
    _add_image(site)
    assert check_links(site).broken == ()
    middle = (site.site_dir / "page" / "2" / "index.html").read_text(encoding="utf-8")
    assert '<a rel="prev" href="/news/">' in middle
    assert '<a rel="next" href="/news/page/3/">' in middle
    europe = (site.site_dir / "tags" / "europe" / "page" / "2" / "index.html").read_text(
        encoding="utf-8"
    )
    assert '<a rel="prev" href="/news/tags/europe/">' in europe
