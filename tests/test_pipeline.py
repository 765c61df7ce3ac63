"""End to end through build.build: incremental, stable ids, edits, last good versions."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

from publisher.config import SiteConfig
from publisher.pipelines.build import build, check


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _json_items(site: SiteConfig) -> dict[str, dict[str, object]]:
    document = json.loads((site.output_dir / "feed.json").read_text(encoding="utf-8"))
    return {item["url"]: item for item in document["items"]}


def _bump(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


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
    before_bytes = _contents(site.output_dir)
    report = build(site, now=now)
    assert report.written == ()
    assert report.parsed == 0
    assert _mtimes(site.output_dir) == before_mtimes
    assert _contents(site.output_dir) == before_bytes


def test_output_is_byte_identical_from_a_fresh_state(site, now):
    build(site, now=now)
    first = _contents(site.output_dir)
    (site.state_db).unlink()
    for extra in site.state_dir.glob("state.db-*"):
        extra.unlink()
    for path in site.output_dir.rglob("*.*"):
        path.unlink()
    build(site, now=now + timedelta(days=3))
    assert _contents(site.output_dir) == first


def test_touching_a_file_without_changing_it_rewrites_nothing(site, now):
    build(site, now=now)
    before = _mtimes(site.output_dir)
    _bump(site.content_dir / "2021-03-04-observers.md")
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


def test_future_article_appears_on_the_first_build_after_its_date(site, now):
    build(site, now=now)
    link = "https://gazette.example/news/2031/01/year-ahead/"
    assert link not in _json_items(site)
    from datetime import UTC, datetime

    report = build(site, now=datetime(2031, 1, 15, 7, 0, 1, tzinfo=UTC))
    assert link in _json_items(site)
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


class RenderCounter:
    def __init__(self, monkeypatch):
        from publisher.content import markup
        from publisher.feeds import render as feed_render

        self.feeds: list[str] = []
        self.bodies = 0
        real_render = feed_render.render
        real_body = markup.render_body

        def render(fmt, spec, items):
            self.feeds.append(f"{spec.folder or '.'}/{fmt}")
            return real_render(fmt, spec, items)

        def render_body(*args, **kwargs):
            self.bodies += 1
            return real_body(*args, **kwargs)

        monkeypatch.setattr(feed_render, "render", render)
        monkeypatch.setattr(markup, "render_body", render_body)


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
    assert "https://gazette.example/news/2031/01/year-ahead/" in _json_items(site)
    assert report.published == 4


def test_a_damaged_or_missing_output_is_repaired(site, now):
    build(site, now=now)
    good = _contents(site.output_dir)
    (site.output_dir / "atom.xml").unlink()
    (site.output_dir / "tags" / "vienna" / "rss.xml").write_bytes(b"<?xml version='1.0'?><trunc")
    report = build(site, now=now)
    assert sorted(report.written) == ["feeds/atom.xml", "feeds/tags/vienna/rss.xml"]
    assert _contents(site.output_dir) == good


def _many_articles(site, count):
    for n in range(count):
        day = 1 + n % 28
        (site.content_dir / f"2019-01-{day:02d}-item-{n}.md").write_text(
            f'---\ntitle: "Item {n}"\ndate: "2019-01-{day:02d}T{n % 24:02d}:{n % 60:02d}:00"\n'
            f"tags: [t{n % 9}, common]\n---\n\nBody of item {n} with a [link](../n{n}/).\n",
            encoding="utf-8",
        )


def test_parallel_and_sequential_builds_give_the_same_bytes(site, now, monkeypatch):
    import multiprocessing

    from publisher import parallel
    from publisher.content import bodies, indexing
    from publisher.feeds import write

    real_get_context = multiprocessing.get_context
    pools: list[str] = []

    def counting_get_context(method):
        pools.append(method)
        return real_get_context(method)

    monkeypatch.setattr(parallel.multiprocessing, "get_context", counting_get_context)
    _many_articles(site, indexing.PARALLEL_THRESHOLD + 20)
    report = build(site, now=now)  # big enough for worker processes on every step
    assert pools == ["fork", "fork", "fork"]  # parsing, Markdown, feeds
    assert len(report.written) >= write.PARALLEL_RENDER_THRESHOLD
    in_parallel = _contents(site.output_dir)
    for folder in (site.output_dir, site.state_dir):
        shutil.rmtree(folder)
    monkeypatch.setattr(indexing, "PARALLEL_THRESHOLD", 10**9)
    monkeypatch.setattr(bodies, "PARALLEL_HTML_THRESHOLD", 10**9)
    monkeypatch.setattr(write, "PARALLEL_RENDER_THRESHOLD", 10**9)
    build(site, now=now)
    assert pools == ["fork", "fork", "fork"]
    assert _contents(site.output_dir) == in_parallel
