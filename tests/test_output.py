"""Atomic writes that skip unchanged bytes and never leave a path outside the root."""

from __future__ import annotations

import os

import pytest

from publisher.errors import OutputError
from publisher.output import OutputWriter, atomic_write


def test_writes_then_skips_identical_bytes(tmp_path):
    writer = OutputWriter(tmp_path / "out", display_root="out")
    assert writer.write_if_changed("a/rss.xml", b"one") is True
    path = tmp_path / "out" / "a" / "rss.xml"
    os.utime(path, ns=(1, 1))
    again = OutputWriter(tmp_path / "out", display_root="out")
    assert again.write_if_changed("a/rss.xml", b"one") is False
    assert path.stat().st_mtime_ns == 1
    third = OutputWriter(tmp_path / "out", display_root="out")
    assert third.write_if_changed("a/rss.xml", b"two") is True
    assert path.read_bytes() == b"two"


def test_refuses_a_second_write_in_one_build(tmp_path):
    writer = OutputWriter(tmp_path, display_root="feeds")
    writer.write_if_changed("rss.xml", b"x")
    with pytest.raises(OutputError) as raised:
        writer.write_if_changed("rss.xml", b"y")
    assert str(raised.value) == "feeds/rss.xml: written twice in one build"


@pytest.mark.parametrize("relative", ["../escape.xml", "tags/../../escape.xml", "/etc/passwd", "."])
def test_refuses_paths_outside_the_root(tmp_path, relative):
    writer = OutputWriter(tmp_path / "out", display_root="feeds")
    with pytest.raises(OutputError) as raised:
        writer.write_if_changed(relative, b"x")
    assert str(raised.value) == f"feeds/{relative}: refusing to write outside the output folder"
    assert not (tmp_path / "escape.xml").exists()


def test_refuses_a_symlink_that_leads_outside(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "tags").symlink_to(tmp_path / "elsewhere")
    writer = OutputWriter(tmp_path / "out", display_root="feeds")
    with pytest.raises(OutputError):
        writer.write_if_changed("tags/rss.xml", b"x")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "rss.xml"
    path.write_bytes(b"old and whole")

    def broken_fsync(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old and whole"
    assert [p.name for p in tmp_path.iterdir()] == ["rss.xml"]


def test_remove_cleans_empty_folders_only_inside_the_root(tmp_path):
    writer = OutputWriter(tmp_path / "out", display_root="feeds")
    writer.write_if_changed("tags/x/rss.xml", b"x")
    writer.write_if_changed("tags/y/rss.xml", b"y")
    assert writer.remove("tags/x/rss.xml") is True
    assert not (tmp_path / "out" / "tags" / "x").exists()
    assert (tmp_path / "out" / "tags" / "y" / "rss.xml").exists()
    assert writer.remove("tags/x/rss.xml") is False
    assert (tmp_path / "out").is_dir()
