"""pipelines.build: whole builds, what they write and skip, and the quick path.

The quick path answers from the store when nothing can have changed since the last build.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.builds import RenderCounter, bump_mtime, file_contents, json_items
from support.clock import NOW
from support.strategies import BASIC, FILE_NAMES, SETTINGS, article_file

from publisher.config import SiteConfig, load_config
from publisher.pipelines.build import build, check


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


def test_build_writes_site_and_tag_feeds(site, now):
    report = build(site, now=now)
    names = sorted(str(p.relative_to(site.output_dir)) for p in site.output_dir.rglob("*.*"))
    tags = ["arms-control", "asia-pacific", "elections", "europe", "vienna"]
    expected = sorted(
        ["atom.xml", "feed.json", "rss.xml"]
        + [f"tags/{t}/{f}" for t in tags for f in ("atom.xml", "feed.json", "rss.xml")]
    )
    assert names == expected
    assert (report.loaded, report.published, report.drafts, report.scheduled) == (5, 3, 1, 1)
    assert report.skipped == 0
    assert len(report.written) == len(expected)


def test_second_build_writes_nothing_and_parses_nothing(site, now):
    build(site, now=now)
    before_mtimes = _mtimes(site.output_dir)
    before_bytes = file_contents(site.output_dir)
    report = build(site, now=now)
    assert report.written == ()
    assert report.parsed == 0
    assert _mtimes(site.output_dir) == before_mtimes
    assert file_contents(site.output_dir) == before_bytes


def test_output_is_byte_identical_from_a_fresh_state(site, now):
    build(site, now=now)
    first = file_contents(site.output_dir)
    (site.state_db).unlink()
    for extra in site.state_dir.glob("state.db-*"):
        extra.unlink()
    for path in site.output_dir.rglob("*.*"):
        path.unlink()
    build(site, now=now + timedelta(days=3))
    assert file_contents(site.output_dir) == first


def test_touching_a_file_without_changing_it_rewrites_nothing(site, now):
    build(site, now=now)
    before = _mtimes(site.output_dir)
    bump_mtime(site.content_dir / "2021-03-04-observers.md")
    report = build(site, now=now)
    assert report.written == ()
    assert report.parsed == 0
    assert _mtimes(site.output_dir) == before


def test_files_long_unchanged_take_the_quick_path(site, now):
    old = now.timestamp() - 3600
    for path in site.content_dir.iterdir():
        os.utime(path, (old, old))
    build(site, now=now)
    assert build(site, now=now).parsed == 0


def _no_indexing(monkeypatch) -> list[int]:
    """Record each call of the index stage, which the quick path never reaches."""
    from publisher.content import indexing

    calls: list[int] = []
    real = indexing.index_content

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(indexing, "index_content", counted)
    return calls


def test_the_build_after_an_edit_build_takes_the_quick_path(site, now, monkeypatch):
    """An edit saved just before a build leaves its file "racy" for the next build: that
    one reads the file again and, finding the bytes it indexed, answers from the store."""
    build(site, now=now)
    path = site.content_dir / "2021-03-04-observers.md"
    path.write_text(path.read_text(encoding="utf-8").replace("orderly", "ordered"), "utf-8")
    edited = build(site, now=now)
    assert edited.parsed == 1
    assert edited.written
    calls = _no_indexing(monkeypatch)
    before = _mtimes(site.output_dir)
    again = build(site, now=now)
    assert calls == []
    assert (again.written, again.parsed) == ((), 0)
    assert sorted(again.unchanged) == sorted(edited.written + edited.unchanged)
    assert _mtimes(site.output_dir) == before
    assert build(site, now=now).written == ()
    assert calls == []


def test_a_racy_file_changed_in_the_same_tick_is_read_after_a_quick_build(site, now):
    """The quick path that read a racy file again must not make a later same-size,
    same-mtime edit of it invisible."""
    path = site.content_dir / "2021-03-04-observers.md"
    path.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")  # modified just now
    build(site, now=now)
    build(site, now=now)  # the quick path, reading the racy file again
    before = path.stat()
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("orderly vote", "ordered vote"), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick, the same size
    assert path.stat().st_size == before.st_size
    report = build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    assert json_items(site)[link]["title"] == "Observers find an ordered vote"
    assert report.parsed == 1


def test_a_racy_file_that_cannot_be_read_again_ends_the_quick_path(site, now, monkeypatch):
    """The full build then reads it, and says what is wrong with it (here: nothing)."""
    from publisher.content import files
    from publisher.errors import ContentError, FieldProblem

    path = site.content_dir / "2021-03-04-observers.md"
    path.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")  # modified just now
    build(site, now=now)
    real = files.read_article
    failures: list[str] = []

    def fails_once(file, where, **kwargs):
        if not failures:
            failures.append(where)
            raise ContentError(where, [FieldProblem("file", "cannot be read (I/O error)")])
        return real(file, where, **kwargs)

    monkeypatch.setattr(files, "read_article", fails_once)
    calls = _no_indexing(monkeypatch)
    report = build(site, now=now)
    assert failures == ["content/2021-03-04-observers.md"]
    assert calls == [1]
    assert (report.written, report.problems) == ((), ())


def test_future_article_appears_on_the_first_build_after_its_date(site, now):
    build(site, now=now)
    link = "https://gazette.example/news/2031/01/year-ahead/"
    assert link not in json_items(site)
    from datetime import UTC, datetime

    report = build(site, now=datetime(2031, 1, 15, 7, 0, 1, tzinfo=UTC))
    assert link in json_items(site)
    assert report.published == 4


def test_check_reports_every_bad_file_and_writes_nothing(site):
    bad = site.content_dir / "2024-01-01-bad.md"
    bad.write_text("---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
    report = check(site)
    assert report.checked == 6
    assert [p.path for p in report.problems] == ["content/2024-01-01-bad.md"]
    assert not site.output_dir.exists()
    assert not site.state_dir.exists()


# -- incremental builds (issue: the cron job and the service) -------------------------


def test_no_change_renders_nothing(site, now, monkeypatch):
    build(site, now=now)
    counter = RenderCounter(monkeypatch)
    report = build(site, now=now)
    assert (report.parsed, counter.feeds, counter.bodies) == (0, [], 0)
    assert len(report.unchanged) == 18


def test_scheduled_article_is_picked_up_without_any_file_change(site, now, monkeypatch):
    from datetime import UTC, datetime

    build(site, now=now)
    counter = RenderCounter(monkeypatch)
    assert build(site, now=datetime(2031, 1, 15, 6, 59, tzinfo=UTC)).written == ()
    assert counter.feeds == []
    report = build(site, now=datetime(2031, 1, 15, 7, 0, tzinfo=UTC))
    assert "https://gazette.example/news/2031/01/year-ahead/" in json_items(site)
    assert report.published == 4


def test_a_damaged_or_missing_output_is_repaired(site, now):
    build(site, now=now)
    good = file_contents(site.output_dir)
    (site.output_dir / "atom.xml").unlink()
    (site.output_dir / "tags" / "vienna" / "rss.xml").write_bytes(b"<?xml version='1.0'?><trunc")
    report = build(site, now=now)
    assert sorted(report.written) == ["feeds/atom.xml", "feeds/tags/vienna/rss.xml"]
    assert file_contents(site.output_dir) == good


def _many_articles(site, count):
    for n in range(count):
        day = 1 + n % 28
        (site.content_dir / f"2019-01-{day:02d}-item-{n}.md").write_text(
            f'---\ntitle: "Item {n}"\ndate: "2019-01-{day:02d}T{n % 24:02d}:{n % 60:02d}:00"\n'
            f"tags: [t{n % 9}, common]\n---\n\nBody of item {n} with a [link](../n{n}/).\n",
            encoding="utf-8",
        )


@pytest.mark.parametrize(("max_items", "pools_expected"), [(50, 3), (5, 2)])
def test_parallel_and_sequential_builds_give_the_same_bytes(
    site_dir, now, monkeypatch, max_items, pools_expected
):
    """With 50 items a feed, the feeds' entry workers render nearly every body, each with
    its entries; with 5, the page workers render all but a few, each with its page (too
    few entries for the feeds to start workers)."""
    import multiprocessing

    from publisher.content import indexing
    from publisher.feeds import write
    from publisher.pages import write as pages_write

    real_get_context = multiprocessing.get_context
    pools: list[str] = []

    def counting_get_context(method):
        pools.append(method)
        return real_get_context(method)

    monkeypatch.setattr(multiprocessing, "get_context", counting_get_context)
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + f"\n[feeds]\nmax_items = {max_items}\n",
        encoding="utf-8",
    )
    site = load_config(config)
    _many_articles(site, indexing.PARALLEL_THRESHOLD + 20)
    report = build(site, now=now)  # big enough for worker processes on every step
    # Parsing, [the feeds' entries with their bodies,] the pages.
    assert pools == ["fork"] * pools_expected
    assert report.pages is not None
    assert report.pages.rendered >= pages_write.PARALLEL_RENDER_THRESHOLD
    in_parallel = (file_contents(site.output_dir), file_contents(site.site_dir))
    for folder in (site.output_dir, site.site_dir, site.state_dir):
        shutil.rmtree(folder)
    monkeypatch.setattr(indexing, "PARALLEL_THRESHOLD", 10**9)
    monkeypatch.setattr(write, "PARALLEL_RENDER_THRESHOLD", 10**9)
    monkeypatch.setattr(pages_write, "PARALLEL_RENDER_THRESHOLD", 10**9)
    build(site, now=now)
    assert pools == ["fork"] * pools_expected
    assert (file_contents(site.output_dir), file_contents(site.site_dir)) == in_parallel


# -- a whole site of bad articles -------------------------------------------------------

MB = 1024 * 1024

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


# -- any site builds into feeds that parse back -------------------------------------


def _check_feeds(output: Path) -> None:
    produced = sorted(p for p in output.rglob("*") if p.is_file())
    assert [p for p in produced if p.suffix not in (".xml", ".json")] == []
    assert {"rss.xml", "atom.xml", "feed.json"} <= {p.name for p in produced}
    for path in produced:
        data = path.read_bytes()
        if path.suffix == ".json":
            document = json.loads(data)
            for item in document["items"]:
                assert item["id"]
                assert item["title"]
                assert item["url"]
            continue
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, (path.relative_to(output), parsed.get("bozo_exception"))
        for entry in parsed.entries:
            assert entry.get("id"), path
            assert "title" in entry, path
            assert entry.get("link"), path


@SETTINGS
@given(files=st.lists(st.tuples(FILE_NAMES, article_file()), min_size=1, max_size=5))
def test_any_site_builds_into_feeds_that_parse(files):
    names = {name: data for name, data in files}  # a later file of the same name wins
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copy(BASIC, root / "publisher.toml")
        (root / "content").mkdir()
        for name, data in names.items():
            (root / "content" / name).write_bytes(data)
        site = load_config(root / "publisher.toml")

        report = build(site, now=NOW)

        assert report.loaded + report.skipped == len(names)
        for problem in report.problems:
            assert problem.lines
            assert all(line.startswith(f"{problem.path}: ") for line in problem.lines)
        _check_feeds(site.output_dir)
        assert list(site.output_dir.rglob("*.tmp")) == []
