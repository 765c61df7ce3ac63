"""`publisher run`: its jobs (rebuild, digest, bounces), the line each logs, and their loop.

The command line holds the site lock for the service's lifetime and turns
SIGTERM and SIGINT into `stop`; everything between is here. The rebuild job
builds, wakes the WebSub pinger (a thread of its own, so a slow hub never
delays a job) and notes when it will rebuild next. The digest job asks the
digest clock whether a slot has come, finishes any digest left unfinished,
and after a failed send waits DIGEST_RETRY before it tries again, rather
than every 30 s. Each job logs one line on "publisher.run" whatever it
found, so the journal shows what the service did.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from publisher.config import EACH_ARTICLE, Cadence, SiteConfig
from publisher.feeds.websub import BackgroundPinger
from publisher.output import remove_stale_temps
from publisher.pipelines import build
from publisher.service.lock import making_lock
from publisher.service.scheduler import DigestClock, Service, next_slot
from publisher.service.summary import build_summary
from publisher.store import open_store, settings

if TYPE_CHECKING:
    from publisher.pipelines.digests import SendReport

# Not __name__: operators filter their journals on this name, and the README shows it.
logger = logging.getLogger("publisher.run")

DIGEST_RETRY = timedelta(minutes=5)  # after a failed send, before trying again


def run_service(
    site: SiteConfig,
    *,
    once: bool,
    stop: threading.Event,
    now: Callable[[], datetime],
    rebuild_every: timedelta | None = None,
) -> None:
    """Run the jobs as they fall due until *stop* is set; with *once*, one pass of each.

    The caller holds the site lock. *rebuild_every* replaces the site's
    `[schedule] rebuild_every` as the loop's interval (the start-up line still
    names the configured one): a test then need not wait out its 10 s minimum.
    `run --once` pings the hub itself once the lock is released; the service
    pings from its own thread, and waits for the pings in flight when it stops.
    """
    interval = site.rebuild_every if rebuild_every is None else rebuild_every
    jobs = Jobs(
        site,
        now=now,
        stop=stop,
        clock=digest_clock(site),
        rebuild_every=interval,
        others=other_clocks(site),
    )
    extra = () if site.bounces.mailbox is None else (("bounces", site.bounces.every, jobs.bounces),)
    service = Service(
        rebuild=jobs.rebuild,
        digest_check=jobs.digest_check,
        rebuild_every=interval,
        stop=stop,
        extra=extra,
    )
    if once:
        service.run_once()
        return
    if site.feeds.websub_hub:
        jobs.pinger = BackgroundPinger(site.state, site.feeds.websub_hub, now=now)
    logger.info(
        "running: rebuild every %s, digest %s (%s)",
        site.rebuild_every,
        site.digest.cadence,
        site.timezone.key,
    )
    try:
        service.run_forever()
    finally:
        if jobs.pinger is not None:
            jobs.pinger.close()


def digest_clock(site: SiteConfig) -> DigestClock:
    """The site's digest clock, starting from the last slot a run handled (kept in the store)."""
    return _clock(site, site.digest.cadence, settings.DIGEST_SLOT)


def other_clocks(site: SiteConfig) -> dict[Cadence, DigestClock]:
    """A clock for each other cadence subscribers may choose ("each article" needs none)."""
    return {
        cadence: _clock(site, cadence, slot_setting(cadence))
        for cadence in site.digest.cadences
        if cadence != site.digest.cadence and not cadence.each_article
    }


def slot_setting(cadence: Cadence) -> str:
    return f"{settings.DIGEST_SLOT} {cadence}"


def _clock(site: SiteConfig, cadence: Cadence, key: str) -> DigestClock:
    with open_store(site.state) as store:
        handled = store.get_setting(key)
    return DigestClock(cadence, site.timezone, datetime.fromisoformat(handled) if handled else None)


