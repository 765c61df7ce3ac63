"""service.run: `publisher run` in a subprocess, and its digest job in process.

Its jobs, its log lines, and its clean stop on a signal.
"""

from __future__ import annotations

import logging
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from support.mailing import TEN_READERS, offer_choices
from support.processes import ENV, run_publisher
from support.service import SINCE, WHEN, append_config, status_lines, subscribe_readers
from support.smtp_server import SmtpServer, free_port
from support.websub_hub import SilentHub

from publisher.config import load_config
from publisher.errors import TransientDeliveryError
from publisher.pipelines.build import build as build_site
from publisher.service import run
from publisher.service.run import DIGEST_RETRY, Jobs
from publisher.service.scheduler import DigestClock, latest_slot, next_slot
from publisher.store import open_store

FAST = '\n[schedule]\nrebuild_every = "10s"\n'
NEW_ARTICLE = """---
title: "Night shift picks up a late story"
date: "2026-01-05T10:00:00+01:00"
tags: [vienna]
---

Filed while the service was running.
"""
# `python -m publisher …` with two keywords the code takes for tests, handed in where the
# command makes its service. The loop says on stderr when it first goes idle (Service's
# on_idle), so a test waits for the first pass of both jobs to be over, which nothing else
# announces; and with argv[1] it rebuilds every argv[1] seconds instead of the site's
# [schedule] rebuild_every (10 s at the least). Everything else is the command line's own.
RUN = """
import functools, sys
from datetime import timedelta
from publisher.cli import main
from publisher.service import run
every = sys.argv.pop(1)
if every:
    interval = timedelta(seconds=float(every))
    run.run_service = functools.partial(run.run_service, rebuild_every=interval)
def announce(_scheduler, said=[]):
    if not said:
        said.append(True)
        print("test: idle after the first pass", file=sys.stderr, flush=True)
run.Service = functools.partial(run.Service, on_idle=announce)
main()
"""
FIRST_PASS_OVER = "^test: idle after the first pass$"


class Running:
    """`publisher -v run` in a subprocess, its log lines collected as they come.

    With *rebuild_every* (seconds), the service rebuilds that often instead of
    at the site's interval. It logs FIRST_PASS_OVER once both jobs have run.
    """

    def __init__(self, site_dir: Path, rebuild_every: float | None = None) -> None:
        every = "" if rebuild_every is None else str(rebuild_every)
        command = [sys.executable, "-c", RUN, every]
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


def test_run_builds_rebuilds_and_stops_on_sigterm(site_dir, runner, start_service):
    append_config(site_dir, FAST)
    service = start_service(site_dir, rebuild_every=1)
    # The first pass runs at start: a build, then the digest clock notes its slot. The
    # loop's first rebuild, a second later, finds nothing changed.
    unchanged = (
        r"^INFO: publisher\.run: build: .*, 0 files written, 18 unchanged; "
        r"0 pages written, 18 unchanged$"
    )
    assert service.wait_for(unchanged, 15), service.log
    assert _setting(site_dir, "next_digest") is not None, service.log
    first_titles = _titles(site_dir)
    assert len(first_titles) == 3
    assert service.logged(r"^INFO: publisher\.run: running: rebuild every 0:00:10, digest ")
    assert service.logged(r"^INFO: publisher\.run: build: 5 articles loaded .* 18 files written")
    status = status_lines(runner, site_dir)
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
    assert service.wait_for(r"^INFO: publisher\.run: build: 6 articles loaded ", 15), service.log
    assert "Night shift picks up a late story" in _titles(site_dir)  # logged once written
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
    assert status_lines(runner, site_dir)[3] == "service: not running"


def test_run_stops_on_sigint(site_dir, start_service):
    append_config(site_dir, FAST)
    service = start_service(site_dir)
    # Signalled once the first pass is over: a signal that lands before a job
    # starts rightly skips it, which would leave nothing to look at.
    assert service.wait_for(FIRST_PASS_OVER, 15), service.log
    assert _setting(site_dir, "next_digest") is not None, service.log
    code, stdout = service.stop(signal.SIGINT)
    assert code == 0, service.log
    assert stdout == ""
    assert service.log[-1] == "INFO: publisher.service.scheduler: stopped", service.log
    assert not service.logged("Traceback|KeyboardInterrupt|Aborted"), service.log
    assert len(_titles(site_dir)) == 3


