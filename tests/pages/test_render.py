"""pages.render: what an article's page says and carries, and hostile input kept harmless."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from support.builds import bump_mtime

from publisher.config import load_config
from publisher.errors import ConfigError
from publisher.pipelines.build import build

HOSTILE = """---
title: "<script>alert(1)</script> Talks <b>end</b> — محادثات فيينا 🕊️"
date: "2024-05-01T10:00:00+02:00"
author: "<img src=x onerror=alert(2)> Leyla <i>Aziz</i>"
tags: ["<svg onload=alert(3)>", "שלום", "🕊️ peace"]
summary: "A </script><script>alert(4)</script> summary & more"
---

Body with <script>alert(5)</script> a script,
<a href="javascript:alert(6)" onclick="alert(7)">a bad link</a>,
<img src="pic.png" onerror="alert(8)" alt="a picture"> and
<iframe src="https://evil.example/"></iframe> an iframe.
"""


class _Parsed(HTMLParser):
    """Every element and attribute of a page, and the text of its script elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, _tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def _hostile_site(site_dir):
    path = site_dir / "content" / "2024-05-01-hostile.md"
    path.write_text(HOSTILE, encoding="utf-8")
    bump_mtime(path)
    return load_config(site_dir / "publisher.toml")


def test_an_article_page_carries_its_metadata(site, now):
    build(site, now=now)
    html = (site.site_dir / "2022/08/fisheries/index.html").read_text(encoding="utf-8")
    page = _Parsed(html)
    metas = {a.get("property"): a.get("content") for t, a in page.tags if t == "meta"}
    assert metas["og:type"] == "article"
    assert metas["og:url"] == "https://gazette.example/news/2022/08/fisheries/"
    assert metas["og:title"] == "Pacific fisheries accord agreed in Tokyo"
    assert metas["article:published_time"] == "2022-08-09T14:00:00+09:00"
    links = [(a.get("rel"), a.get("type"), a.get("href")) for t, a in page.tags if t == "link"]
    assert ("canonical", None, "https://gazette.example/news/2022/08/fisheries/") in links
    alternates = {href for rel, _type, href in links if rel == "alternate"}
    feeds = "https://gazette.example/news/feeds/"
    assert alternates == {
        f"{feeds}{folder}{name}"
        for folder in ("", "tags/asia-pacific/")
        for name in ("rss.xml", "atom.xml", "feed.json")
    }
    (ld,) = page.scripts
    document = json.loads(ld)
    assert document["@type"] == "NewsArticle"
    assert document["headline"] == "Pacific fisheries accord agreed in Tokyo"
    assert [a["name"] for a in document["author"]] == ["Aiko Watanabe", "Tomás Ferreira"]
    times = [a.get("datetime") for t, a in page.tags if t == "time"]
    assert times[0] == "2022-08-09T14:00:00+09:00"
    assert ('rel="prev" href="/news/2021/03/observers/"') in html
    assert 'href="/news/tags/asia-pacific/" rel="tag"' in html
    assert "saury &amp; mackerel &lt;for nine years&gt;" in html  # the same HTML as the feeds


def test_markup_rtl_and_emoji_in_every_field_are_text_and_nothing_runs(site_dir, now):
    site = _hostile_site(site_dir)
    report = build(site, now=now)
    assert report.pages is not None
    written = list(site.site_dir.rglob("*.html"))
    assert written
    for path in written:
        html = path.read_text(encoding="utf-8")
        page = _Parsed(html)
        for tag, attributes in page.tags:
            assert tag not in ("iframe", "svg", "object", "embed"), (path, tag)
            assert tag != "script" or attributes.get("type") == "application/ld+json", path
            for name, value in attributes.items():
                assert not name.startswith("on"), (path, tag, name)
                assert not (value or "").strip().lower().startswith("javascript:"), path
        for script in page.scripts:
            json.loads(script)  # data, and nothing in it ends the element
            assert "</" not in script
    article = (site.site_dir / "2024/05/hostile/index.html").read_text(encoding="utf-8")
    assert "محادثات فيينا 🕊️" in article
    assert "Talks end" in article  # a title is plain text: its tags are gone
    assert 'dir="auto"' in article
    tag_pages = sorted(p.parent.name for p in (site.site_dir / "tags").glob("*/index.html"))
    assert "שלום" in tag_pages
    assert all("<" not in name and ">" not in name for name in tag_pages)


def test_nothing_is_written_outside_the_site_folder(site_dir, now):
    path = site_dir / "content" / "2024-05-02-escape.md"
    path.write_text(
        '---\ntitle: "Escape"\ndate: "2024-05-02T10:00:00Z"\n'
        'link: "https://gazette.example/news/%2e%2e/%2e%2e/escaped/"\n---\n\nText.\n',
        encoding="utf-8",
    )
    before = {p for p in site_dir.parent.rglob("*")}
    site = load_config(site_dir / "publisher.toml")
    report = build(site, now=now)
    made = {p for p in site_dir.parent.rglob("*")} - before
    for made_path in made:
        assert any(
            made_path.is_relative_to(folder)
            for folder in (site.site_dir, site.output_dir, site.state_dir)
        ), made_path
    assert not list(site_dir.parent.rglob("escaped"))
    assert any("content/2024-05-02-escape.md: link:" in line for line in report.warnings)


@pytest.mark.parametrize("pattern", ["../../{slug}/", "{year}/./{slug}/", "{slug}/..", "a\\{slug}"])
def test_a_permalink_pattern_that_climbs_out_is_refused(site_dir, pattern):
    config = site_dir / "publisher.toml"
    text = config.read_text(encoding="utf-8").replace(
        'base_url = "https://gazette.example/news/"',
        f'base_url = "https://gazette.example/news/"\npermalink = {json.dumps(pattern)}',
    )
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.lines() == [
        f"{config}: [site] permalink: must stay below base_url: no '.' or '..' parts, "
        f"no '\\' ({pattern!r})"
    ]


CODE_AND_TABLE = """---
title: "Wide things"
date: "2024-05-03T10:00:00+02:00"
---

<img src="chart.png" alt="<pre> and <table> in words">

| A | B |
|---|--:|
| 1 | 2 |

```
code
```
"""


def test_code_and_tables_on_a_page_can_be_reached_from_the_keyboard(site_dir, now):
    # They scroll sideways inside their box on a phone; a region that scrolls must take
    # the focus to be scrolled without a mouse (WCAG 2.1.1). The feeds' HTML is unchanged.
    path = site_dir / "content" / "2024-05-03-wide.md"
    path.write_text(CODE_AND_TABLE, encoding="utf-8")
    site = load_config(site_dir / "publisher.toml")
    build(site, now=now)
    html = (site.site_dir / "2024/05/wide/index.html").read_text(encoding="utf-8")
    elements = [(t, a) for t, a in _Parsed(html).tags if t in ("pre", "table", "img")]
    assert elements == [
        (
            "img",
            {"src": f"{site.base_url}2024/05/wide/chart.png", "alt": "<pre> and <table> in words"},
        ),
        ("table", {"tabindex": "0"}),
        ("pre", {"tabindex": "0"}),
    ]
    assert '<td style="text-align:right">2</td>' in html
    feed = (site.output_dir / "feed.json").read_text(encoding="utf-8")
    assert "tabindex" not in feed
    assert "<pre><code>code" in json.loads(feed)["items"][0]["content_html"]
