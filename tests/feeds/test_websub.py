"""feeds.websub: pings go out after the build, never holding it up.

A build records the feeds it changed as pending pings in the store; a pinger
(the `build` command once the site lock is released, `run --once` likewise,
a background thread in `publisher run`) sends the due ones concurrently
within one short deadline, and a failed ping is retried by later runs with
backoff until the hub accepts it."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest
from support.feeds import site_with_hub
from support.processes import run_publisher, start_publisher
from support.websub_hub import SilentHub

from publisher.cli import cli
from publisher.config import SiteConfig, load_config
from publisher.errors import LockHeldError
from publisher.feeds import websub
from publisher.pipelines.build import build
from publisher.service.lock import site_lock

FEEDS_URL = "https://gazette.example/news/feeds/"


def _edit(site: SiteConfig) -> None:
    path = site.content_dir / "2022-08-09-fisheries.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("nine", "ten"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _build_and_ping(site: SiteConfig, now: datetime) -> websub.PingReport:
    """What `publisher build` does: build under the lock, then ping what is due."""
    build(site, now=now)
    assert site.feeds.websub_hub is not None
    return websub.ping_pending(site.state_db, site.feeds.websub_hub, now=now)


def _pending(site: SiteConfig) -> dict[str, tuple[int, str, str | None]]:
    """url -> (attempts, next_attempt, last_error), as the store holds them."""
    connection = sqlite3.connect(site.state_db)
    try:
        rows = connection.execute(
            "SELECT url, attempts, next_attempt, last_error FROM websub_pings"
        ).fetchall()
    finally:
        connection.close()
    return {url: (attempts, due, error) for url, attempts, due, error in rows}


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _all_feeds(site: SiteConfig) -> list[str]:
    return sorted(
        FEEDS_URL + path.relative_to(site.output_dir).as_posix()
        for path in site.output_dir.rglob("*")
        if path.is_file()
    )


def test_the_build_records_pings_and_the_pinger_sends_them_for_changed_feeds_only(
    site_dir, hub, now
):
    site = site_with_hub(site_dir, hub.url)
    build(site, now=now)
    assert hub.pings == []  # the build itself never talks to the hub
    assert _pending(site) == {url: (0, _at(now), None) for url in _all_feeds(site)}
    report = websub.ping_pending(site.state_db, hub.url, now=now)
    assert sorted(report.accepted) == hub.urls() == _all_feeds(site)
    assert report.failed == ()
    assert len(hub.urls()) == 18
    assert all(ping["hub.mode"] == ["publish"] for ping in hub.pings)
    assert _pending(site) == {}
    hub.pings.clear()
    _build_and_ping(site, now)
    assert hub.pings == []
    _edit(site)
    _build_and_ping(site, now)
    assert hub.urls() == sorted(
        f"{FEEDS_URL}{folder}{name}"
        for folder in ("", "tags/asia-pacific/")
        for name in ("atom.xml", "feed.json", "rss.xml")
    )
    assert _pending(site) == {}


def test_failed_pings_are_retried_by_later_runs_with_backoff_until_accepted(
    site_dir, hub, now, caplog
):
    site = site_with_hub(site_dir, hub.url)
    hub.status = 503
    report = _build_and_ping(site, now)
    assert len(report.failed) == 18
    assert f"websub: {hub.url}: 18 of 18 pings failed (answered 503)" in caplog.text
    first_retry = now + timedelta(minutes=1)
    assert _pending(site) == {
        url: (1, _at(first_retry), "answered 503") for url in _all_feeds(site)
    }

    hub.pings.clear()
    before = _build_and_ping(site, first_retry - timedelta(seconds=1))
    assert hub.pings == []  # not due yet
    assert before == websub.PingReport((), ())
    again = _build_and_ping(site, first_retry)  # a run with no change retries what is due
    assert len(hub.urls()) == 18
    assert len(again.failed) == 18
    second_retry = first_retry + timedelta(minutes=2)
    assert set(_pending(site).values()) == {(2, _at(second_retry), "answered 503")}

    hub.status = 204
    hub.pings.clear()
    _build_and_ping(site, second_retry - timedelta(seconds=1))
    assert hub.pings == []
    accepted = _build_and_ping(site, second_retry)
    assert sorted(accepted.accepted) == hub.urls() == _all_feeds(site)
    assert _pending(site) == {}
    hub.pings.clear()
    _build_and_ping(site, second_retry + timedelta(hours=1))
    assert hub.pings == []  # accepted pings are not sent again


def test_a_change_is_pinged_at_once_even_while_older_pings_back_off(site_dir, hub, now):
    site = site_with_hub(site_dir, hub.url)
    hub.status = 503
    _build_and_ping(site, now)
    hub.status = 204
    hub.pings.clear()
    _edit(site)
    later = now + timedelta(seconds=10)
    _build_and_ping(site, later)
    changed = sorted(
        f"{FEEDS_URL}{folder}{name}"
        for folder in ("", "tags/asia-pacific/")
        for name in ("atom.xml", "feed.json", "rss.xml")
    )
    assert hub.urls() == changed
    pending = _pending(site)
    assert sorted(pending) == sorted(set(_all_feeds(site)) - set(changed))
    assert set(pending.values()) == {(1, _at(now + timedelta(minutes=1)), "answered 503")}


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [
        (1, timedelta(minutes=1)),
        (2, timedelta(minutes=2)),
        (3, timedelta(minutes=4)),
        (9, timedelta(minutes=256)),
        (10, timedelta(hours=6)),
        (1000, timedelta(hours=6)),
    ],
)
def test_retry_delay_doubles_up_to_six_hours(attempts, delay):
    assert websub.retry_delay(attempts) == delay


def test_an_unreachable_hub_is_logged_and_kept_pending(site_dir, now, caplog):
    from support.smtp_server import free_port

    url = f"http://127.0.0.1:{free_port()}/"
    site = site_with_hub(site_dir, url)
    report = _build_and_ping(site, now)
    assert len(report.failed) == 18
    assert "18 of 18 pings failed (cannot reach the hub: " in caplog.text
    attempts = {attempts for attempts, _due, _error in _pending(site).values()}
    assert attempts == {1}


@pytest.mark.parametrize("command", [["build"], ["run", "--once"]], ids=" ".join)
def test_a_hub_that_never_answers_delays_no_one(site_dir, runner, monkeypatch, command):
    # 18 pings to a hub that takes the connection and never answers: each
    # waited 10 s in turn, holding the site lock, and every other command
    # got exit 75 meanwhile.
    monkeypatch.setattr(websub, "DEADLINE", 1.0)
    state_dir = site_dir / ".publisher"
    lock_seen: list[str] = []

    def try_the_lock() -> None:
        now = datetime.now(UTC)
        try:
            with site_lock(state_dir, command="digest send", now=now, display="lock"):
                lock_seen.append("free")
        except LockHeldError:
            lock_seen.append("held")

    with SilentHub(on_connect=try_the_lock) as silent:
        site = site_with_hub(site_dir, silent.url)
        started = time.monotonic()
        result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), *command])
        elapsed = time.monotonic() - started
        assert len(silent.connections) >= 1
    assert result.exit_code == 0, result.output
    assert (site.output_dir / "rss.xml").is_file()
    assert lock_seen
    assert set(lock_seen) == {"free"}
    # Every ping failed within the one deadline and waits for its retry.
    pending = _pending(site)
    assert sorted(pending) == _all_feeds(site)
    assert {(attempts, error) for attempts, _due, error in pending.values()} == {
        (1, "no answer within 1 s")
    }
    assert "18 of 18 pings failed (no answer within 1 s)" in result.stderr
    assert elapsed < 10  # loosely: well under one 10 s timeout, let alone 18 of them


def test_build_reports_and_frees_the_lock_before_the_hub_answers(site_dir):
    with SilentHub() as silent:
        site_with_hub(site_dir, silent.url)
        first = start_publisher(site_dir, "build")
        assert first.stdout is not None
        line = first.stdout.readline()  # printed before any ping is sent
        assert line.endswith(", 18 files written, 0 unchanged; 18 pages written, 0 unchanged\n")
        # While its pings hang, another command gets the site lock.
        second = run_publisher(site_dir, "build")
        assert second.returncode == 0, second.stderr
        assert second.stdout.endswith(
            ", 0 files written, 18 unchanged; 0 pages written, 18 unchanged\n"
        )
        rest, stderr = first.communicate(timeout=60)
        assert first.returncode == 0, stderr
        assert rest == ""
    assert "18 of 18 pings failed (no answer within " in stderr
    site = load_config(site_dir / "publisher.toml")
    # Two pingers at once: each row failed once, none lost.
    pending = _pending(site)
    assert sorted(pending) == _all_feeds(site)
    assert {attempts for attempts, _due, _error in pending.values()} == {1}
