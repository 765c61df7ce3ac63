"""feeds.write: a feed is rendered only when what goes into it changed.

A feed no article feeds any more is removed, and one a killed build left unwritten is written
by the next.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
from support.builds import RenderCounter, bump_mtime, file_contents, json_items

from publisher.config import load_config
from publisher.pipelines.build import build


def test_one_edit_renders_only_the_feeds_that_hold_it(site, now, monkeypatch):
    build(site, now=now)
    counter = RenderCounter(monkeypatch)
    path = site.content_dir / "2022-08-09-fisheries.txt"
    path.write_text(
        path.read_text(encoding="utf-8").replace("nine years", "ten years"), encoding="utf-8"
    )
    bump_mtime(path)
    report = build(site, now=now)
    assert report.parsed == 1
    assert sorted(counter.feeds) == sorted(
        f"{folder}/{fmt}"
        for folder in (".", "tags/asia-pacific")
        for fmt in ("rss", "atom", "json")
    )
    assert counter.bodies == 1  # the others come from the cache
    # The other articles' entries too: only the edited one's are rendered, once per format.
    fisheries = json_items(site)["https://gazette.example/news/2022/08/fisheries/"]["id"]
    assert sorted(counter.entries) == [f"{fisheries}/{fmt}" for fmt in ("atom", "json", "rss")]
    assert len(report.written) == 6


def test_only_the_stale_feeds_articles_are_read_whole(site, now, monkeypatch):
    from publisher.store.articles import ArticleQueries

    one_item = replace(
        site,
        feeds=replace(site.feeds, max_items=1, tag_feeds=False),
        pages=replace(site.pages, enabled=False),
    )
    build(one_item, now=now)
    read: list[str] = []
    articles = ArticleQueries.articles

    def counting(store, ids=None):
        ids = None if ids is None else list(ids)
        read.extend(ids or ["<all>"])
        return articles(store, ids)

    monkeypatch.setattr(ArticleQueries, "articles", counting)
    old = one_item.content_dir / "2020-06-22-vienna-talks.md"  # in no feed of one item
    old.write_text(old.read_text(encoding="utf-8").replace("Arms talks", "Talks"), "utf-8")
    bump_mtime(old)
    report = build(one_item, now=now)
    assert report.written == ()
    edited = set(read)  # indexing reads the edited article's last version, and nothing else
    assert len(edited) == 1
    newest = one_item.content_dir / "2022-08-09-fisheries.txt"  # the one item
    newest.write_text(newest.read_text(encoding="utf-8") + "\nMore.\n", "utf-8")
    bump_mtime(newest)
    read.clear()
    report = build(one_item, now=now)
    assert len(report.written) == 3
    assert len(read) == 2  # indexing's read of its last version, and the feed's
    assert len(set(read)) == 1


def test_deleting_a_file_removes_it_from_the_feeds(site, now):
    build(site, now=now)
    (site.content_dir / "2022-08-09-fisheries.txt").unlink()
    report = build(site, now=now)
    assert "https://gazette.example/news/2022/08/fisheries/" not in json_items(site)
    assert not (site.output_dir / "tags" / "asia-pacific").exists()
    assert sorted(report.removed) == [
        f"feeds/tags/asia-pacific/{name}" for name in ("atom.xml", "feed.json", "rss.xml")
    ]


def test_a_build_killed_between_two_feed_files_is_repaired_by_the_next(site, now, monkeypatch):
    from publisher.feeds import render

    build(site, now=now)
    path = site.content_dir / "2020-06-22-vienna-talks.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Arms talks", "Arms control talks"),
        encoding="utf-8",
    )
    bump_mtime(path)
    real_assemble = render.assemble
    calls = []

    def dying_assemble(fmt, spec, items, entries):
        calls.append(fmt)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the process were killed here
        return real_assemble(fmt, spec, items, entries)

    # A twin of the site, built without interruption, gives the expected bytes.
    twin_dir = site.root.parent / "twin"
    shutil.copytree(site.root, twin_dir)
    twin = load_config(twin_dir / "publisher.toml")
    build(twin, now=now)
    monkeypatch.setattr(render, "assemble", dying_assemble)
    with pytest.raises(KeyboardInterrupt):
        build(site, now=now)
    assert not list(site.output_dir.rglob("*.tmp"))  # nothing staged is left behind
    monkeypatch.setattr(render, "assemble", real_assemble)
    build(site, now=now)
    repaired = file_contents(site.output_dir)
    assert repaired == file_contents(twin.output_dir)
    assert b"Arms control talks" in repaired["rss.xml"]


def test_stored_entries_follow_the_settings_they_were_made_with(site, now, monkeypatch):
    build(site, now=now)
    assert all("content_html" in item for item in json_items(site).values())
    config = site.config_path
    text = config.read_text(encoding="utf-8")
    if "[feeds]" in text:
        text = text.replace("[feeds]", '[feeds]\ncontent = "summary"', 1)
    else:
        text += '\n[feeds]\ncontent = "summary"\n'
    config.write_text(text, encoding="utf-8")
    summary_site = load_config(config)
    counter = RenderCounter(monkeypatch)
    build(summary_site, now=now)
    # Every entry is made again, without the content the stored ones carry.
    assert len(counter.entries) == 3 * len(json_items(summary_site))
    assert not any("content_html" in item for item in json_items(summary_site).values())
    assert b"content:encoded" not in (site.output_dir / "rss.xml").read_bytes()
