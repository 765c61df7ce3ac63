"""`publisher run` and `publisher status`: the service in a subprocess, stopped by signals."""

from __future__ import annotations

import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from support.processes import ENV, run_publisher, start_publisher
from support.smtp_server import Faults, SmtpServer, free_port
from support.websub_hub import SilentHub

from publisher import tokens
from publisher.cli import cli
from publisher.config import load_config
from publisher.errors import TransientDeliveryError
from publisher.mail import subscribers
from publisher.pipelines.build import build as build_site
from publisher.service.run import DIGEST_RETRY, Jobs
from publisher.service.scheduler import DigestClock, latest_slot, next_slot
from publisher.store import open_store

ADDRESSES = [f"reader{n:02d}@example.org" for n in range(1, 11)]
FAST = '\n[schedule]\nrebuild_every = "10s"\n'
NEW_ARTICLE = """---
title: "Night shift picks up a late story"
date: "2026-01-05T10:00:00+01:00"
tags: [vienna]
---

Filed while the service was running.
"""
# `python -m publisher …`, but the service rebuilds every argv[1] seconds instead of the
# site's [schedule] rebuild_every (10 s at the least): run_service's keyword for tests,
# handed in where the command calls it. Everything else is the command line's own.
RUN_REBUILDING_EVERY = """
import functools, sys
from datetime import timedelta
from publisher.cli import main
from publisher.service import run
every = timedelta(seconds=float(sys.argv.pop(1)))
run.run_service = functools.partial(run.run_service, rebuild_every=every)
main()
"""
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T"
SINCE = r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


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


