"""Digest slots across both DST changes of 2027, the digest clock, and the service loop."""

from __future__ import annotations

import datetime as datetime_module
import itertools
import logging
import threading
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import schedule

from publisher.config import Cadence
from publisher.errors import ContentError, FieldProblem
from publisher.service.scheduler import DigestClock, Service, latest_slot, next_slot

VIENNA = ZoneInfo("Europe/Vienna")
DAILY_0230 = Cadence(None, 2, 30)  # 28 March: does not exist; 31 October: exists twice
DAILY_0700 = Cadence(None, 7, 0)
SUNDAY_0230 = Cadence(6, 2, 30)  # both DST changes of 2027 fall on a Sunday
SUNDAY_0700 = Cadence(6, 7, 0)
# Vienna in 2027: 28 March 01:00 UTC, 02:00 CET → 03:00 CEST;
# 31 October 01:00 UTC, 03:00 CEST → 02:00 CET.
SPRING = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
AUTUMN = datetime(2027, 10, 31, 1, 0, tzinfo=UTC)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=UTC)


def as_given(moment: datetime, local: bool) -> datetime:
    """The same instant, in UTC (as the CLI passes it) or in Vienna time (with its fold)."""
    return moment.astimezone(VIENNA if local else UTC)


def minutes(start: datetime, end: datetime) -> Iterator[datetime]:
    moment = start
    while moment < end:
        yield moment
        moment += timedelta(minutes=1)


def due_slots(clock: DigestClock, moments: Iterator[datetime], local: bool) -> list[datetime]:
    """Feed *moments* to the clock as the service does: a due slot, once sent, is handled."""
    sent = []
    for moment in moments:
        slot = clock.due(as_given(moment, local))
        if slot is not None:
            sent.append(slot.astimezone(UTC))
            clock.handled = slot
    return sent


CADENCES = {
    "daily 02:30": DAILY_0230,
    "daily 07:00": DAILY_0700,
    "sunday 02:30": SUNDAY_0230,
    "sunday 07:00": SUNDAY_0700,
}
SLOTS = [
    # cadence, now, the latest slot at or before now, the next slot after now (all UTC, 2027)
    ("daily 02:30", "03-28 00:59", "03-27 01:30", "03-28 01:30"),  # 01:59 CET, before the change
    ("daily 02:30", "03-28 01:29", "03-27 01:30", "03-28 01:30"),  # 03:29 CEST
    ("daily 02:30", "03-28 01:30", "03-28 01:30", "03-29 00:30"),  # 03:30 CEST: 02:30 CET
    ("daily 02:30", "03-29 00:29", "03-28 01:30", "03-29 00:30"),
    ("daily 02:30", "10-31 00:29", "10-30 00:30", "10-31 00:30"),
    ("daily 02:30", "10-31 00:30", "10-31 00:30", "11-01 01:30"),  # the first 02:30 (CEST)
    ("daily 02:30", "10-31 01:10", "10-31 00:30", "11-01 01:30"),  # the second 02:10 (CET)
    ("daily 02:30", "10-31 01:30", "10-31 00:30", "11-01 01:30"),  # the second 02:30: no slot
    ("daily 07:00", "03-28 04:59", "03-27 06:00", "03-28 05:00"),
    ("daily 07:00", "03-28 05:00", "03-28 05:00", "03-29 05:00"),
    ("daily 07:00", "10-31 05:59", "10-30 05:00", "10-31 06:00"),
    ("daily 07:00", "10-31 06:00", "10-31 06:00", "11-01 06:00"),
    ("sunday 02:30", "03-28 01:00", "03-21 01:30", "03-28 01:30"),
    ("sunday 02:30", "03-28 01:30", "03-28 01:30", "04-04 00:30"),
    ("sunday 02:30", "10-31 01:10", "10-31 00:30", "11-07 01:30"),
    ("sunday 07:00", "03-27 12:00", "03-21 06:00", "03-28 05:00"),
    ("sunday 07:00", "10-31 06:00", "10-31 06:00", "11-07 06:00"),
]


