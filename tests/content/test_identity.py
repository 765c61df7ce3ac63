"""content.identity: an article keeps its id through renames, retitles, copies and a lost state."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from support.builds import json_items

from publisher.pipelines.build import build


def test_renamed_file_keeps_its_id(site, now):
    build(site, now=now)
    link_before = "https://gazette.example/news/2021/03/observers/"
    article_id = json_items(site)[link_before]["id"]
    source = site.content_dir / "2021-03-04-observers.md"
    source.rename(site.content_dir / "2021-03-04-election-observers.md")
    build(site, now=now)
    items = json_items(site)
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
    before = json_items(site)["https://gazette.example/news/2021/03/observers/"]
    _retitle(
        site.content_dir / "2021-03-04-observers.md",
        "Observers find an orderly vote",
        "Observers find a calm vote",
        to=site.content_dir / "2021-03-04-calm-vote.md",
    )
    report = build(site, now=now + timedelta(hours=1))
    items = json_items(site)
    after = items["https://gazette.example/news/2021/03/calm-vote/"]
    assert (after["id"], after["title"]) == (before["id"], "Observers find a calm vote")
    assert [item["id"] for item in items.values()].count(before["id"]) == 1
    assert len(items) == 3
    assert report.warnings == ()


def test_identity_lost_in_one_build_is_reported_with_the_id_to_give(site, now):
    build(site, now=now)
    before = json_items(site)["https://gazette.example/news/2021/03/observers/"]
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
    after = json_items(site)["https://gazette.example/news/2021/03/calm-vote/"]
    assert after["id"] == before["id"]


def test_a_copy_of_an_article_gets_an_id_of_its_own(site, now):
    build(site, now=now)
    source = site.content_dir / "2021-03-04-observers.md"
    before = json_items(site)["https://gazette.example/news/2021/03/observers/"]["id"]
    text = source.read_text(encoding="utf-8")
    source.unlink()
    for name in ("2021-03-04-first-copy.md", "2021-03-04-second-copy.md"):
        (site.content_dir / name).write_text(text, encoding="utf-8")
    report = build(site, now=now)
    assert report.problems == ()
    items = json_items(site)
    ids = [
        items[f"https://gazette.example/news/2021/03/{n}-copy/"]["id"] for n in ("first", "second")
    ]
    assert ids[0] == before
    assert ids[1] != before


def test_a_broken_file_renamed_keeps_its_article(site, now):
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    before = json_items(site)[link]["id"]
    source = site.content_dir / "2021-03-04-observers.md"
    source.write_text(source.read_text(encoding="utf-8").replace("date: ", "dated: "))
    build(site, now=now)
    source.rename(site.content_dir / "2021-03-04-renamed.md")
    report = build(site, now=now)
    assert [(p.path, p.kept_previous) for p in report.problems] == [
        ("content/2021-03-04-renamed.md", True)
    ]
    assert json_items(site)[link]["id"] == before  # its last good version, still
    renamed = site.content_dir / "2021-03-04-renamed.md"
    renamed.write_text(renamed.read_text(encoding="utf-8").replace("dated: ", "date: "))
    build(site, now=now)
    assert json_items(site)["https://gazette.example/news/2021/03/renamed/"]["id"] == before


def test_a_file_broken_then_renamed_before_a_build_keeps_its_article(site, now):
    """Found by the exactly-once state machine: its bytes changed, its body did not."""
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    before = json_items(site)[link]["id"]
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
    assert json_items(site)["https://gazette.example/news/2021/03/renamed/"]["id"] == before


def test_a_file_rewritten_while_broken_then_renamed_keeps_its_article(site, now):
    """Found by the exactly-once state machine: the body to recognise is the file's last one."""
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    before = json_items(site)[link]["id"]
    source = site.content_dir / "2021-03-04-observers.md"
    text = source.read_text(encoding="utf-8").replace("calm", "calm and quick")
    source.write_text(text.replace("date: ", "dated: "), encoding="utf-8")
    build(site, now=now)  # broken: its last good version stays, with the old body
    source.write_text(text, encoding="utf-8")
    renamed = site.content_dir / "2021-03-04-renamed.md"
    source.rename(renamed)
    build(site, now=now)
    assert json_items(site)["https://gazette.example/news/2021/03/renamed/"]["id"] == before


def test_lost_state_keeps_published_ids(site, now):
    # A file moved to a sub-folder keeps its link but would get a new name-based
    # id; after the state is lost, its id comes back from the published feeds.
    build(site, now=now)
    link = "https://gazette.example/news/2021/03/observers/"
    article_id = json_items(site)[link]["id"]
    (site.content_dir / "2021").mkdir()
    (site.content_dir / "2021-03-04-observers.md").rename(
        site.content_dir / "2021" / "2021-03-04-observers.md"
    )
    build(site, now=now)
    assert json_items(site)[link]["id"] == article_id
    shutil.rmtree(site.state_dir)  # the state folder lost
    report = build(site, now=now)
    assert json_items(site)[link]["id"] == article_id
    assert report.written == ()  # readers see nothing new
