"""Runs killed with SIGKILL mid-way and started again: nothing lost, nothing sent twice,
nothing left behind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from support.processes import ENV, run_publisher, start_publisher
from support.smtp_server import SmtpServer

from publisher import tokens
from publisher.config import load_config
from publisher.mail import subscribers
from publisher.store import open_store

ADDRESSES = [f"reader{n:02d}@example.org" for n in range(1, 11)]


class HeldReply:
    """The test server, but its answer to the Nth DATA command never comes.

    `held` is set once the server has that message (stored first, or not),
    `settled` once the client's connection is gone and the server has let the
    message go: events to wait for, rather than guessed sleeps.
    """

    def __init__(self, server: SmtpServer, number: int, *, store: bool) -> None:
        self.inner = server.handler
        self.number = number
        self.store = store
        self.data_commands = 0  # counted on the server's one event loop
        self.held = threading.Event()
        self.settled = threading.Event()
        server.controller.handler = self  # the handler of every connection from now on

    async def handle_RCPT(self, *args: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        return await self.inner.handle_RCPT(*args)

    async def handle_DATA(self, *args: Any) -> str:  # noqa: N802
        self.data_commands += 1
        if self.data_commands != self.number:
            return await self.inner.handle_DATA(*args)
        try:
            if self.store:
                await self.inner.handle_DATA(*args)  # stored; its 250 is never sent
            self.held.set()
            await asyncio.Event().wait()  # aiosmtpd cancels this when the client goes
        finally:
            self.settled.set()
        raise AssertionError("unreachable: the wait above ends only by cancellation")


@pytest.mark.parametrize("was_stored", [True, False], ids=["stored", "not-stored"])
def test_sigkill_mid_send_then_resume(site_dir, now, was_stored):
    # The kill lands while the server holds the 4th message's reply back: a
    # server that had queued it (stored) or one that drops it with the link.
    with SmtpServer() as server:
        held = HeldReply(server, 4, store=was_stored)
        config = site_dir / "publisher.toml"
        config.write_text(
            config.read_text(encoding="utf-8")
            + f'\n[delivery]\nmethod = "smtp"\n\n[delivery.smtp]\nport = {server.port}\n',
            encoding="utf-8",
        )
        site = load_config(config)
        secret = tokens.load_secret(site.state_dir)
        with open_store(site.state_db) as store, store.transaction():
            for address in ADDRESSES:
                subscribers.add_subscriber(store, secret, address, "", now=now)

        process = start_publisher(site_dir, "digest", "send")
        if not held.held.wait(timeout=60):  # the 4th message's body is out, its reply held
            process.kill()
            pytest.fail(f"the server never held a message: {process.communicate(timeout=10)}")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
        assert process.returncode == -signal.SIGKILL

        assert held.settled.wait(timeout=10)  # the server is done with the held message
        assert len(server.received) == (4 if was_stored else 3)
        status = run_publisher(site_dir, "digest", "status")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].split() == [
            "digest",
            "created",
            "articles",
            "sent",
            "pending",
            "uncertain",
            "failed",
        ]
        digest, _day, _time, articles, sent, pending, uncertain, failed = lines[1].split()
        assert (digest, articles, failed) == ("1", "3", "0")
        assert int(sent) == 3  # message 3's outcome is committed as message 4 goes out
        assert int(uncertain) == 1
        assert int(sent) + int(pending) + int(uncertain) == 10

        resumed = run_publisher(site_dir, "digest", "send")
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.splitlines()[0] == "resumed digest 1"
        assert "1 message may or may not have been delivered" in resumed.stderr

        final = run_publisher(site_dir, "digest", "status")
        counts = final.stdout.splitlines()[1].split()
        assert counts[4:] == ["9", "0", "1", "0"]
        # The operator checks the one uncertain address; if it never arrived,
        # they send it again, and only it.
        with open_store(site.state_db) as store:
            (held,) = store.conn.execute(
                "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
                "WHERE d.status = 'sending'"
            ).fetchone()
        assert (held in server.by_recipient()) is was_stored
        if not was_stored:
            forced = run_publisher(site_dir, "digest", "send", "--resend-uncertain")
            assert forced.returncode == 0, forced.stderr
            assert forced.stdout.splitlines()[-1] == "sent 1, failed 0, deferred 0, uncertain 0"

    by_recipient = server.by_recipient()
    assert sorted(by_recipient) == ADDRESSES
    assert all(len(messages) == 1 for messages in by_recipient.values())
    ids = [m.message["Message-ID"] for messages in by_recipient.values() for m in messages]
    assert len(set(ids)) == 10


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
