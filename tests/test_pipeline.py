"""End to end through build.build: incremental, stable ids, edits, last good versions."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest

from publisher.config import SiteConfig, load_config
from publisher.content import markup
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


def test_edit_keeps_id_and_moves_updated(site, now):
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    before = _json_items(site)[link]
    assert "date_modified" not in before
    path = site.content_dir / "2021-03-04-observers.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("find an orderly vote", "find an orderly, calm vote").replace(
            "count transparent.", "count transparent and quick."
        ),
        encoding="utf-8",
    )
    _bump(path)
    later = now + timedelta(hours=5)
    report = build(site, now=later)
    assert report.parsed == 1
    after = _json_items(site)[link]
    assert after["id"] == before["id"]
    assert after["title"] == "Observers find an orderly, calm vote"
    assert after["date_modified"] == later.isoformat(timespec="seconds")
    parsed = feedparser.parse((site.output_dir / "atom.xml").read_bytes())
    entry = next(e for e in parsed.entries if e.link == link)
    assert entry.id == before["id"]
    assert entry.updated_parsed[:5] == later.utctimetuple()[:5]


def test_changing_only_tags_does_not_move_updated(site, now):
    build(site, now=now)
    path = site.content_dir / "2021-03-04-observers.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("[elections, europe]", "[elections]"),
        encoding="utf-8",
    )
    _bump(path)
    build(site, now=now + timedelta(hours=1))
    item = _json_items(site)["https://gazette.example/news/2021/03/observers/"]
    assert "date_modified" not in item
    assert not (site.output_dir / "tags" / "europe").exists()


def test_removing_the_date_keeps_the_last_good_version(site, now):
    build(site, now=now)
    link = "https://gazette.example/news/2020/06/vienna-talks/"
    before = _json_items(site)[link]
    path = site.content_dir / "2020-06-22-vienna-talks.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('date: "2020-06-22T19:40:00+02:00"\n', ""), encoding="utf-8")
    _bump(path)
    report = build(site, now=now)
    assert [p.path for p in report.problems] == ["content/2020-06-22-vienna-talks.md"]
    assert report.problems[0].kept_previous
    assert report.problems[0].lines == (
        "content/2020-06-22-vienna-talks.md: date: missing (required)",
    )
    assert _json_items(site)[link] == before
    # The problem is reported again by the next (no-change) run, without parsing.
    again = build(site, now=now)
    assert again.parsed == 0
    assert [p.lines for p in again.problems] == [p.lines for p in report.problems]


def test_deleting_a_file_removes_it_from_the_feeds(site, now):
    build(site, now=now)
    (site.content_dir / "2022-08-09-fisheries.txt").unlink()
    report = build(site, now=now)
    assert "https://gazette.example/news/2022/08/fisheries/" not in _json_items(site)
    assert not (site.output_dir / "tags" / "asia-pacific").exists()
    assert sorted(report.removed) == [
        f"feeds/tags/asia-pacific/{name}" for name in ("atom.xml", "feed.json", "rss.xml")
    ]


def test_renamed_file_keeps_its_id(site, now):
    build(site, now=now)
    link_before = "https://gazette.example/news/2021/03/observers/"
    article_id = _json_items(site)[link_before]["id"]
    source = site.content_dir / "2021-03-04-observers.md"
    source.rename(site.content_dir / "2021-03-04-election-observers.md")
    build(site, now=now)
    items = _json_items(site)
    assert link_before not in items
    assert items["https://gazette.example/news/2021/03/election-observers/"]["id"] == article_id


def _retitle(path: Path, old: str, new: str, *, to: Path, body_edit: bool = False) -> None:
    text = path.read_text(encoding="utf-8").replace(old, new)
    if body_edit:
        text = text.replace("the count transparent", "the count entirely transparent")
    path.unlink()
    to.write_text(text, encoding="utf-8")


def test_renamed_and_retitled_file_keeps_its_id(site, now):
    """Identity rests on the body when there is no id field: the title and slug may both move."""
    build(site, now=now)
    before = _json_items(site)["https://gazette.example/news/2021/03/observers/"]
    _retitle(
        site.content_dir / "2021-03-04-observers.md",
        "Observers find an orderly vote",
        "Observers find a calm vote",
        to=site.content_dir / "2021-03-04-calm-vote.md",
    )
    report = build(site, now=now + timedelta(hours=1))
    items = _json_items(site)
    after = items["https://gazette.example/news/2021/03/calm-vote/"]
    assert (after["id"], after["title"]) == (before["id"], "Observers find a calm vote")
    assert [item["id"] for item in items.values()].count(before["id"]) == 1
    assert len(items) == 3
    assert report.warnings == ()


def test_identity_lost_in_one_build_is_reported_with_the_id_to_give(site, now):
    build(site, now=now)
    before = _json_items(site)["https://gazette.example/news/2021/03/observers/"]
    _retitle(
        site.content_dir / "2021-03-04-observers.md",
        "Observers find an orderly vote",
        "Observers find a calm vote",
        to=site.content_dir / "2021-03-04-calm-vote.md",
        body_edit=True,
    )
    report = build(site, now=now + timedelta(hours=1))
    assert report.warnings == (
        "content/2021-03-04-calm-vote.md: looks like content/2021-03-04-observers.md that "
        f"disappeared in this build; give it `id: {before['id']}` to keep its identity",
    )
    path = site.content_dir / "2021-03-04-calm-vote.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("---\n", f"---\nid: {before['id']}\n", 1),
        encoding="utf-8",
    )
    repaired = build(site, now=now + timedelta(hours=2))
    assert repaired.warnings == ()
    after = _json_items(site)["https://gazette.example/news/2021/03/calm-vote/"]
    assert after["id"] == before["id"]


def test_a_copy_of_an_article_gets_an_id_of_its_own(site, now):
    build(site, now=now)
    source = site.content_dir / "2021-03-04-observers.md"
    before = _json_items(site)["https://gazette.example/news/2021/03/observers/"]["id"]
    text = source.read_text(encoding="utf-8")
    source.unlink()
    for name in ("2021-03-04-first-copy.md", "2021-03-04-second-copy.md"):
        (site.content_dir / name).write_text(text, encoding="utf-8")
    report = build(site, now=now)
    assert report.problems == ()
    items = _json_items(site)
    ids = [
        items[f"https://gazette.example/news/2021/03/{n}-copy/"]["id"] for n in ("first", "second")
    ]
    assert ids[0] == before
    assert ids[1] != before


def test_a_broken_file_renamed_keeps_its_article(site, now):
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    before = _json_items(site)[link]["id"]
    source = site.content_dir / "2021-03-04-observers.md"
    source.write_text(source.read_text(encoding="utf-8").replace("date: ", "dated: "))
    build(site, now=now)
    source.rename(site.content_dir / "2021-03-04-renamed.md")
    report = build(site, now=now)
    assert [(p.path, p.kept_previous) for p in report.problems] == [
        ("content/2021-03-04-renamed.md", True)
    ]
    assert _json_items(site)[link]["id"] == before  # its last good version, still
    renamed = site.content_dir / "2021-03-04-renamed.md"
    renamed.write_text(renamed.read_text(encoding="utf-8").replace("dated: ", "date: "))
    build(site, now=now)
    assert _json_items(site)["https://gazette.example/news/2021/03/renamed/"]["id"] == before


def test_an_edit_in_the_same_clock_tick_as_the_build_is_not_missed(site, now):
    """Timestamps move in ticks: an edit that keeps size and mtime must still be read."""
    path = site.content_dir / "2021-03-04-observers.md"
    path.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")  # modified just now
    build(site, now=now)
    before = path.stat()
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("orderly vote", "ordered vote"), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick, the same size
    assert path.stat().st_size == before.st_size
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    assert _json_items(site)[link]["title"] == "Observers find an ordered vote"


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


def test_duplicate_explicit_ids_keep_the_first_file(site, now):
    for name in ("2021-03-04-observers.md", "2022-08-09-fisheries.txt"):
        path = site.content_dir / name
        path.write_text(
            path.read_text(encoding="utf-8").replace(
                "---\n", "---\nid: tag:gazette.example,2021:same\n", 1
            ),
            encoding="utf-8",
        )
    report = build(site, now=now)
    assert [p.lines for p in report.problems] == [
        (
            "content/2022-08-09-fisheries.txt: id: 'tag:gazette.example,2021:same' is already used "
            "by content/2021-03-04-observers.md",
        )
    ]
    ids = [item["id"] for item in _json_items(site).values()]
    assert ids.count("tag:gazette.example,2021:same") == 1
    assert check(site).problems[0].lines == report.problems[0].lines


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


def test_one_edit_renders_only_the_feeds_that_hold_it(site, now, monkeypatch):
    build(site, now=now)
    counter = RenderCounter(monkeypatch)
    path = site.content_dir / "2022-08-09-fisheries.txt"
    path.write_text(
        path.read_text(encoding="utf-8").replace("nine years", "ten years"), encoding="utf-8"
    )
    _bump(path)
    report = build(site, now=now)
    assert report.parsed == 1
    assert sorted(counter.feeds) == sorted(
        f"{folder}/{fmt}"
        for folder in (".", "tags/asia-pacific")
        for fmt in ("rss", "atom", "json")
    )
    assert counter.bodies == 1  # the others come from the cache
    assert len(report.written) == 6


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


def test_a_build_killed_between_two_feed_files_is_repaired_by_the_next(site, now, monkeypatch):
    from publisher.feeds import render

    build(site, now=now)
    path = site.content_dir / "2020-06-22-vienna-talks.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Arms talks", "Arms control talks"),
        encoding="utf-8",
    )
    _bump(path)
    real_render = render.render
    calls = []

    def dying_render(fmt, spec, items):
        calls.append(fmt)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the process were killed here
        return real_render(fmt, spec, items)

    # A twin of the site, built without interruption, gives the expected bytes.
    twin_dir = site.root.parent / "twin"
    shutil.copytree(site.root, twin_dir)
    twin = load_config(twin_dir / "publisher.toml")
    build(twin, now=now)
    monkeypatch.setattr(render, "render", dying_render)
    with pytest.raises(KeyboardInterrupt):
        build(site, now=now)
    monkeypatch.setattr(render, "render", real_render)
    build(site, now=now)
    repaired = _contents(site.output_dir)
    assert repaired == _contents(twin.output_dir)
    assert b"Arms control talks" in repaired["rss.xml"]


def test_lost_state_keeps_published_ids(site, now):
    # A file moved to a sub-folder keeps its link but would get a new name-based
    # id; after the state is lost, its id comes back from the published feeds.
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    article_id = _json_items(site)[link]["id"]
    (site.content_dir / "2021").mkdir()
    (site.content_dir / "2021-03-04-observers.md").rename(
        site.content_dir / "2021" / "2021-03-04-observers.md"
    )
    build(site, now=now)
    assert _json_items(site)[link]["id"] == article_id
    for item in site.state_dir.iterdir():
        item.unlink()
    report = build(site, now=now)
    assert _json_items(site)[link]["id"] == article_id
    assert report.written == ()  # readers see nothing new


def test_a_file_changing_while_it_is_read_is_read_again(site, now, monkeypatch):
    import os

    path = site.content_dir / "2021-03-04-observers.md"
    real_read = os.read
    reads = []

    def read_during_edit(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        if not reads and os.readlink(f"/proc/self/fd/{fd}") == str(path):
            reads.append(1)
            path.write_text(
                data.decode().replace("orderly vote", "orderly, final vote"), encoding="utf-8"
            )
            _bump(path)
        return data

    monkeypatch.setattr(os, "read", read_during_edit)
    build(site, now=now)
    assert reads == [1]
    item = _json_items(site)["https://gazette.example/news/2021/03/observers/"]
    assert item["title"] == "Observers find an orderly, final vote"
    monkeypatch.setattr(os, "read", real_read)
    assert build(site, now=now).parsed == 0  # the stored stat is that of the bytes parsed


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


def test_a_last_good_version_never_rendered_goes_out_as_its_summary(site_dir, now, caplog):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[feeds]\nmax_items = 1\ntag_feeds = false\n",
        encoding="utf-8",
    )
    site = load_config(config)
    build(site, now=now)  # only the newest article (fisheries) is rendered
    older = site.content_dir / "2021-03-04-observers.md"
    older.write_text("---\ntitle: broken\n---\n", encoding="utf-8")
    _bump(older)
    (site.content_dir / "2022-08-09-fisheries.txt").unlink()
    (site.content_dir / "2031-01-15-year-ahead.md").unlink()
    build(site, now=now)
    item = _json_items(site)["https://gazette.example/news/2021/03/observers/"]
    assert item["title"] == "Observers find an orderly vote"  # the last good version
    assert item["content_text"] == "Monitors praised the count but criticised the campaign."
    assert "cannot render its last good version; summary only" in caplog.text


def test_a_file_broken_then_renamed_before_a_build_keeps_its_article(site, now):
    """Found by the exactly-once state machine: its bytes changed, its body did not."""
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    before = _json_items(site)[link]["id"]
    source = site.content_dir / "2021-03-04-observers.md"
    source.write_text(source.read_text(encoding="utf-8").replace("date: ", "dated: "))
    renamed = site.content_dir / "2021-03-04-renamed.md"
    source.rename(renamed)
    report = build(site, now=now)
    assert [(p.path, p.kept_previous) for p in report.problems] == [
        ("content/2021-03-04-renamed.md", True)
    ]
    renamed.write_text(renamed.read_text(encoding="utf-8").replace("dated: ", "date: "))
    build(site, now=now)
    assert _json_items(site)["https://gazette.example/news/2021/03/renamed/"]["id"] == before


def test_a_file_rewritten_while_broken_then_renamed_keeps_its_article(site, now):
    """Found by the exactly-once state machine: the body to recognise is the file's last one."""
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    before = _json_items(site)[link]["id"]
    source = site.content_dir / "2021-03-04-observers.md"
    text = source.read_text(encoding="utf-8").replace("calm", "calm and quick")
    source.write_text(text.replace("date: ", "dated: "), encoding="utf-8")
    build(site, now=now)  # broken: its last good version stays, with the old body
    source.write_text(text, encoding="utf-8")
    renamed = site.content_dir / "2021-03-04-renamed.md"
    source.rename(renamed)
    build(site, now=now)
    assert _json_items(site)["https://gazette.example/news/2021/03/renamed/"]["id"] == before


def test_new_sanitising_rules_render_cached_html_again(site, now, monkeypatch):
    """HTML cached under older rules (a data: link a fix now removes) does not linger."""
    build(site, now=now)
    monkeypatch.setattr(markup, "RENDER_RULES", "a later set of rules")
    rendered: list[str] = []
    original = markup.render_body
    monkeypatch.setattr(
        markup, "render_body", lambda *a, **k: rendered.append("x") or original(*a, **k)
    )
    report = build(site, now=now)
    assert len(rendered) == 3  # every published article, though none changed
    assert len(report.written) == 0  # the same rules' bytes: nothing to rewrite
    assert report.parsed == 0
