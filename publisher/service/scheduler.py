"""`publisher run`: rebuild on an interval and send digests at their times, until stopped.

Jobs run on a private `schedule.Scheduler` (never the library's global one).
Whether a digest is due is worked out from the cadence in the site's time
zone and the last slot handled, kept in the store: so a digest missed while
the service was down goes out when it is back, a DST change never sends two
or none, and a clock jump backwards sends nothing again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import schedule

from publisher.config import Cadence
from publisher.errors import PublisherError

logger = logging.getLogger(__name__)

DIGEST_CHECK_SECONDS = 30
MAX_SLEEP_SECONDS = 1.0


def latest_slot(cadence: Cadence, timezone: ZoneInfo, now: datetime) -> datetime:
    """The most recent digest time at or before *now*, as an aware datetime.

    Local times that do not exist (spring forward) or exist twice (fall back)
    resolve through zoneinfo's fold=0 rule, once per day either way.
    """
    # Compare instants: aware datetimes in the same zone compare (and subtract)
    # by wall clock, which goes wrong in the repeated hour of a fall-back night.
    now = now.astimezone(UTC)
    local_today = now.astimezone(timezone).date()
    for days_back in range(0, 8):
        day: date = local_today - timedelta(days=days_back)
        if cadence.weekday is not None and day.weekday() != cadence.weekday:
            continue
        slot = datetime.combine(day, time(cadence.hour, cadence.minute), tzinfo=timezone)
        # Normalise a non-existent local time to the instant it names.
        slot = slot.astimezone(UTC).astimezone(timezone)
        if slot <= now:
            return slot
    message = f"no digest slot within a week before {now.isoformat()}"  # pragma: no cover
    raise AssertionError(message)  # pragma: no cover


def next_slot(cadence: Cadence, timezone: ZoneInfo, now: datetime) -> datetime:
    """The first digest time after *now*."""
    now = now.astimezone(UTC)
    probe = now + timedelta(days=8)
    slot = latest_slot(cadence, timezone, probe)
    while True:
        # One second before the slot in UTC: wall-clock arithmetic could land
        # in a skipped hour and name an instant after the slot.
        earlier = latest_slot(cadence, timezone, slot.astimezone(UTC) - timedelta(seconds=1))
        if earlier <= now:
            return slot
        slot = earlier


@dataclass
class DigestClock:
    """Decides when a digest is due; `handled` is the last slot dealt with."""

    cadence: Cadence
    timezone: ZoneInfo
    handled: datetime | None

    def due(self, now: datetime) -> datetime | None:
        """The slot to send for now, or None. A first run only notes the current slot."""
        slot = latest_slot(self.cadence, self.timezone, now)
        if self.handled is None:
            self.handled = slot
            return None
        if slot > self.handled:
            return slot
        return None


@dataclass
class Service:
    """The jobs of `publisher run` and the loop that runs them."""

    rebuild: Callable[[], None]
    digest_check: Callable[[], None]
    rebuild_every: timedelta
    stop: threading.Event = field(default_factory=threading.Event)
    scheduler: schedule.Scheduler = field(default_factory=schedule.Scheduler)
    on_idle: Callable[[schedule.Scheduler], None] = lambda _s: None
    # More jobs, each (name, interval, job): the bounce mailbox when one is configured.
    extra: tuple[tuple[str, timedelta, Callable[[], None]], ...] = ()
    # The naive local wall clock that schedule keeps its jobs' times by.
    local_now: Callable[[], datetime] = datetime.now
    _periods: list[tuple[schedule.Job, timedelta]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        seconds = int(self.rebuild_every.total_seconds())
        rebuild = self.scheduler.every(seconds).seconds.do(self._guarded, "rebuild", self.rebuild)
        digest = self.scheduler.every(DIGEST_CHECK_SECONDS).seconds.do(
            self._guarded, "digest", self.digest_check
        )
        self._periods = [
            (rebuild, timedelta(seconds=seconds)),
            (digest, timedelta(seconds=DIGEST_CHECK_SECONDS)),
        ]
        for name, every, job in self.extra:
            period = int(every.total_seconds())
            scheduled = self.scheduler.every(period).seconds.do(self._guarded, name, job)
            self._periods.append((scheduled, timedelta(seconds=period)))

    def run_once(self) -> None:
        """Everything due now, in order: the rebuild, the digest, then the others."""
        self._guarded("rebuild", self.rebuild)
        if not self.stop.is_set():
            self._guarded("digest", self.digest_check)
        for name, _every, job in self.extra:
            self._guarded(name, job)

    def run_forever(self) -> None:
        """Run jobs as they fall due until `stop` is set (by SIGTERM or SIGINT)."""
        self.run_once()
        while not self.stop.is_set():
            self.run_pending()
            self.on_idle(self.scheduler)
            idle = self.scheduler.idle_seconds
            # Wake at least every second so a stop request is noticed promptly.
            self.stop.wait(
                MAX_SLEEP_SECONDS if idle is None else max(0.0, min(idle, MAX_SLEEP_SECONDS))
            )
        logger.info("stopped")

    def run_pending(self) -> None:
        """Run the jobs that are due.

        schedule keeps each job's next run as a naive local time: when the wall
        clock goes back (the autumn DST change on a machine that keeps local
        time, an NTP correction), every job would wait that much longer. A job
        due further away than its interval is brought back within it first.
        """
        now = self.local_now()
        for job, period in self._periods:
            if job.next_run is not None and job.next_run - now > period:
                job.next_run = now + period
        self.scheduler.run_pending()

    def _guarded(self, name: str, job: Callable[[], None]) -> None:
        # schedule lets a job's exception escape run_pending (and so the loop):
        # a failing job is logged, and the service goes on.
        if self.stop.is_set():
            return
        try:
            job()
        except PublisherError as err:
            for line in err.lines():
                logger.error("%s job: %s", name, line)
        except Exception:
            logger.exception("%s job failed", name)