class Running:
    """`publisher -v run` in a subprocess, its log lines collected as they come.

    With *rebuild_every* (seconds), the service rebuilds that often instead of
    at the site's interval.
    """

    def __init__(self, site_dir: Path, rebuild_every: float | None = None) -> None:
        if rebuild_every is None:
            self.process = start_publisher(site_dir, "-v", "run")
        else:
            command = [sys.executable, "-c", RUN_REBUILDING_EVERY, str(rebuild_every)]
            self.process = subprocess.Popen(
                [*command, "--config", str(site_dir / "publisher.toml"), "-v", "run"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=ENV,
            )
        self.log: list[str] = []
        self.arrived = threading.Condition()  # notified at each line, and at the end
        self.ended = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self.arrived:
                self.log.append(line.rstrip("\n"))
                self.arrived.notify_all()
        with self.arrived:
            self.ended = True
            self.arrived.notify_all()

    def logged(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.log)

    def wait_for(self, pattern: str, timeout: float) -> bool:
        """Until a line matching *pattern* is logged: False at *timeout* or the process's end."""
        with self.arrived:
            self.arrived.wait_for(lambda: self.ended or self.logged(pattern), timeout)
            return self.logged(pattern)

    def stop(self, signum: signal.Signals) -> tuple[int, str]:
        """Send *signum*; the exit code and stdout once the process is gone."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=20)
        self.reader.join(timeout=5)
        assert self.process.stdout is not None
        return code, self.process.stdout.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def start_service():
    services: list[Running] = []

    def start(site_dir: Path, rebuild_every: float | None = None) -> Running:
        services.append(Running(site_dir, rebuild_every))
        return services[-1]

    yield start
    for service in services:
        service.kill()


def _titles(site_dir: Path) -> list[str]:
    parsed = feedparser.parse((site_dir / "feeds" / "atom.xml").read_bytes())
    return [entry.title for entry in parsed.entries]


def _status(runner, site_dir: Path) -> list[str]:
    result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), "status"])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def _setting(site_dir: Path, key: str) -> str | None:
    """A setting as the service left it, read only (never creating the database)."""
    path = site_dir / ".publisher" / "state.db"
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return None
    try:
        row = connection.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        connection.close()
    return None if row is None else str(row[0])


def _subscribe(site_dir: Path, addresses: list[str]) -> None:
    site = load_config(site_dir / "publisher.toml")
    now = datetime.now(UTC)
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store, store.transaction():
        for address in addresses:
            subscribers.add_subscriber(store, secret, address, "", now=now)


# -- the service -------------------------------------------------------------------


def test_run_builds_rebuilds_and_stops_on_sigterm(site_dir, runner, start_service):
    _append(site_dir, FAST)
    service = start_service(site_dir, rebuild_every=1)
    # The first pass runs at start: a build, then the digest clock notes its slot. The
    # loop's first rebuild, a second later, finds nothing changed.
    service.wait_for(r"^INFO: publisher\.run: build: .*, 0 files written, 18 unchanged$", 15)
    assert _wait_until(lambda: _setting(site_dir, "next_digest") is not None, 15), service.log
    first_titles = _titles(site_dir)
    assert len(first_titles) == 3
    assert service.logged(r"^INFO: publisher\.run: running: rebuild every 0:00:10, digest ")
    assert service.logged(r"^INFO: publisher\.run: build: 5 articles loaded .* 18 files written")
    status = _status(runner, site_dir)
    assert re.fullmatch(
        rf"service: running \(pid {service.process.pid}, `publisher run`, {SINCE}\); "
        rf"next rebuild {WHEN}, next digest {WHEN}",
        status[3],
    ), status

    busy = run_publisher(site_dir, "build")
    assert busy.returncode == 75
    assert re.fullmatch(
        r"error: \.publisher/lock: another publisher run holds the lock "
        rf"\(pid {service.process.pid}, `publisher run`, {SINCE}\); try again later\n",
        busy.stderr,
    )

    (site_dir / "content" / "2026-01-05-late-story.md").write_text(NEW_ARTICLE, encoding="utf-8")
    # The next rebuild (within a second) reads it.
    service.wait_for(r"^INFO: publisher\.run: build: 6 articles loaded ", 15)
    assert _wait_until(lambda: "Night shift picks up a late story" in _titles(site_dir), 15)
    assert _titles(site_dir) == ["Night shift picks up a late story", *first_titles]

    code, stdout = service.stop(signal.SIGTERM)
    assert code == 0, service.log
    assert stdout == ""
    assert service.log[-1] == "INFO: publisher.service.scheduler: stopped", service.log
    assert not service.logged("Traceback|ERROR"), service.log
    # Nothing was lost: a build after it finds every file as it should be.
    after = run_publisher(site_dir, "build")
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("6 articles loaded (4 published, 1 draft, 1 scheduled)")
    assert ", 0 files written, " in after.stdout
    assert _status(runner, site_dir)[3] == "service: not running"


def test_run_stops_on_sigint(site_dir, start_service):
    _append(site_dir, FAST)
    service = start_service(site_dir)
    # Signalled once the first pass is over: a signal that lands before a job
    # starts rightly skips it, which would leave nothing to look at.
    assert _wait_until(lambda: _setting(site_dir, "next_digest") is not None, 15), service.log
    code, stdout = service.stop(signal.SIGINT)
    assert code == 0, service.log
    assert stdout == ""
    assert service.log[-1] == "INFO: publisher.service.scheduler: stopped", service.log
    assert not service.logged("Traceback|KeyboardInterrupt|Aborted"), service.log
    assert len(_titles(site_dir)) == 3


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


def test_run_once_builds_and_notes_the_digest_slot_without_sending(site_dir, runner):
    _subscribe(site_dir, ADDRESSES[:3])
    site = load_config(site_dir / "publisher.toml")
    assert _status(runner, site_dir)[1:4] == [
        "last build: never",
        "service: not running",
        f"digest cadence: weekly on monday at 07:00 (Europe/Vienna); next at "
        f"{next_slot(site.digest.cadence, site.timezone, datetime.now(UTC)):%Y-%m-%d %H:%M %Z}",
    ]

    before = latest_slot(site.digest.cadence, site.timezone, datetime.now(UTC))
    first = run_publisher(site_dir, "run", "--once")
    after = latest_slot(site.digest.cadence, site.timezone, datetime.now(UTC))
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    # Without -v: one line per job that did something, for cron's mail or a journal.
    built = "INFO: publisher.run: build: 5 articles loaded (3 published, 1 draft, 1 scheduled), "
    assert first.stderr == built + "0 skipped with errors, 18 files written, 0 unchanged\n"
    assert len(_titles(site_dir)) == 3
    noted = _setting(site_dir, "digest_slot")
    assert noted in (before.isoformat(), after.isoformat())
    with open_store(site.state_db) as store:
        assert store.delivery_counts() == []
    assert not site.delivery.outbox_dir.exists()

    again = run_publisher(site_dir, "run", "--once")
    unchanged = built + "0 skipped with errors, 0 files written, 18 unchanged\n"
    assert (again.returncode, again.stdout, again.stderr) == (0, "", unchanged)
    assert _setting(site_dir, "digest_slot") == noted
    assert not site.delivery.outbox_dir.exists()

    # A week later (here: the slot noted a week earlier) the digest is due, once.
    with open_store(site.state_db) as store, store.transaction():
        week_before = datetime.fromisoformat(noted) - timedelta(days=7)
        store.set_setting("digest_slot", week_before.isoformat())
    due = run_publisher(site_dir, "run", "--once")
    assert (due.returncode, due.stdout) == (0, "")
    assert due.stderr == (
        unchanged
        + "INFO: publisher.run: digest: made 1, sent 3, failed 0, deferred 0, uncertain 0\n"
    )
    assert _setting(site_dir, "digest_slot") == noted
    assert len(list(site.delivery.outbox_dir.rglob("*.eml"))) == 3
    third = run_publisher(site_dir, "run", "--once")
    assert third.returncode == 0
    assert len(list(site.delivery.outbox_dir.rglob("*.eml"))) == 3

    lines = _status(runner, site_dir)
    assert lines[0] == f"site: Test Gazette ({site_dir / 'publisher.toml'})"
    assert re.fullmatch(
        rf"last build: {WHEN} \(5 articles: 3 published, 1 draft, 1 scheduled\)", lines[1]
    )
    assert lines[2:] == [
        "next scheduled article: 2031-01-15 08:00 CET",
        "service: not running",
        f"digest cadence: weekly on monday at 07:00 (Europe/Vienna); next at "
        f"{next_slot(site.digest.cadence, site.timezone, datetime.now(UTC)):%Y-%m-%d %H:%M %Z}",
        lines[5],
        "subscribers: 3 active, 0 unsubscribed, 0 bounced; suppression list: 0 addresses",
    ]
    assert re.fullmatch(
        rf"last digest: 1, made {WHEN}, 3 articles: sent 3, pending 0, uncertain 0, failed 0",
        lines[5],
    )


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


def test_serve_answers_logs_without_tokens_and_stops_on_sigterm(site_dir):
    import httpx

    assert run_publisher(site_dir, "build").returncode == 0
    port = free_port()
    process = start_publisher(site_dir, "serve", "--port", str(port))
    try:
        assert process.stderr is not None
        # Without -v, the one line at start-up, once it listens: where it is.
        address = f"http://127.0.0.1:{port}/news/"
        assert (
            process.stderr.readline() == f"INFO: publisher.web: serving Test Gazette on {address}\n"
        )
        response = httpx.get(address + "?token=secret-value")
        assert response.status_code == 200
        feed = httpx.get(f"http://127.0.0.1:{port}/news/feeds/rss.xml")
        assert feed.headers["content-type"] == "application/rss+xml; charset=utf-8"
    finally:
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert re.search(r"INFO: publisher\.web: 127\.0\.0\.1 GET /news/ 200 ", stderr)
    assert "GET /news/feeds/rss.xml 200" in stderr
    assert "secret-value" not in stderr


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


def _ping_attempts(site_dir: Path) -> list[int]:
    connection = sqlite3.connect(f"file:{site_dir / '.publisher' / 'state.db'}?mode=ro", uri=True)
    try:
        return [row[0] for row in connection.execute("SELECT attempts FROM websub_pings")]
    finally:
        connection.close()


def test_run_pings_in_the_background_and_its_jobs_never_wait_for_the_hub(site_dir, start_service):
    connected = threading.Event()
    with SilentHub(on_connect=connected.set) as hub:
        _append(site_dir, FAST + f'\n[feeds]\nwebsub_hub = "{hub.url}"\n')
        service = start_service(site_dir)
        assert _wait_until(lambda: _setting(site_dir, "next_digest") is not None, 15), service.log
        # The digest check after the first build ran while all 18 pings still
        # hung on the hub (none has failed yet: the hub never answers, so the
        # pinger waits out its whole deadline).
        assert _ping_attempts(site_dir) == [0] * 18
        connected.wait(15)
        assert _wait_until(lambda: len(hub.connections) >= 1, 15)
        code, _stdout = service.stop(signal.SIGTERM)
    assert code == 0, service.log
    # Stopping waited for the pings in flight, and recorded them as failed.
    assert _ping_attempts(site_dir) == [1] * 18
    assert service.logged(
        r"^WARNING: publisher\.feeds\.websub: .*: 18 of 18 pings failed \(no answer"
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


# -- the service's jobs, in process ------------------------------------------------------


class Clock:
    """The `now` the jobs are given; the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current


def test_after_a_failed_send_the_digest_job_waits_digest_retry_before_trying_again(
    site_dir, caplog
):
    port = free_port()  # nothing listens there yet
    _append(
        site_dir,
        '\n[delivery]\nmethod = "smtp"\nmax_attempts = 1\nbackoff = 0.01\n\n'
        f"[delivery.smtp]\nport = {port}\ntimeout = 5\n",
    )
    _subscribe(site_dir, ADDRESSES[:2])
    site = load_config(site_dir / "publisher.toml")
    clock = Clock(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # a Monday, 09:00 in Vienna
    build_site(site, now=clock())
    slot = latest_slot(site.digest.cadence, site.timezone, clock())
    week_before = slot - timedelta(days=7)
    jobs = Jobs(
        site,
        now=clock,
        stop=threading.Event(),
        clock=DigestClock(site.digest.cadence, site.timezone, week_before),
        rebuild_every=site.rebuild_every,
    )
    with caplog.at_level(logging.INFO, logger="publisher.run"):
        with pytest.raises(TransientDeliveryError):
            jobs.digest_check()
        clock.current += DIGEST_RETRY - timedelta(seconds=1)
        jobs.digest_check()  # too soon: not tried (a try would fail again)
        clock.current += timedelta(seconds=1)
        with pytest.raises(TransientDeliveryError):
            jobs.digest_check()
        # Not sent: the slot stays due.
        assert _setting(site_dir, "digest_slot") == week_before.isoformat()
        with SmtpServer(port=port) as server:
            clock.current += DIGEST_RETRY - timedelta(seconds=1)
            jobs.digest_check()  # five minutes after the second failure, not the first
            assert server.received == []
            clock.current += timedelta(seconds=1)
            jobs.digest_check()
            assert sorted(server.by_recipient()) == ADDRESSES[:2]
    assert [r.getMessage() for r in caplog.records if r.name == "publisher.run"] == [
        "digest: made none, sent 2, failed 0, deferred 0, uncertain 0 "
        "(nothing new since the last digest)"
    ]
    assert jobs.clock.handled == slot
    assert _setting(site_dir, "digest_slot") == slot.isoformat()
