"""pages.write: the pages a build renders and writes, counted, for each kind of change.

The test site publishes three articles (Vienna 2020, observers 2021, fisheries 2022):
each change must rewrite the article's page and only the list pages that show it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest
from support.builds import bump_mtime, file_contents
from support.paths import SITES
from support.processes import ENV

from publisher.config import load_config
from publisher.pages import render
from publisher.pipelines.build import build

VIENNA = "2020/06/vienna-talks/index.html"
OBSERVERS = "2021/03/observers/index.html"
FISHERIES = "2022/08/fisheries/index.html"
ALL_PAGES = {
    VIENNA,
    OBSERVERS,
    FISHERIES,
    "index.html",
    "404.html",
    "style.css",
    "sitemap.xml",
    "tags/index.html",
    "tags/arms-control/index.html",
    "tags/vienna/index.html",
    "tags/elections/index.html",
    "tags/europe/index.html",
    "tags/asia-pacific/index.html",
    "archive/index.html",
    "archive/2020/index.html",
    "archive/2021/index.html",
    "archive/2022/index.html",
    "digests/index.html",
}


@pytest.fixture
def renders(monkeypatch):
    """The paths of the pages rendered, in order (the site is too small for worker processes)."""
    rendered: list[str] = []
    real = render.PageRenderer.render

    def counting(self, page, *args, **kwargs):
        rendered.append(page.path)
        return real(self, page, *args, **kwargs)

    monkeypatch.setattr(render.PageRenderer, "render", counting)
    return rendered


def _pages(site):
    return {str(p.relative_to(site.site_dir)) for p in site.site_dir.rglob("*") if p.is_file()}


def _rewrite(path, old, new):
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    bump_mtime(path)


def test_a_cold_build_renders_and_writes_every_page_once(site, now, renders):
    report = build(site, now=now)
    assert report.pages is not None
    assert sorted(renders) == sorted(ALL_PAGES)
    assert set(report.pages.written) == ALL_PAGES == _pages(site)
    assert report.pages.rendered == len(ALL_PAGES)
    assert (report.pages.unchanged, report.pages.removed) == (0, ())


def test_a_build_with_nothing_new_renders_and_writes_no_page(site, now, renders):
    build(site, now=now)
    before = {p: (site.site_dir / p).stat().st_mtime_ns for p in ALL_PAGES}
    renders.clear()
    report = build(site, now=now + timedelta(minutes=5))
    assert renders == []
    assert report.pages is not None
    assert (report.pages.written, report.pages.unchanged) == ((), len(ALL_PAGES))
    assert {p: (site.site_dir / p).stat().st_mtime_ns for p in ALL_PAGES} == before


def test_one_edit_rewrites_its_page_its_neighbours_and_the_lists_that_show_it(site, now, renders):
    build(site, now=now)
    renders.clear()
    _rewrite(site.content_dir / "2021-03-04-observers.md", "orderly vote", "calm vote")
    report = build(site, now=now + timedelta(minutes=5))
    shown_in = {
        OBSERVERS,
        VIENNA,  # its neighbours show its title
        FISHERIES,
        "index.html",
        "tags/elections/index.html",
        "tags/europe/index.html",
        "archive/2021/index.html",
        "sitemap.xml",  # its last change
    }
    assert sorted(renders) == sorted(shown_in)
    assert report.pages is not None
    assert set(report.pages.written) == shown_in
    assert report.pages.removed == ()
    assert "calm vote" in (site.site_dir / OBSERVERS).read_text(encoding="utf-8")
    assert "calm vote" in (site.site_dir / VIENNA).read_text(encoding="utf-8")


def test_a_rename_moves_the_page_and_rewrites_what_links_to_it(site, now, renders):
    build(site, now=now)
    renders.clear()
    old = site.content_dir / "2021-03-04-observers.md"
    old.rename(site.content_dir / "2021-03-04-orderly-vote.md")  # a new slug: a new link
    report = build(site, now=now + timedelta(minutes=5))
    moved = "2021/03/orderly-vote/index.html"
    assert report.pages is not None
    assert report.pages.removed == (OBSERVERS,)
    assert not (site.site_dir / "2021/03/observers").exists()  # its empty folder too
    expected = {
        moved,
        VIENNA,
        FISHERIES,
        "index.html",
        "tags/elections/index.html",
        "tags/europe/index.html",
        "archive/2021/index.html",
        "sitemap.xml",
    }
    assert set(report.pages.written) == expected
    assert sorted(renders) == sorted(expected)


@pytest.mark.parametrize("how", ["deleted", "drafted"])
def test_a_deleted_or_drafted_article_loses_its_page(site, now, renders, how):
    build(site, now=now)
    renders.clear()
    path = site.content_dir / "2021-03-04-observers.md"
    if how == "deleted":
        path.unlink()
    else:
        _rewrite(path, "tags: [elections, europe]", "tags: [elections, europe]\ndraft: true")
    report = build(site, now=now + timedelta(minutes=5))
    gone = {OBSERVERS, "tags/elections/index.html", "tags/europe/index.html"}
    gone.add("archive/2021/index.html")
    assert report.pages is not None
    assert set(report.pages.removed) == gone
    assert _pages(site) == ALL_PAGES - gone
    rewritten = {
        VIENNA,
        FISHERIES,  # their neighbour is now each other
        "index.html",
        "tags/index.html",
        "archive/index.html",
        "sitemap.xml",
    }
    assert set(report.pages.written) == rewritten
    assert sorted(renders) == sorted(rewritten)
    assert "Observers" not in (site.site_dir / "index.html").read_text(encoding="utf-8")


def test_a_tag_removed_from_an_article_takes_its_page_when_it_was_the_last(site, now, renders):
    build(site, now=now)
    renders.clear()
    _rewrite(
        site.content_dir / "2021-03-04-observers.md",
        "tags: [elections, europe]",
        "tags: [europe]",
    )
    report = build(site, now=now + timedelta(minutes=5))
    assert report.pages is not None
    assert report.pages.removed == ("tags/elections/index.html",)
    assert set(report.pages.written) == {OBSERVERS, "tags/index.html", "sitemap.xml"}
    # What shows the article is rendered again (its version changed), and written only
    # where its bytes changed: no card shows tags.
    assert sorted(renders) == sorted(
        [
            OBSERVERS,
            VIENNA,
            FISHERIES,
            "index.html",
            "tags/index.html",
            "tags/europe/index.html",
            "archive/2021/index.html",
            "sitemap.xml",  # the tag's page is gone from it
        ]
    )
    assert report.pages.unchanged == len(ALL_PAGES) - 1 - 3


def test_a_page_someone_changed_or_removed_is_made_again(site, now, renders):
    build(site, now=now)
    before = file_contents(site.site_dir)
    (site.site_dir / VIENNA).write_text("defaced", encoding="utf-8")
    (site.site_dir / "tags" / "europe" / "index.html").unlink()
    renders.clear()
    report = build(site, now=now + timedelta(minutes=5))
    assert sorted(renders) == sorted([VIENNA, "tags/europe/index.html"])
    assert report.pages is not None
    assert set(report.pages.written) == {VIENNA, "tags/europe/index.html"}
    assert file_contents(site.site_dir) == before


def test_the_same_inputs_give_the_same_bytes_from_a_fresh_state(site, now):
    build(site, now=now)
    first = file_contents(site.site_dir)
    for folder in (site.site_dir, site.output_dir, site.state_dir):
        shutil.rmtree(folder)
    build(site, now=now + timedelta(days=3))  # the clock reaches no page
    assert file_contents(site.site_dir) == first


def test_pages_turned_off_are_removed_and_nothing_else(site_dir, now):
    site = load_config(site_dir / "publisher.toml")
    build(site, now=now)
    own = site.site_dir / "images" / "logo.png"  # a file of the operator's own
    own.parent.mkdir()
    own.write_bytes(b"\x89PNG")
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[pages]\nenabled = false\n", encoding="utf-8"
    )
    site = load_config(config)
    report = build(site, now=now + timedelta(minutes=5))
    assert report.pages is not None
    assert report.pages.removed == tuple(sorted(ALL_PAGES))
    assert _pages(site) == {"images/logo.png"}
    again = build(site, now=now + timedelta(minutes=10))
    assert again.pages is None
    assert again.written == ()


# A no-change build in a fresh interpreter: which template, feed, parsing and worker
# libraries it imported, and which of the writers.
IMPORTED = """
import sys
from publisher.cli import cli
cli(["--config", sys.argv[1], "build"], standalone_mode=False)
heavy = ("jinja2", "feedgen", "mjml", "lxml", "yaml", "cmarkgfm", "nh3", "multiprocessing",
    "publisher.feeds.write", "publisher.pages.write", "publisher.pages.memo")
