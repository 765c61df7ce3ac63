"""Atomic writes that skip unchanged bytes and never leave a path outside the root."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.clock import NOW

from publisher.errors import OutputError
from publisher.output import OutputWriter, atomic_write, remove_stale_temps


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


# -- temp files: named after their writer, removed once it is dead ----------------------

HOUR = 3600


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait(timeout=30)
    return process.pid


def _temp(folder: Path, name: str, *, age: float = 0.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"half a feed")
    moment = NOW.timestamp() - age
    os.utime(path, (moment, moment))
    return path


def test_a_write_goes_through_a_temp_file_named_after_its_writer(tmp_path, monkeypatch):
    seen: list[str] = []
    real_fsync = os.fsync

    def looking_fsync(fd: int) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", looking_fsync)
    atomic_write(tmp_path / "rss.xml", b"<rss/>")
    temps = [name for name in seen if name != "rss.xml"]
    assert len(temps) == 1
    assert re.fullmatch(rf"\.rss\.xml\.{os.getpid()}-[0-9a-f]{{8}}\.tmp", temps[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rss.xml"]
    assert (tmp_path / "rss.xml").stat().st_mode & 0o777 == 0o644


def test_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="publisher.output")
    dead, alive = _dead_pid(), os.getpid()
    feeds, outbox = tmp_path / "feeds", tmp_path / "outbox"
    removed = {
        # the writer is dead
        _temp(feeds / "tags" / "sport", f".feed.json.{dead}-2f5a0c1e.tmp"),
        _temp(outbox / "digest-0001", f".00000664.eml.{dead}-0badc0de.tmp"),
        # a live pid, but no write takes an hour: that pid was reused
        _temp(feeds, f".atom.xml.{alive}-00c0ffee.tmp", age=HOUR + 1),
        # earlier versions' names (mkstemp's), older than a minute
        _temp(feeds / "tags" / "sport", ".rss.xml.2n5w1jh2.tmp", age=61),
        _temp(outbox, ".secret.4242.9f0e1d2c.tmp", age=120),
    }
    kept = {
        # a live writer's, moments old
        _temp(feeds, f".rss.xml.{alive}-1a2b3c4d.tmp"),
        _temp(feeds, f".rss.xml.{alive}-5e6f7a8b.tmp", age=HOUR - 60),
        # an earlier version's, too young to be sure its writer is gone
        _temp(feeds, ".feed.json.v0tyavo3.tmp", age=30),
        # not ours
        _temp(feeds, ".htaccess"),
        _temp(feeds, ".notes.tmp", age=10 * HOUR),
        _temp(feeds, "draft.tmp", age=10 * HOUR),
        _temp(feeds, f"rss.xml.{dead}-2f5a0c1e.tmp", age=10 * HOUR),
        _temp(feeds, f".rss.xml.{dead}-NOTHEX00.tmp", age=10 * HOUR),
        _temp(feeds, "rss.xml"),
    }
    (feeds / f".folder.{dead}-2f5a0c1e.tmp").mkdir()
    (feeds / f".link.{dead}-2f5a0c1e.tmp").symlink_to(feeds / "rss.xml")

    result = remove_stale_temps([feeds, outbox, tmp_path / "missing"], now=NOW)

    assert set(result) == removed
    assert not any(path.exists() for path in removed)
    assert all(path.exists() for path in kept)
    assert (feeds / f".folder.{dead}-2f5a0c1e.tmp").is_dir()
    assert (feeds / f".link.{dead}-2f5a0c1e.tmp").is_symlink()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert sorted(lines[:-1]) == sorted(
        ("INFO", f"removed {path}, left by an interrupted run") for path in removed
    )
    assert lines[-1] == ("WARNING", "removed 5 temporary files left by an interrupted run")
    caplog.clear()
    assert remove_stale_temps([feeds, outbox], now=NOW) == []
    assert caplog.records == []


def test_a_temp_file_its_writer_still_holds_is_kept_however_old(tmp_path):
    # A writer stopped for hours (SIGSTOP, a hung disk) still holds its lock.
    path = _temp(tmp_path, f".rss.xml.{_dead_pid()}-1a2b3c4d.tmp", age=10 * HOUR)
    with open(path, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert remove_stale_temps([tmp_path], now=NOW) == []
        assert path.exists()
    assert remove_stale_temps([tmp_path], now=NOW) == [path]
    assert not path.exists()


def test_one_removal_is_counted_as_one_file(tmp_path, caplog):
    path = _temp(tmp_path, f".rss.xml.{_dead_pid()}-1a2b3c4d.tmp")
    assert remove_stale_temps([tmp_path], now=NOW) == [path]
    assert caplog.messages == ["removed 1 temporary file left by an interrupted run"]


def test_without_flock_writes_work_and_the_pid_rule_still_holds(tmp_path, monkeypatch):
    # Some file systems (FUSE mounts) have no flock at all.
    def no_flock(_fd: int, _operation: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    atomic_write(tmp_path / "rss.xml", b"<rss/>")
    assert (tmp_path / "rss.xml").read_bytes() == b"<rss/>"
    dead = _temp(tmp_path, f".atom.xml.{_dead_pid()}-1a2b3c4d.tmp")
    live = _temp(tmp_path, f".feed.json.{os.getpid()}-1a2b3c4d.tmp")
    assert remove_stale_temps([tmp_path], now=NOW) == [dead]
    assert live.exists()
