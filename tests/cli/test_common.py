"""cli._common: what the commands share.

JSON logs, the stop on SIGTERM, and the clean-up of temporary files a killed run (or `serve`,
which takes no lock) left behind.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.mailing import TEN_READERS
from support.processes import ENV, run_publisher, start_publisher
from support.service import append_config, subscribe_readers
from support.smtp_server import Faults, SmtpServer, free_port

from publisher import tokens
from publisher.config import load_config
from publisher.mail import subscribers
from publisher.store import open_store


def test_json_logs(site_dir):
    import json

    result = run_publisher(site_dir, "--log-format", "json", "-v", "run", "--once")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert entries
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(
        e["logger"] == "publisher.run" and e["message"].startswith("build: ") for e in entries
    )


def _ledger(site_dir: Path) -> dict[str, str]:
    connection = sqlite3.connect(site_dir / ".publisher" / "state.db")
    try:
        rows = connection.execute(
            "SELECT s.email, d.status FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id"
        ).fetchall()
    finally:
        connection.close()
    return dict(rows)


def test_sigterm_mid_send_finishes_the_message_in_flight_and_stops(site_dir):
    # Each reply is held back 0.3 s after the server stored the message: the
    # signal lands while the 2nd message waits for its reply.
    with SmtpServer(Faults(reply_delay=0.3)) as server:
        append_config(
            site_dir, f'\n[delivery]\nmethod = "smtp"\n\n[delivery.smtp]\nport = {server.port}\n'
        )
        subscribe_readers(site_dir, TEN_READERS)

        process = start_publisher(site_dir, "digest", "send")
        assert server.wait_for_received(2, timeout=30)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        delivered = sorted(server.by_recipient())
        sent = len(delivered)
        assert 2 <= sent < 10
        assert stdout == (
            "made digest 1 with 3 articles\n"
            f"sent {sent}, failed 0, deferred 0, uncertain 0 (stopped on request)\n"
        )
        assert stderr == ""
        statuses = _ledger(site_dir)
        assert sorted(statuses) == TEN_READERS
        assert sorted(a for a, s in statuses.items() if s == "sent") == delivered
        assert sorted(a for a, s in statuses.items() if s == "pending") == sorted(
            set(TEN_READERS) - set(delivered)
        )
        assert "sending" not in statuses.values()

        resumed = run_publisher(site_dir, "digest", "send")
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout == (
            "resumed digest 1\nnothing new since the last digest\n"
            f"sent {10 - sent}, failed 0, deferred 0, uncertain 0\n"
        )

    assert set(_ledger(site_dir).values()) == {"sent"}
    by_recipient = server.by_recipient()
    assert sorted(by_recipient) == TEN_READERS
    assert all(len(messages) == 1 for messages in by_recipient.values())


# -- temporary files left by a killed run ---------------------------------------------

# `publisher …` that stops itself (SIGSTOP) at the fsync of the first temp file
# whose path contains $STOP_WRITING: written, not yet renamed into place.
STOP_MID_WRITE = """
import os, signal, sys
real_replace = os.replace
def replace(source, target, *args, **kwargs):
    # Just before the first temp file of STOP_WRITING's kind goes in place.
    if os.environ["STOP_WRITING"] in os.fspath(source):
        os.replace = real_replace
        os.kill(os.getpid(), signal.SIGSTOP)
    return real_replace(source, target, *args, **kwargs)
os.replace = replace
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
        for address in TEN_READERS[:3]:
            subscribers.add_subscriber(store, secret, address, "", now=now)
    process = _stopped_mid_write(site_dir, marker, *command)
    # A build stages all its feeds before it puts them in place; a send writes one at a time.
    left = _temps(site_dir)
    assert left
    assert any(
        p.parent == site_dir / folder and p.name.startswith(f".{name}.{process.pid}-") for p in left
    )
    for path in left:
        assert path.is_relative_to(site_dir / folder)
        assert re.fullmatch(rf"\..+\.{process.pid}-[0-9a-f]{{8}}\.tmp", path.name)
    process.kill()
    process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    # A live writer's temp file (this test process is alive) must survive.
    live = site_dir / folder / f".{name}.{os.getpid()}-0123abcd.tmp"
    live.write_bytes(b"being written")

    again = run_publisher(site_dir, *command)

    assert again.returncode == 0, again.stderr
    assert not any(path.exists() for path in left)
    assert _temps(site_dir) == [live]
    count = len(left)
    assert (
        f"WARNING: publisher.output: removed {count} temporary file{'s' if count > 1 else ''} "
        "left by an interrupted run\n" in again.stderr
    )
    assert (site_dir / folder / name).is_file()


def test_digest_send_clears_temp_files_a_killed_serve_left_in_the_outbox(site_dir, now):
    # `publisher serve` writes confirmations without the site lock: its leftovers
    # are not found by the lock's check, so digest send looks in the outbox itself.
    site = load_config(site_dir / "publisher.toml")
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store, store.transaction():
        subscribers.add_subscriber(store, secret, TEN_READERS[0], "", now=now)
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


def test_serve_clears_temp_files_dead_writers_left_in_the_outbox(site_dir):
    confirmations = site_dir / "outbox" / "confirmations"
    confirmations.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait(timeout=30)
    left = confirmations / f".20261127-120000-0a1b2c3d4e5f6a7b.eml.{dead.pid}-0123abcd.tmp"
    left.write_bytes(b"half a message")
    live = confirmations / f".20261127-120001-0a1b2c3d4e5f6a7c.eml.{os.getpid()}-0123abcd.tmp"
    live.write_bytes(b"being written")
    port = free_port()
    process = start_publisher(site_dir, "serve", "--port", str(port))
    try:
        assert process.stderr is not None
        assert process.stderr.readline() == (
            "WARNING: publisher.output: removed 1 temporary file left by an interrupted run\n"
        )
        assert process.stderr.readline().startswith("INFO: publisher.web: serving ")
        assert not left.exists()
        assert live.exists()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 0
