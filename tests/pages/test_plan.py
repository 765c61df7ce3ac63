"""pages.plan: where each page goes, which pages a site has, and what claims a path first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.config import load_config
from publisher.model import Tag
from publisher.pages import plan as pages_plan
from publisher.pages.plan import page_path, plan, url_of, url_under
from publisher.store import ArticleKey


@pytest.fixture
def gazette(site):
    return site  # base_url https://gazette.example/news/


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://gazette.example/news/2020/06/talks/", "2020/06/talks/index.html"),
        ("https://gazette.example/news/2020/talks.html", "2020/talks.html"),
        ("https://gazette.example/news/", "index.html"),
        ("https://gazette.example/news/caf%C3%A9/", "café/index.html"),
        ("https://gazette.example/news/a/?utm=x#top", "a/index.html"),
        # Links whose page is not ours to make, or that would leave the folder.
        ("https://elsewhere.example/news/a/", None),
        ("https://gazette.example/other/", None),
        ("https://gazette.example/news/../../etc/", None),
        ("https://gazette.example/news/a/%2e%2e/%2e%2e/b/", None),
        ("https://gazette.example/news/a%2F..%2F..%2Fb/", None),
        ("https://gazette.example/news/a%5C..%5Cb/", None),
        ("https://gazette.example/news/.hidden/", None),
        ("https://gazette.example/news/a//b/", None),
        ("https://gazette.example/news/a%00/", None),
    ],
)
def test_page_path(gazette, url, path):
    assert page_path(gazette, url) == path


def test_url_of_is_the_inverse_of_page_path(gazette):
    for path in ("index.html", "2020/06/talks/index.html", "café/index.html", "sitemap.xml"):
        assert page_path(gazette, url_of(gazette, path)) == path
    assert url_of(gazette, "tags/index.html") == "https://gazette.example/news/tags/"


# Plain characters, and every one the slow paths decode, quote or refuse.
_SEGMENTS = st.one_of(st.text(alphabet="ab9_-~.%2Ee#?\\\x00 é", max_size=6), st.just("index.html"))
_URL_PATHS = st.lists(_SEGMENTS, max_size=4).map("/".join)


@given(_URL_PATHS)
def test_the_quick_way_to_a_page_path_gives_what_decoding_gives(rest):
    root = "https://gazette.example/news/"
    assert pages_plan.path_under(root, root + rest) == pages_plan._decoded_path(rest)


@given(_URL_PATHS)
def test_the_quick_way_to_a_url_gives_what_quoting_gives(path):
    root = "https://gazette.example/news/"
    assert url_under(root, path) == root + quote(pages_plan._shown(path))


def _key(n: int, *, link: str | None = None, tags=("a",), path: str | None = None):
    date = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)
    return ArticleKey(
        f"urn:{n}",
        date,
        False,
        tuple(Tag(t, t) for t in tags),
        f"v{n}",
        link or f"https://gazette.example/news/{n}/",
        date,
        path or f"{n}.md",
    )


NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_the_home_and_tag_lists_are_paginated(gazette):
    keys = [_key(n, tags=("a", "b") if n % 2 else ("a",)) for n in range(23)]
    pages = {p.path: p for p in plan(gazette, keys, [], now=NOW).pages}
    home = [pages["index.html"], pages["page/2/index.html"], pages["page/3/index.html"]]
    assert [len(p.items) for p in home] == [10, 10, 3]
    assert [p.last for p in home] == [3, 3, 3]
    assert home[0].items[0] == "urn:22"  # newest first
    assert "page/4/index.html" not in pages
    assert [len(pages[p].items) for p in ("tags/b/index.html", "tags/b/page/2/index.html")] == [
        10,
        1,
    ]
    assert pages["tags/index.html"].entries == (("a", "a", 23), ("b", "b", 11))


def test_neighbours_are_the_older_and_newer_article(gazette):
    pages = {p.path: p for p in plan(gazette, [_key(n) for n in range(3)], [], now=NOW).pages}
    middle = pages["1/index.html"]
    assert (middle.previous, middle.following) == ("urn:0", "urn:2")
    assert pages["0/index.html"].previous is None
    assert pages["2/index.html"].following is None


def test_a_path_taken_goes_to_the_oldest_and_the_others_are_warned(gazette):
    taken = "https://gazette.example/news/same/"
    keys = [
        _key(1, link=taken, path="older.md"),
        _key(2, link=taken, path="newer.md"),
        _key(3, link="https://gazette.example/news/tags/", path="tags.md"),
        _key(4, link="https://gazette.example/news/feeds/x/", path="feed-like.md"),
        _key(5, link="https://gazette.example/news/a/%2e%2e/b/", path="dots.md"),
        _key(6, link="https://elsewhere.example/post/", path="external.md"),
    ]
    site_plan = plan(gazette, keys, [], now=NOW)
    articles = {p.path: p.items[0] for p in site_plan.pages if p.kind == "article"}
    assert articles == {"same/index.html": "urn:1"}
    assert site_plan.warnings == (
        "content/newer.md: its page https://gazette.example/news/same/ would replace "
        "content/older.md; give it another `link` or slug",
        "content/tags.md: its page https://gazette.example/news/tags/ would replace a page of the "
        "site; give it another `link` or slug",
        "content/feed-like.md: its page https://gazette.example/news/feeds/x/ would replace the "
        "feeds' folder; give it another `link` or slug",
        "content/dots.md: link: https://gazette.example/news/a/%2e%2e/b/ cannot be a page under "
        "[paths] site (a dot segment, an encoded slash or a dot-file); give it another link",
    )


def test_drafts_and_future_articles_get_no_page(gazette):
    future = _key(1)._replace(date=NOW + timedelta(days=1))
    draft = _key(2)._replace(is_draft=True)
    kinds = {p.kind for p in plan(gazette, [future, draft], [], now=NOW).pages}
    assert "article" not in kinds


def test_per_page_comes_from_the_config(site_dir):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[pages]\nper_page = 2\n", encoding="utf-8"
    )
    site = load_config(config)
    pages = {p.path for p in plan(site, [_key(n) for n in range(5)], [], now=NOW).pages}
    assert {"index.html", "page/2/index.html", "page/3/index.html"} <= pages
    assert "page/4/index.html" not in pages
