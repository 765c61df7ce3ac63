"""service.status: a site's status read from what the runs left, creating nothing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from support.mailing import add_subscribers

from publisher.mail.subscribers import remove_subscriber
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.service.lock import site_lock
from publisher.service.scheduler import next_slot
from publisher.service.status import BuildCounts, SiteStatus, site_status
from publisher.store import open_store, settings
from publisher.tokens import load_secret


def test_a_site_never_built_has_a_status_and_looking_makes_no_state(site, now):
    upcoming = next_slot(site.digest.cadence, site.timezone, now)
    assert site_status(site, now=now) == SiteStatus(upcoming_digest=upcoming)
    assert upcoming == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 07:00 in Vienna
    assert not site.state_dir.exists()


def test_the_status_reads_what_the_last_build_and_digest_left(site, now):
    add_subscribers(site, ["ada@example.org", "bo@example.org", "cy@example.org"], now)
    build(site, now=now)
    assert digests.send_digests(site, now=lambda: now).sent == 3
    with open_store(site.state_db) as store, store.transaction():
        remove_subscriber(store, load_secret(site.state_dir), "bo@example.org", now=now)
        store.set_subscriber_status(3, "bounced", now=now)
    status = site_status(site, now=now)
    assert status.last_build == now
    assert status.counts == BuildCounts(loaded=5, published=3, drafts=1, scheduled=1)
    assert status.next_article == datetime(2031, 1, 15, 7, 0, tzinfo=UTC)  # 08:00 in Vienna
    assert status.last_digest is not None
    last = status.last_digest
    assert (last.digest_id, last.articles, last.sent, last.pending) == (1, 3, 2, 0)  # bo's row went
    assert (status.active, status.unsubscribed, status.bounced, status.suppressed) == (1, 0, 1, 1)
    assert (status.lock_holder, status.next_rebuild, status.next_digest) == (None, None, None)


def test_what_the_service_noted_is_read_back(site, now):
    build(site, now=now)
    with open_store(site.state_db) as store, store.transaction():
        store.set_setting(settings.NEXT_REBUILD, (now + timedelta(minutes=5)).isoformat())
        store.set_setting(settings.NEXT_DIGEST, "2026-11-30T07:00:00+01:00")
    status = site_status(site, now=now)
    assert status.next_rebuild == now + timedelta(minutes=5)
    assert status.next_digest == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_the_service_runs_only_while_publisher_run_holds_the_lock(site, now):
    for command, running in (("run", True), ("run --once", False), ("digest send", False)):
        with site_lock(site.state_dir, command=command, now=now, display="lock"):
            status = site_status(site, now=now)
        assert status.lock_holder == (
            f"pid {os.getpid()}, `publisher {command}`, since 2026-11-27 12:00:00 UTC"
        )
        assert status.service_running is running
    assert site_status(site, now=now).lock_holder is None