@dataclass
class Jobs:
    """The rebuild and digest jobs of one service, and what they keep between runs."""

    site: SiteConfig
    now: Callable[[], datetime]
    stop: threading.Event
    clock: DigestClock
    rebuild_every: timedelta
    pinger: BackgroundPinger | None = None
    failed_at: datetime | None = None  # when the last digest send failed, until one succeeds
    others: dict[Cadence, DigestClock] = field(default_factory=dict)  # the other cadences'
    # "each article": the publication number and local day of the last send that ran.
    each_seen: tuple[int, date] | None = None
    _kept: dict[str, datetime | None] = field(default_factory=dict)  # each slot as last written

    def rebuild(self) -> None:
        """Build, log the build's warnings and its summary, note when the next rebuild is."""
        try:
            report = build.build(self.site, now=self.now())
        finally:
            if self.pinger is not None:
                self.pinger.wake()  # what this build changed, and earlier pings now due
        for problem in report.problems:
            for line in problem.lines:
                logger.warning("%s", line)
        for line in report.warnings:
            logger.warning("%s", line)
        logger.info("build: %s", build_summary(report))  # also when nothing changed: it ran
        _record(self.site, settings.NEXT_REBUILD, self.now() + self.rebuild_every)

    def digest_check(self) -> None:
        """Send the digests whose slots have come, or finish ones left unfinished.

        A slot is handled once its digests went out, not when a stop cut the
        send short: the next run finishes them. "Each article" subscribers
        are due whenever something was published since the last send (or a
        new day lifts max_per_day).
        """
        now = self.now()
        if self.failed_at is not None and now - self.failed_at < DIGEST_RETRY:
            return
        slots = self._due_slots(now)
        each = self._each_article_due(now)
        _record(
            self.site,
            settings.NEXT_DIGEST,
            next_slot(self.site.digest.cadence, self.site.timezone, now),
        )
        if not slots and each is None and not _has_unfinished(self.site):
            return
        report = self._send(
            make_new=bool(slots) or each is not None,
            due=lambda cadence: cadence in slots or (cadence.each_article and each is not None),
        )
        if not report.stopped:
            self._handled(slots)
            self.each_seen = each or self.each_seen
        logger.info(
            "digest: made %s, sent %d, failed %d, deferred %d, uncertain %d%s",
            ", ".join(str(i) for i in report.made) or "none",
            report.sent,
            report.failed,
            report.deferred,
            report.uncertain,
            f" ({report.note})" if report.note else "",
        )

    def _due_slots(self, now: datetime) -> dict[Cadence, datetime]:
        """Each cadence whose slot has come, with the slot (a first run only notes them)."""
        due = {}
        for key, clock in self._clocks():
            slot = clock.due(now)
            if self._kept.get(key) != clock.handled:  # written once, then when it moves
                _record(self.site, key, clock.handled)
                self._kept[key] = clock.handled
            if slot is not None:
                due[clock.cadence] = slot
        return due

    def _clocks(self) -> list[tuple[str, DigestClock]]:
        """Every cadence's clock, with the setting its handled slot is kept under."""
        others = [(slot_setting(cadence), clock) for cadence, clock in self.others.items()]
        return [(settings.DIGEST_SLOT, self.clock), *others]

    def _handled(self, slots: dict[Cadence, datetime]) -> None:
        for key, clock in self._clocks():
            if clock.cadence in slots:
                clock.handled = slots[clock.cadence]
                _record(self.site, key, clock.handled)
                self._kept[key] = clock.handled

    def _each_article_due(self, now: datetime) -> tuple[int, date] | None:
        """(publication number, local day) when "each article" has something to look at."""
        if EACH_ARTICLE not in self.site.digest.cadences:
            return None
        with open_store(self.site.state) as store:
            seen = (store.publication_seq(), now.astimezone(self.site.timezone).date())
        return None if seen == self.each_seen else seen

    def bounces(self) -> None:
        """Read the bounce mailbox ([bounces] mailbox) and log what it held, in one line."""
        # Imported here: a service without a mailbox loads none of it.
        from publisher.delivery.bounces import intake
        from publisher.delivery.bounces.mailboxes import open_folder
        from publisher.mail.secret import site_secret

        bounces = self.site.bounces
        assert bounces.mailbox is not None  # the job exists only then
        with open_store(self.site.state) as store:
            rules = intake.IntakeRules(
                site_secret(self.site, store), bounces.address, bounces.soft_limit
            )
            folder = open_folder(bounces.mailbox, processed=bounces.processed_folder)
            try:
                tally = intake.process_folder(
                    store, folder, rules, now=self.now, should_stop=self.stop.is_set
                )
            finally:
                folder.close()
        logger.info("bounces: %s: %s", folder.description, tally.summary())

    def _send(self, *, make_new: bool, due: Callable[[Cadence], bool]) -> SendReport:
        """Send what is pending (and a new digest when *make_new*); a failure starts the wait."""
        # Imported here: a pass with no digest due loads none of the mail stack.
        from publisher.pipelines import digests

        # `serve` writes confirmations to the outbox without the site lock.
        remove_stale_temps([self.site.delivery.outbox_dir], now=self.now())
        try:
            report = digests.send_digests(
                self.site,
                now=self.now,
                should_stop=self.stop.is_set,
                make_new=make_new,
                making=lambda: _making_lock(self.site),
                due=due,
            )
        except Exception:
            self.failed_at = self.now()
            raise
        self.failed_at = None
        return report


@contextlib.contextmanager
def _making_lock(site: SiteConfig) -> Iterator[bool]:
    """The service holds the site lock: it always makes, once senders elsewhere let it."""
    display = site.display(site.state_dir)
    with making_lock(site.state_dir, display=display, state_url=site.state_url):
        yield True


def _record(site: SiteConfig, key: str, moment: datetime | None) -> None:
    if moment is None:
        return
    with open_store(site.state) as store, store.transaction():
        store.set_setting(key, moment.isoformat())


def _has_unfinished(site: SiteConfig) -> bool:
    with open_store(site.state) as store:
        return bool(store.unfinished_digests())
