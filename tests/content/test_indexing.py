"""content.indexing: what a build reads again, and what an edit changes.

An edit keeps the id and moves `updated`; a file that breaks keeps its last good version
published; a file changed within the clock's tick is read all the same.
"""

from __future__ import annotations

import os
from datetime import timedelta

import feedparser
from support.builds import bump_mtime, json_items

from publisher.pipelines.build import build, check


def test_edit_keeps_id_and_moves_updated(site, now):
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    before = json_items(site)[link]
    assert "date_modified" not in before
    path = site.content_dir / "2021-03-04-observers.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("find an orderly vote", "find an orderly, calm vote").replace(
            "count transparent.", "count transparent and quick."
        ),
        encoding="utf-8",
    )
    bump_mtime(path)
    later = now + timedelta(hours=5)
    report = build(site, now=later)
    assert report.parsed == 1
    after = json_items(site)[link]
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
    bump_mtime(path)
    build(site, now=now + timedelta(hours=1))
    item = json_items(site)["https://gazette.example/news/2021/03/observers/"]
    assert "date_modified" not in item
    assert not (site.output_dir / "tags" / "europe").exists()


def test_removing_the_date_keeps_the_last_good_version(site, now):
    build(site, now=now)
    link = "https://gazette.example/news/2020/06/vienna-talks/"
    before = json_items(site)[link]
    path = site.content_dir / "2020-06-22-vienna-talks.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('date: "2020-06-22T19:40:00+02:00"\n', ""), encoding="utf-8")
    bump_mtime(path)
    report = build(site, now=now)
    assert [p.path for p in report.problems] == ["content/2020-06-22-vienna-talks.md"]
    assert report.problems[0].kept_previous
    assert report.problems[0].lines == (
        "content/2020-06-22-vienna-talks.md: date: missing (required)",
    )
    assert json_items(site)[link] == before
    # The problem is reported again by the next (no-change) run, without parsing.
    again = build(site, now=now)
    assert again.parsed == 0
    assert [p.lines for p in again.problems] == [p.lines for p in report.problems]


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
    assert json_items(site)[link]["title"] == "Observers find an ordered vote"


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
    ids = [item["id"] for item in json_items(site).values()]
    assert ids.count("tag:gazette.example,2021:same") == 1
    assert check(site).problems[0].lines == report.problems[0].lines