def at(text: str) -> datetime:
    """ "MM-DD HH:MM" in 2027, UTC."""
    return datetime.strptime(f"2027-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@pytest.mark.parametrize("local", [False, True], ids=["now-utc", "now-local"])
@pytest.mark.parametrize(("cadence", "now", "latest", "upcoming"), SLOTS)
def test_latest_and_next_slot(cadence, now, latest, upcoming, local):
    # Compared in UTC: an aware datetime in the repeated hour never equals one in another zone.
    found = latest_slot(CADENCES[cadence], VIENNA, as_given(at(now), local))
    assert found.astimezone(UTC) == at(latest)
    assert found.tzinfo is VIENNA
    following = next_slot(CADENCES[cadence], VIENNA, as_given(at(now), local))
    assert following.astimezone(UTC) == at(upcoming)


@pytest.mark.parametrize("local", [False, True], ids=["now-utc", "now-local"])
@pytest.mark.parametrize(
    ("change", "cadence", "local_times"),
    [
        (SPRING, DAILY_0230, ["02:30 CET", "02:30 CET", "03:30 CEST", "02:30 CEST", "02:30 CEST"]),
        (SPRING, DAILY_0700, ["07:00 CET", "07:00 CET", "07:00 CEST", "07:00 CEST", "07:00 CEST"]),
        (AUTUMN, DAILY_0230, ["02:30 CEST", "02:30 CEST", "02:30 CEST", "02:30 CET", "02:30 CET"]),
        (AUTUMN, DAILY_0700, ["07:00 CEST", "07:00 CEST", "07:00 CET", "07:00 CET", "07:00 CET"]),
    ],
    ids=["spring-0230", "spring-0700", "autumn-0230", "autumn-0700"],
)
def test_one_slot_a_day_across_a_dst_change(change, cadence, local_times, local):
    # Walk next_slot from two days before the change to two days after.
    moment = change - timedelta(days=2, hours=12)
    found = []
    for _ in range(5):
        moment = next_slot(cadence, VIENNA, as_given(moment, local))
        found.append(moment)
    days = [slot.astimezone(VIENNA).date() for slot in found]
    assert days == [change.date() + timedelta(days=n) for n in range(-2, 3)]
    assert [slot.astimezone(VIENNA).strftime("%H:%M %Z") for slot in found] == local_times
    assert all(latest_slot(cadence, VIENNA, slot) == slot for slot in found)
    assert all(
        latest_slot(cadence, VIENNA, slot - timedelta(seconds=1)) == earlier
        for earlier, slot in itertools.pairwise(found)
    )


@pytest.mark.parametrize(
    ("change", "hour", "local_times"),
    [
        (SPRING, 2, ["02:00 CET", "03:00 CEST", "02:00 CEST"]),  # 02:00 is the change itself
        (SPRING, 3, ["03:00 CET", "03:00 CEST", "03:00 CEST"]),  # the first instant after it
        (AUTUMN, 2, ["02:00 CEST", "02:00 CEST", "02:00 CET"]),  # the first 02:00 of two
        (AUTUMN, 3, ["03:00 CEST", "03:00 CET", "03:00 CET"]),  # the change itself
    ],
)
def test_next_slot_at_the_edges_of_the_changed_hour(change, hour, local_times):
    # next_slot steps back one second from a slot: in wall-clock time, 03:00
    # CEST minus one second is 02:59:59, which does not exist and names an
    # instant an hour *after* the slot.
    moment = change - timedelta(days=1, hours=3)
    found = []
    for _ in range(3):
        moment = next_slot(Cadence(None, hour, 0), VIENNA, moment)
        found.append(moment)
    assert [slot.astimezone(VIENNA).date() for slot in found] == [
        change.date() + timedelta(days=n) for n in (-1, 0, 1)
    ]
    assert [slot.astimezone(VIENNA).strftime("%H:%M %Z") for slot in found] == local_times


def test_first_call_notes_the_current_slot_without_sending():
    clock = DigestClock(DAILY_0700, VIENNA, handled=None)
    assert clock.due(utc(3, 28, 12)) is None
    assert clock.handled == utc(3, 28, 5)
    assert clock.due(utc(3, 28, 12, 1)) is None
    assert clock.due(utc(3, 29, 5)) == utc(3, 29, 5)


@pytest.mark.parametrize("local", [False, True], ids=["now-utc", "now-local"])
@pytest.mark.parametrize(
    ("change", "cadence", "expected"),
    [
        (SPRING, DAILY_0230, [utc(3, 27, 1, 30), utc(3, 28, 1, 30), utc(3, 29, 0, 30)]),
        (SPRING, DAILY_0700, [utc(3, 27, 6), utc(3, 28, 5), utc(3, 29, 5)]),
        (AUTUMN, DAILY_0230, [utc(10, 30, 0, 30), utc(10, 31, 0, 30), utc(11, 1, 1, 30)]),
        (AUTUMN, DAILY_0700, [utc(10, 30, 5), utc(10, 31, 6), utc(11, 1, 6)]),
    ],
    ids=["spring-0230", "spring-0700", "autumn-0230", "autumn-0700"],
)
def test_due_once_a_day_minute_by_minute_across_a_dst_change(change, cadence, expected, local):
    clock = DigestClock(cadence, VIENNA, handled=None)
    start = change - timedelta(days=1, hours=13)
    sent = due_slots(clock, minutes(start, start + timedelta(days=3)), local)
    assert sent == expected
    # Each went out in the minute it fell due, not later.
    assert all(slot.second == 0 and slot.microsecond == 0 for slot in sent)


def test_due_weekly_once_across_the_autumn_change():
    clock = DigestClock(SUNDAY_0230, VIENNA, handled=None)
    start = utc(10, 27, 12)
    sent = due_slots(clock, minutes(start, start + timedelta(days=14)), local=True)
    assert sent == [utc(10, 31, 0, 30), utc(11, 7, 1, 30)]


@pytest.mark.parametrize("local", [False, True], ids=["now-utc", "now-local"])
def test_a_clock_jump_backwards_sends_nothing_again(local):
    clock = DigestClock(DAILY_0230, VIENNA, handled=None)
    assert due_slots(clock, minutes(utc(10, 30, 12), utc(10, 31, 3)), local) == [utc(10, 31, 0, 30)]
    # The clock is set back two days and runs on past the slot it already sent.
    assert due_slots(clock, minutes(utc(10, 29, 3), utc(10, 31, 3)), local) == []
    # The repeated hour of the autumn night alone (02:00–03:00 CET) sends nothing either.
    assert due_slots(clock, minutes(utc(10, 31, 1), utc(10, 31, 2)), local) == []
    assert due_slots(clock, minutes(utc(10, 31, 3), utc(11, 1, 3)), local) == [utc(11, 1, 1, 30)]


def test_a_slot_read_back_from_the_store_compares_by_instant():
    # `publisher run` keeps the handled slot as ISO text: a fixed UTC offset.
    handled = datetime.fromisoformat(
        latest_slot(DAILY_0230, VIENNA, utc(10, 31, 0, 30)).isoformat()
    )
    assert handled.isoformat() == "2027-10-31T02:30:00+02:00"
    clock = DigestClock(DAILY_0230, VIENNA, handled=handled)
    assert due_slots(clock, minutes(utc(10, 31, 0, 30), utc(11, 1, 1, 30)), local=True) == []
    assert clock.due(utc(11, 1, 1, 30)) == utc(11, 1, 1, 30)


@pytest.mark.parametrize("local", [False, True], ids=["now-utc", "now-local"])
def test_a_jump_forward_over_several_slots_sends_the_latest_once(local):
    clock = DigestClock(DAILY_0700, VIENNA, handled=None)
    assert clock.due(as_given(utc(3, 26, 12), local)) is None
    # The machine was off (or the clock jumped) from Friday to Tuesday noon.
    sent = due_slots(clock, minutes(utc(3, 30, 10), utc(3, 30, 12)), local)
    assert sent == [utc(3, 30, 5)]


# -- Service ---------------------------------------------------------------------------


class Jobs:
    """Records job runs; a job fails with whatever is queued for it."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.failures: dict[str, list[Exception]] = {"rebuild": [], "digest": []}
        self.ran = threading.Event()

    def rebuild(self) -> None:
        self._run("rebuild")

    def digest(self) -> None:
        self._run("digest")

    def _run(self, name: str) -> None:
        self.calls.append(name)
        self.ran.set()
        if self.failures[name]:
            raise self.failures[name].pop(0)


def make_service(jobs: Jobs, seconds: int = 10) -> Service:
    return Service(
        rebuild=jobs.rebuild, digest_check=jobs.digest, rebuild_every=timedelta(seconds=seconds)
    )


def test_jobs_run_on_a_private_scheduler():
    jobs = Jobs()
    service = make_service(jobs, seconds=600)
    assert schedule.jobs == []
    assert len(service.scheduler.jobs) == 2
    rebuild, digest = service.scheduler.jobs
    assert (rebuild.interval, rebuild.unit) == (600, "seconds")
    assert (digest.interval, digest.unit) == (30, "seconds")
    service.run_once()
    service.scheduler.run_all()
    assert jobs.calls == ["rebuild", "digest", "rebuild", "digest"]
    assert schedule.jobs == []
    assert schedule.default_scheduler is not service.scheduler


def test_a_publisher_error_is_logged_in_one_line_and_the_next_job_runs(caplog):
    jobs = Jobs()
    jobs.failures["rebuild"].append(
        ContentError("content/broken.md", [FieldProblem("date", "not an ISO 8601 date")])
    )
    service = make_service(jobs)
    with caplog.at_level(logging.INFO, logger="publisher.service.scheduler"):
        service.run_once()
    assert jobs.calls == ["rebuild", "digest"]
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("ERROR", "rebuild job: content/broken.md: date: not an ISO 8601 date", None)
    ]
    assert "Traceback" not in caplog.text


def test_an_unexpected_error_is_logged_with_its_traceback_and_the_loop_goes_on(caplog):
    jobs = Jobs()
    jobs.failures["digest"].append(RuntimeError("disk on fire"))
    jobs.failures["rebuild"].append(OSError(28, "No space left on device"))
    service = make_service(jobs)
    with caplog.at_level(logging.INFO, logger="publisher.service.scheduler"):
        service.run_once()
        service.scheduler.run_all()  # the scheduled jobs go on after their failure
        service.scheduler.run_all()
    assert jobs.calls == ["rebuild", "digest"] * 3
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in failures] == ["rebuild job failed", "digest job failed"]
    assert all(r.exc_info is not None for r in failures)
    assert "Traceback (most recent call last)" in caplog.text
    assert "OSError: [Errno 28] No space left on device" in caplog.text
    assert "RuntimeError: disk on fire" in caplog.text
    # Both jobs are still scheduled, in the future.
    assert all(job.next_run > datetime.now() for job in service.scheduler.jobs)


def test_run_forever_stops_promptly_when_asked_from_another_thread(caplog):
    jobs = Jobs()
    jobs.failures["rebuild"].append(RuntimeError("first pass fails"))
    service = make_service(jobs, seconds=3600)
    idle_passes = []
    idle = threading.Event()

    def on_idle(scheduler: schedule.Scheduler) -> None:
        idle_passes.append(scheduler)
        idle.set()

    service.on_idle = on_idle
    worker = threading.Thread(target=service.run_forever)
    with caplog.at_level(logging.INFO, logger="publisher.service.scheduler"):
        worker.start()
        assert jobs.ran.wait(5)
        assert idle.wait(5)  # the loop is past the first pass, waiting for the next job
        started = time.monotonic()
        service.stop.set()
        worker.join(timeout=5)
        elapsed = time.monotonic() - started
    assert not worker.is_alive()
    assert elapsed < 2
    assert jobs.calls == ["rebuild", "digest"]  # the first pass, failure and all
    assert idle_passes
    assert all(s is service.scheduler for s in idle_passes)
    assert caplog.records[-1].getMessage() == "stopped"


def test_a_stop_during_a_job_skips_the_jobs_after_it():
    jobs = Jobs()
    service = make_service(jobs)

    def rebuild_then_stop() -> None:
        jobs.rebuild()
        service.stop.set()

    service.rebuild = rebuild_then_stop
    service.run_once()
    assert jobs.calls == ["rebuild"]


class LocalClock:
    """The machine's naive local wall clock, which schedule keeps time by; the test steps it."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self, tz: object = None) -> datetime:
        assert tz is None
        return self.current


@pytest.fixture
def local_clock(monkeypatch: pytest.MonkeyPatch) -> LocalClock:
    """schedule's `datetime.datetime.now()` (and only schedule's) reads a LocalClock."""
    clock = LocalClock(datetime(2027, 10, 31, 2, 58, 0))

    class SteppedDatetime(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:
            return clock.now(tz)

    fake = types.SimpleNamespace(**vars(datetime_module))
    fake.datetime = SteppedDatetime
    monkeypatch.setattr(schedule, "datetime", fake)
    return clock


# The runs due as the clock went back (second 120) wait one interval from then.
AFTER_STEP_BACK = ([*range(10, 120, 10), *range(130, 300, 10)], [30, 60, 90, *range(150, 300, 30)])
UNDISTURBED = (list(range(10, 300, 10)), list(range(30, 300, 30)))


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (timedelta(hours=-1), AFTER_STEP_BACK),
        (timedelta(days=-1), AFTER_STEP_BACK),
        (timedelta(hours=1), UNDISTURBED),  # overdue jobs run once, not once per missed interval
    ],
    ids=["back-dst", "back-ntp", "forward"],
)
def test_a_wall_clock_step_does_not_stall_the_jobs(local_clock, step, expected):
    # On a machine that keeps local time, 03:00 CEST on 31 October 2027 is
    # followed by 02:00 CET; an NTP correction can step the clock either way.
    jobs = Jobs()
    service = Service(
        rebuild=jobs.rebuild,
        digest_check=jobs.digest,
        rebuild_every=timedelta(seconds=10),
        local_now=local_clock.now,
    )
    ran: list[tuple[int, str]] = []
    for second in range(300):  # five minutes of real time, one loop pass a second
        if local_clock.current == datetime(2027, 10, 31, 3, 0, 0):
            local_clock.current += step
        before = len(jobs.calls)
        service.run_pending()
        ran += [(second, name) for name in jobs.calls[before:]]
        local_clock.current += timedelta(seconds=1)
    rebuilds = [second for second, name in ran if name == "rebuild"]
    digests = [second for second, name in ran if name == "digest"]
    assert (rebuilds, digests) == expected
