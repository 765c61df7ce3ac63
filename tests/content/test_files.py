"""content.files: finding the article files, and reading each whole within the size limit."""

from __future__ import annotations

import os

import pytest
from support.builds import bump_mtime, json_items

from publisher.content import files
from publisher.errors import ContentError
from publisher.pipelines.build import build

MB = 1024 * 1024

# -- read ----------------------------------------------------------------------------


def test_read_refuses_a_20_mb_file_by_its_size_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.md"
    with path.open("wb") as handle:
        handle.write(b"---\ntitle: Huge\ndate: 2024-05-03\n---\n")
        handle.write(b"x" * (20 * MB - handle.tell()))

    def refuse(_fd: int, size: int) -> bytes:
        raise AssertionError(f"{size} bytes were read")

    monkeypatch.setattr(os, "read", refuse)
    with pytest.raises(ContentError) as caught:
        files.read_article(path, "content/huge.md")[0]
    assert caught.value.lines() == [
        "content/huge.md: file: 20.0 MB is over the 5 MB limit for one article"
    ]


def test_read_accepts_a_file_of_exactly_5_mb(tmp_path):
    path = tmp_path / "big.md"
    path.write_bytes(b"x" * files.MAX_FILE_BYTES)
    assert len(files.read_article(path, "content/big.md")[0]) == files.MAX_FILE_BYTES


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda p: p.mkdir(), "cannot be read (Is a directory)", id="folder"),
        pytest.param(lambda _: None, "cannot be read (No such file or directory)", id="missing"),
    ],
)
def test_read_reports_an_unreadable_file(tmp_path, make, expected):
    path = tmp_path / "gone.md"
    make(path)
    with pytest.raises(ContentError) as caught:
        files.read_article(path, "content/gone.md")[0]
    assert caught.value.lines() == [f"content/gone.md: file: {expected}"]


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
            bump_mtime(path)
        return data

    monkeypatch.setattr(os, "read", read_during_edit)
    build(site, now=now)
    assert reads == [1]
    item = json_items(site)["https://gazette.example/news/2021/03/observers/"]
    assert item["title"] == "Observers find an orderly, final vote"
    monkeypatch.setattr(os, "read", real_read)
    assert build(site, now=now).parsed == 0  # the stored stat is that of the bytes parsed


# -- discover ------------------------------------------------------------------------


def test_discover_finds_articles_sorted_and_skips_hidden_and_underscore(make_site):
    folder = make_site("discover") / "content"
    found = list(files.discover(folder))
    assert [f.relative for f in found] == [
        "2020-01-01-first.md",
        "B.TXT",
        "sub/2020-02-02-e.markdown",
        "sub/deeper/f.md",
    ]
    assert all(f.size == f.path.stat().st_size and f.path.is_file() for f in found)


def test_discover_without_stat_finds_the_same_files(make_site):
    folder = make_site("discover") / "content"
    with_stat = [f.relative for f in files.discover(folder)]
    found = list(files.discover(folder, with_stat=False))
    assert [f.relative for f in found] == with_stat
    assert {(f.size, f.mtime_ns) for f in found} == {(-1, -1)}


@pytest.mark.parametrize("with_stat", [True, False])
def test_discover_skips_what_is_not_a_regular_file(tmp_path, with_stat):
    (tmp_path / "real.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    (tmp_path / "linked.md").symlink_to(tmp_path / "real.md")
    (tmp_path / "broken.md").symlink_to(tmp_path / "gone.md")
    os.mkfifo(tmp_path / "pipe.md")  # reading it would wait for a writer forever
    found = [f.relative for f in files.discover(tmp_path, with_stat=with_stat)]
    assert found == ["linked.md", "real.md"]


def test_discover_refuses_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(files.discover(tmp_path / "nowhere"))
