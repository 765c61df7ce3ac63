"""`publisher run` and `publisher status`: the service in a subprocess, stopped by signals."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.processes import run_publisher, start_publisher
from support.smtp_server import Faults, SmtpServer, free_port

from publisher import tokens
from publisher.cli import cli
from publisher.config import load_config
from publisher.mail import subscribers
from publisher.service.scheduler import next_slot
from publisher.store import open_store

ADDRESSES = [f"reader{n:02d}@example.org" for n in range(1, 11)]
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T"


def _append(site_dir: Path, text: str) -> None:
    config = site_dir / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8") + text, encoding="utf-8")


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """For what no log line or callback announces (a setting, a mailbox): probed every 50 ms."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _status(runner, site_dir: Path) -> list[str]:
    result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), "status"])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def _subscribe(site_dir: Path, addresses: list[str]) -> None:
    site = load_config(site_dir / "publisher.toml")
    now = datetime.now(UTC)
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store, store.transaction():
        for address in addresses:
            subscribers.add_subscriber(store, secret, address, "", now=now)


# -- the service -------------------------------------------------------------------


def test_status_counts_the_suppression_list_and_shows_no_address(site_dir, runner):
    _subscribe(site_dir, ADDRESSES[:3])
    config = ["--config", str(site_dir / "publisher.toml")]
    for address in ADDRESSES[:2]:
        assert runner.invoke(cli, [*config, "subscribers", "remove", address]).exit_code == 0
    lines = _status(runner, site_dir)
    assert (
        lines[-1]
        == "subscribers: 1 active, 0 unsubscribed, 0 bounced; suppression list: 2 addresses"
    )
    assert not any("reader01" in line or "reader02" in line for line in lines)


# -- a digest send stopped by SIGTERM ----------------------------------------------


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
        _append(
            site_dir, f'\n[delivery]\nmethod = "smtp"\n\n[delivery.smtp]\nport = {server.port}\n'
        )
        _subscribe(site_dir, ADDRESSES)

        process = start_publisher(site_dir, "digest", "send")
        assert _wait_until(lambda: len(server.received) >= 2, 30)
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
        assert sorted(statuses) == ADDRESSES
        assert sorted(a for a, s in statuses.items() if s == "sent") == delivered
        assert sorted(a for a, s in statuses.items() if s == "pending") == sorted(
            set(ADDRESSES) - set(delivered)
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
    assert sorted(by_recipient) == ADDRESSES
    assert all(len(messages) == 1 for messages in by_recipient.values())


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "expected a duration such as '30s', '5m' or '1h' ('5 minutes')"),
        ("0s", "expected a duration such as '30s', '5m' or '1h' ('0s')"),
        ("5s", "must be between 10s and 168h ('5s')"),
        ("200h", "must be between 10s and 168h ('200h')"),
    ],
)
def test_invalid_rebuild_every_exits_2(site_dir, runner, value, message):
    _append(site_dir, f'\n[schedule]\nrebuild_every = "{value}"\n')
    for command in (["run"], ["run", "--once"], ["status"]):
        result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), *command])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"error: {site_dir / 'publisher.toml'}: [schedule] rebuild_every: {message}\n"
        )
    assert not (site_dir / ".publisher").exists()
    assert not (site_dir / "feeds").exists()


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


# -- status ------------------------------------------------------------------------------


def test_status_of_a_site_never_built_says_so_and_creates_nothing(site_dir, runner):
    site = load_config(site_dir / "publisher.toml")
    before = sorted(p.relative_to(site_dir) for p in site_dir.rglob("*"))
    upcoming = next_slot(site.digest.cadence, site.timezone, datetime.now(UTC))
    assert _status(runner, site_dir) == [
        f"site: Test Gazette ({site_dir / 'publisher.toml'})",
        "last build: never",
        "service: not running",
        f"digest cadence: weekly on monday at 07:00 (Europe/Vienna); next at "
        f"{upcoming:%Y-%m-%d %H:%M %Z}",
        "last digest: none yet",
        "subscribers: 0 active, 0 unsubscribed, 0 bounced; suppression list: 0 addresses",
    ]
    # No state folder, no database, no secret: looking changes nothing.
    assert sorted(p.relative_to(site_dir) for p in site_dir.rglob("*")) == before
    assert not (site_dir / ".publisher").exists()


def test_status_counts_one_of_a_kind_in_the_singular(site_dir, runner):
    for path in (site_dir / "content").iterdir():
        if path.name != "2020-06-22-vienna-talks.md":
            path.unlink()
    assert run_publisher(site_dir, "build").returncode == 0
    _subscribe(site_dir, ADDRESSES[:1])
    assert run_publisher(site_dir, "digest", "send").returncode == 0
    lines = _status(runner, site_dir)
    assert re.fullmatch(
        rf"last build: {WHEN} \(1 article: 1 published, 0 drafts, 0 scheduled\)", lines[1]
    ), lines
    assert re.fullmatch(
        rf"last digest: 1, made {WHEN}, 1 article: sent 1, pending 0, uncertain 0, failed 0",
        lines[4],
    ), lines
    assert (
        lines[5]
        == "subscribers: 1 active, 0 unsubscribed, 0 bounced; suppression list: 0 addresses"
    )