def test_run_once_builds_and_notes_the_digest_slot_without_sending(site_dir, runner):
    subscribe_readers(site_dir, TEN_READERS[:3])
    site = load_config(site_dir / "publisher.toml")
    assert status_lines(runner, site_dir)[1:4] == [
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
    assert (
        first.stderr
        == built
        + "0 skipped with errors, 18 files written, 0 unchanged; 18 pages written, 0 unchanged\n"
    )
    assert len(_titles(site_dir)) == 3
    noted = _setting(site_dir, "digest_slot")
    assert noted in (before.isoformat(), after.isoformat())
    with open_store(site.state_db) as store:
        assert store.delivery_counts() == []
    assert not site.delivery.outbox_dir.exists()

    again = run_publisher(site_dir, "run", "--once")
    unchanged = (
        built
        + "0 skipped with errors, 0 files written, 18 unchanged; 0 pages written, 18 unchanged\n"
    )
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

    lines = status_lines(runner, site_dir)
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
        rf"last digest: 1, made {WHEN}, 3 articles: sent 3, "
        r"pending 0, sending 0, uncertain 0, failed 0",
        lines[5],
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
        append_config(site_dir, FAST + f'\n[feeds]\nwebsub_hub = "{hub.url}"\n')
        service = start_service(site_dir)
        assert service.wait_for(FIRST_PASS_OVER, 15), service.log
        assert _setting(site_dir, "next_digest") is not None, service.log
        # The digest check after the first build ran while all 18 pings still
        # hung on the hub (none has failed yet: the hub never answers, so the
        # pinger waits out its whole deadline).
        assert _ping_attempts(site_dir) == [0] * 18
        assert connected.wait(15)
        assert len(hub.connections) >= 1  # a connection is recorded before on_connect runs
        code, _stdout = service.stop(signal.SIGTERM)
    assert code == 0, service.log
    # Stopping waited for the pings in flight, and recorded them as failed.
    assert _ping_attempts(site_dir) == [1] * 18
    assert service.logged(
        r"^WARNING: publisher\.feeds\.websub: .*: 18 of 18 pings failed \(no answer"
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
    append_config(
        site_dir,
        '\n[delivery]\nmethod = "smtp"\nmax_attempts = 1\nbackoff = 0.01\n\n'
        f"[delivery.smtp]\nport = {port}\ntimeout = 5\n",
    )
    subscribe_readers(site_dir, TEN_READERS[:2])
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
            assert sorted(server.by_recipient()) == TEN_READERS[:2]
    assert [r.getMessage() for r in caplog.records if r.name == "publisher.run"] == [
        "digest: made none, sent 2, failed 0, deferred 0, uncertain 0 "
        "(nothing new since the last digest)"
    ]
    assert jobs.clock.handled == slot
    assert _setting(site_dir, "digest_slot") == slot.isoformat()


def test_run_reads_the_bounce_mailbox_when_one_is_configured(site_dir):
    from support.bounces import BOUNCE_ADDRESS, corpus_message, make_maildir

    subscribe_readers(site_dir, TEN_READERS[:1])
    secret = ENV["PUBLISHER_SECRET"].encode()  # the secret the service runs with
    make_maildir(
        site_dir / "mail" / "bounces",
        {
            "hard": corpus_message("postfix-hard.eml", secret),
            "away": corpus_message("vacation.eml", secret),
        },
    )
    append_config(
        site_dir, f'\n[bounces]\naddress = "{BOUNCE_ADDRESS}"\nmailbox = "mail/bounces"\n'
    )
    result = run_publisher(site_dir, "run", "--once")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"INFO: publisher.run: bounces: maildir:{site_dir / 'mail' / 'bounces'}: "
        "1 auto-reply, 1 hard bounce"
    )
    with open_store(load_config(site_dir / "publisher.toml").state) as store:
        assert store.get_subscriber(1).status == "bounced"
    assert sorted(
        p.name for p in (site_dir / "mail" / "bounces" / ".Processed" / "cur").iterdir()
    ) == [
        "away:2,S",
        "hard:2,S",
    ]


def test_the_digest_job_sends_each_cadence_at_its_slot_and_each_article_as_it_comes(site_dir):
    offer_choices(site_dir)
    append_config(site_dir, "")
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            '"daily at 07:00"]', '"daily at 07:00", "each article"]'
        ),
        encoding="utf-8",
    )
    site = load_config(config)
    clock = Clock(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # a Monday, 09:00 in Vienna
    with open_store(site.state) as store, store.transaction():
        for email, cadence in (("w@example.org", None), ("d@example.org", "daily at 07:00")):
            store.insert_subscriber(email, "", status="active", now=clock(), cadence=cadence)
        store.insert_subscriber(
            "e@example.org", "", status="active", now=clock(), cadence="each article"
        )
    build_site(site, now=clock())
    jobs = Jobs(
        site,
        now=clock,
        stop=threading.Event(),
        clock=run.digest_clock(site),
        rebuild_every=site.rebuild_every,
        others=run.other_clocks(site),
    )

    def who_got() -> list[str]:
        with open_store(site.state) as store:
            rows = store.conn.execute(
                "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
                "WHERE d.digest_id > ? ORDER BY 1",
                (who_got.seen,),
            ).fetchall()
            who_got.seen = store.latest_digest_id() or 0
        return [row[0] for row in rows]

    who_got.seen = 0
    jobs.digest_check()  # a first run notes the slots; "each article" goes now
    assert who_got() == ["e@example.org"]
    clock.current += timedelta(hours=1)
    jobs.digest_check()
    assert who_got() == []
    article = site.content_dir / "2026-12-01-new.md"
    article.write_text(
        '---\ntitle: "Talks resume"\ndate: "2026-11-30T10:30:00+01:00"\n---\n\nBody.\n',
        encoding="utf-8",
    )
    clock.current += timedelta(hours=1)  # 11:00 in Vienna
    build_site(site, now=clock())
    jobs.digest_check()
    assert who_got() == ["e@example.org"]
    clock.current += timedelta(hours=20)  # Tuesday, 07:00: the daily slot
    jobs.digest_check()
    assert who_got() == ["d@example.org"]
    clock.current += timedelta(days=6)  # the next Monday, after 07:00
    jobs.digest_check()
    assert who_got() == ["w@example.org"]
