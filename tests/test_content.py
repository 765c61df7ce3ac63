"""The article files: every bad input and its exact message, and the markup helpers."""

from __future__ import annotations

import json

import pytest

from publisher.config import SiteConfig, load_config
from publisher.pipelines.build import build, check

MB = 1024 * 1024


# -- a whole site of bad articles -------------------------------------------------------

BAD_ARTICLES = {
    "author-and-authors.md": ["authors: give either author or authors, not both"],
    "date-in-words.md": [
        "date: not an ISO 8601 date ('May 1st'); "
        "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'"
    ],
    "draft-as-text.md": ["draft: expected true or false, got text ('yes')"],
    "empty.md": ["file: empty"],
    "huge.md": ["file: 20.0 MB is over the 5 MB limit for one article"],
    "id-not-a-uri.md": [
        "id: expected an absolute URI such as 'urn:uuid:…' or "
        "'tag:example.org,2020:post' ('/articles/17')"
    ],
    "invalid-yaml.md": [
        "front matter: invalid YAML at line 3, column 5: did not find expected ',' or ']'"
    ],
    "link-relative.md": ["link: expected an absolute http(s) URL ('/relative')"],
    "misspelt-title.md": [
        "title: missing (required) (did you mean to write 'title' instead of 'tilte'?)"
    ],
    "no-front-matter.md": [
        "front matter: missing: the file must start with a line '---', then YAML, then '---'"
    ],
    "no-title-no-date.md": ["title: missing (required)", "date: missing (required)"],
    "not-utf8.md": ["file: not valid UTF-8 (byte 0xe9 at offset 15)"],
    "slug-escapes.md": ["slug: use lower-case letters, digits and '-' only ('../../etc')"],
    "tag-escapes.md": ["tags: '../../etc' may not contain '/', '\\' or '..' (tags name folders)"],
    "tag-with-slash.md": ["tags: 'a/b' may not contain '/', '\\' or '..' (tags name folders)"],
    "title-list.md": ["title: expected text, got a list (['Harbour', 'storm'])"],
    "unclosed-front-matter.md": [
        "front matter: not closed: add a line '---' after the front matter"
    ],
    "updated-before-date.md": [
        "updated: 2024-05-02T10:00:00+02:00 is before date 2024-05-03T10:00:00+02:00"
    ],
}


def _expected_problems() -> dict[str, tuple[str, ...]]:
    return {
        f"content/{name}": tuple(f"content/{name}: {line}" for line in lines)
        for name, lines in BAD_ARTICLES.items()
    }


@pytest.fixture
def bad_site(make_site) -> SiteConfig:
    """tests/sites/bad-articles plus a 20 MB article (too big to keep in the repository)."""
    folder = make_site("bad-articles")
    with (folder / "content" / "huge.md").open("wb") as handle:
        handle.write(b'---\ntitle: "Huge"\ndate: "2024-05-03"\n---\n')
        handle.write(b"x" * (20 * MB - handle.tell()))
    return load_config(folder / "publisher.toml")


def test_build_publishes_good_articles_and_reports_every_bad_file(bad_site, now):
    site = bad_site
    report = build(site, now=now)

    assert {p.path: p.lines for p in report.problems} == _expected_problems()
    assert not any(p.kept_previous for p in report.problems)
    assert (report.loaded, report.published, report.skipped) == (2, 2, len(BAD_ARTICLES))
    document = json.loads((site.output_dir / "feed.json").read_text(encoding="utf-8"))
    assert [item["title"] for item in document["items"]] == [
        "New ferry timetable",
        "Harbour reopens after the storm",
    ]
    assert sorted(p.name for p in (site.output_dir / "tags").iterdir()) == [
        "transport",
        "vienna",
        "weather",
    ]
    assert list(site.output_dir.rglob("*.tmp")) == []
    assert list(site.output_dir.rglob(".*")) == []


def test_check_reports_the_same_lines_as_build(bad_site):
    site = bad_site
    report = check(site)
    assert report.checked == len(BAD_ARTICLES) + 2
    assert {p.path: p.lines for p in report.problems} == _expected_problems()
    assert not site.output_dir.exists()


def test_a_second_build_reports_the_problems_again_without_parsing(bad_site, now):
    site = bad_site
    first = build(site, now=now)
    again = build(site, now=now)
    assert again.parsed == 0
    assert again.written == ()
    assert {p.path: p.lines for p in again.problems} == {p.path: p.lines for p in first.problems}