print(sorted(name for name in heavy if name in sys.modules))
"""


def test_a_build_with_nothing_new_imports_no_template_or_parsing_machinery(tmp_path):
    site_dir = shutil.copytree(SITES / "basic", tmp_path / "basic")
    command = [sys.executable, "-c", IMPORTED, str(site_dir / "publisher.toml")]
    first = subprocess.run(command, capture_output=True, text=True, env=ENV, check=True)
    assert "jinja2" in first.stdout  # the first build rendered its pages
    assert "yaml" in first.stdout  # and parsed its articles
    assert "publisher.pages.write" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, env=ENV, check=True)
    assert again.stdout.splitlines()[-1] == "[]", again.stdout
    assert "0 pages written" in again.stdout


def test_the_page_and_feed_writers_do_not_import_urllib_request():
    """17 ms of every build that renders a page, for nothing a build sends (in a fresh
    interpreter: the test run itself has imported it long since)."""
    code = (
        "import sys\n"
        "import publisher.pages.render, publisher.pages.write, publisher.feeds.write\n"
        "print('urllib.request' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("batch", [None, 2], ids=["one-batch", "batches-on-workers"])
def test_a_killed_build_leaves_no_half_page(site, now, monkeypatch, batch):
    from publisher import output
    from publisher.pages import write

    if batch is not None:  # the workers render the next batch while one is renamed
        monkeypatch.setattr(write, "BATCH", batch)
        monkeypatch.setattr(write, "PARALLEL_RENDER_THRESHOLD", 1)
    build(site, now=now)
    before = file_contents(site.site_dir)
    _rewrite(site.content_dir / "2021-03-04-observers.md", "orderly vote", "calm vote")
    real_replace = os.replace

    def dying_replace(src, dst):
        if str(dst).endswith(VIENNA):
            raise KeyboardInterrupt  # the build stops between two renames
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        build(site, now=now + timedelta(minutes=5))
    monkeypatch.setattr(output.os, "replace", real_replace)
    at_kill = file_contents(site.site_dir)
    assert not [p for p in site.site_dir.rglob(".*") if p.is_file()]  # no temporary file left
    assert at_kill[VIENNA] == before[VIENNA]
    build(site, now=now + timedelta(minutes=10))
    after = file_contents(site.site_dir)
    assert "calm vote" in after[VIENNA].decode()
    # Every page was whole when the build died: the old one, or the new one.
    assert at_kill.keys() == after.keys()
    for path, data in at_kill.items():
        assert data in (before[path], after[path]), path
