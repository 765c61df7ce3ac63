"""Runs killed with SIGKILL mid-way and started again: nothing lost, nothing sent twice,
nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import ENV, run_publisher

from publisher import tokens
from publisher.config import load_config
from publisher.mail import subscribers
from publisher.store import open_store

ADDRESSES = [f"reader{n:02d}@example.org" for n in range(1, 11)]


# `publisher …` that stops itself (SIGSTOP) at the fsync of the first temp file
# whose path contains $STOP_WRITING: written, not yet renamed into place.
STOP_MID_WRITE = """
import os, signal, sys
real_fsync = os.fsync
def fsync(fd):
    if os.environ["STOP_WRITING"] in os.readlink(f"/proc/self/fd/{fd}"):
        os.fsync = real_fsync
        os.kill(os.getpid(), signal.SIGSTOP)
    real_fsync(fd)
os.fsync = fsync
from publisher.cli import cli
cli(sys.argv[1:], prog_name="publisher")
"""


def _stopped_mid_write(site_dir: Path, marker: str, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", STOP_MID_WRITE, "--config", str(site_dir / "publisher.toml"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "STOP_WRITING": marker},
    )
    _pid, status = os.waitpid(process.pid, os.WUNTRACED)  # returns once it has stopped
    assert os.WIFSTOPPED(status), status
    return process


def _temps(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob(".*.tmp"))


@pytest.mark.parametrize(
    ("command", "marker", "folder", "name"),
    [
        (["build"], "/feeds/", "feeds", "rss.xml"),
        (["digest", "send"], ".eml.", "outbox/digest-0001", "00000001.eml"),
    ],
    ids=["build", "digest-send"],
)
def test_temp_files_of_a_run_killed_mid_write_are_removed_by_the_next(
    site_dir, now, command, marker, folder, name
):
    site = load_config(site_dir / "publisher.toml")
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store, store.transaction():
        for address in ADDRESSES[:3]:
            subscribers.add_subscriber(store, secret, address, "", now=now)
    process = _stopped_mid_write(site_dir, marker, *command)
    (left,) = _temps(site_dir)
    assert left.parent == site_dir / folder
    assert re.fullmatch(rf"\.{re.escape(name)}\.{process.pid}-[0-9a-f]{{8}}\.tmp", left.name)
    process.kill()
    process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    # A live writer's temp file (this test process is alive) must survive.
    live = site_dir / folder / f".{name}.{os.getpid()}-0123abcd.tmp"
    live.write_bytes(b"being written")

    again = run_publisher(site_dir, *command)

    assert again.returncode == 0, again.stderr
    assert not left.exists()
    assert _temps(site_dir) == [live]
    assert (
        "WARNING: publisher.output: removed 1 temporary file left by an interrupted run\n"
        in again.stderr
    )
    assert (site_dir / folder / name).is_file()


def test_digest_send_clears_temp_files_a_killed_serve_left_in_the_outbox(site_dir, now):
    # `publisher serve` writes confirmations without the site lock: its leftovers
    # are not found by the lock's check, so digest send looks in the outbox itself.
    site = load_config(site_dir / "publisher.toml")
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store, store.transaction():
        subscribers.add_subscriber(store, secret, ADDRESSES[0], "", now=now)
    confirmations = site.delivery.outbox_dir / "confirmations"
    confirmations.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait(timeout=30)
    left = confirmations / f".20261127-120000-0a1b2c3d4e5f6a7b.eml.{dead.pid}-0123abcd.tmp"
    left.write_bytes(b"half a message")

    result = run_publisher(site_dir, "digest", "send")

    assert result.returncode == 0, result.stderr
    assert not left.exists()
    assert result.stderr == (
        "WARNING: publisher.output: removed 1 temporary file left by an interrupted run\n"
    )
