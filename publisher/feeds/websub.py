"""Tell a WebSub hub that feeds changed (https://www.w3.org/TR/websub/ §7, publisher ping).

A build only records which feeds changed, in the store (`websub_pings`), in
the same commit as the rest of its state. The pings go out afterwards,
without the site lock: from `publisher build` and `run --once` once the lock
is released, from a background thread in `publisher run`. They are sent
concurrently, all within one short deadline, so a hub that takes the
connection and never answers costs a few seconds and delays nobody. A ping
that fails is retried by later runs, with or without a change, after a
backoff that doubles from a minute up to six hours; one the hub accepts is
forgotten. A ping never fails a build.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from publisher.errors import PublisherError
from publisher.store import PendingPing, open_store

logger = logging.getLogger(__name__)

DEADLINE = 5.0  # seconds for all the pings of one run together
MAX_CONNECTIONS = 8  # pings in flight at once
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class PingReport:
    accepted: tuple[str, ...]
    failed: tuple[str, ...]


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the *attempts*-th failure: doubling, capped."""
    doublings = min(max(attempts - 1, 0), 20)  # 2**20 minutes is far past the cap
    delay: timedelta = FIRST_RETRY * (1 << doublings)
    return min(delay, LONGEST_RETRY)


def ping_pending(
    state: Path | str, hub: str, *, now: datetime, deadline: float | None = None
) -> PingReport:
    """Send the pings due at *now*, record each outcome, and say what happened.

    Needs no lock: rows are updated only while they hold what was read.

    :raises StoreError: when the state database cannot be used.
    """
    with open_store(state) as store:
        due = store.due_pings(now)
        if not due:
            return PingReport((), ())
        limit = DEADLINE if deadline is None else deadline
        errors = ping(hub, [p.url for p in due], deadline=limit)
        with store.transaction():
            for pending in due:
                error = errors[pending.url]
                if error is None:
                    store.ping_accepted(pending)
                else:
                    retry_at = now + retry_delay(pending.attempts + 1)
                    store.ping_failed(pending, error=error, retry_at=retry_at)
    failed = [p for p in due if errors[p.url] is not None]
    if failed:
        _log_failures(hub, failed, len(due), errors, now)
    return PingReport(
        tuple(p.url for p in due if errors[p.url] is None), tuple(p.url for p in failed)
    )


def _log_failures(
    hub: str,
    failed: Sequence[PendingPing],
    total: int,
    errors: dict[str, str | None],
    now: datetime,
) -> None:
    # One warning a run (a dead hub would otherwise fill the log), each URL at INFO.
    first = min(failed, key=lambda p: p.attempts)
    retry_at = now + retry_delay(first.attempts + 1)
    logger.warning(
        "websub: %s: %d of %d pings failed (%s); will retry from %s",
        hub,
        len(failed),
        total,
        errors[first.url],
        f"{retry_at:%Y-%m-%d %H:%M:%S %Z}",
    )


def ping(hub: str, feed_urls: Sequence[str], *, deadline: float) -> dict[str, str | None]:
    """POST hub.mode=publish for each URL, concurrently, for at most *deadline* seconds.

    :returns: for each URL, None when the hub accepted it, else what went wrong.
        The workers are daemon threads: one stuck past the deadline (in a DNS
        look-up, say) is abandoned, and never keeps the process alive.
    """
    urls = sorted(set(feed_urls))
    ends_at = time.monotonic() + deadline
    work: queue.SimpleQueue[str] = queue.SimpleQueue()
    for url in urls:
        work.put(url)
    results: dict[str, str | None] = {}
    done = threading.Condition()

    def worker() -> None:
        while True:
            try:
                url = work.get_nowait()
            except queue.Empty:
                return
            outcome = _post(hub, url, ends_at, deadline)
            with done:
                results[url] = outcome
                done.notify_all()

    for _ in range(min(MAX_CONNECTIONS, len(urls))):
        threading.Thread(target=worker, name="websub-ping", daemon=True).start()
    with done:
        done.wait_for(lambda: len(results) == len(urls), timeout=deadline)
        late = f"no answer within {deadline:g} s"
        return {url: results.get(url, late) for url in urls}


def _post(hub: str, url: str, ends_at: float, deadline: float) -> str | None:
    # urllib.request costs ~20 ms to import: only when there is a ping to send.
    import urllib.error
    import urllib.parse
    import urllib.request

    late = f"no answer within {deadline:g} s"
    remaining = ends_at - time.monotonic()
    if remaining <= 0:
        return late
    body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": url}).encode()
    request = urllib.request.Request(
        hub,
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        # The timeout bounds each blocking step (connect, each read) by what
        # is left of the run's deadline.
        with urllib.request.urlopen(request, timeout=remaining) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except TimeoutError:
        return late
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, TimeoutError):
            return late
        return f"cannot reach the hub: {reason}"
    if 200 <= status < 300:
        logger.info("websub: %s accepted %s (%d)", hub, url, status)
        return None
    logger.info("websub: %s answered %d for %s", hub, status, url)
    return f"answered {status}"


class BackgroundPinger:
    """Pings in a thread of its own, for `publisher run`: its jobs never wait on the hub.

    `wake()` after each rebuild; the thread then sends whatever is due. `close()`
    waits for pings in flight (at most about one deadline).
    """

    def __init__(self, state: Path | str, hub: str, *, now: Callable[[], datetime]) -> None:
        self.state = state
        self.hub = hub
        self.now = now
        self._wanted = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="websub", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wanted.set()

    def close(self) -> None:
        self._closing = True
        self._wanted.set()
        self._thread.join(timeout=DEADLINE + 5)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._closing:
                return
            self._wanted.clear()
            try:
                ping_pending(self.state, self.hub, now=self.now())
            except PublisherError as err:
                for line in err.lines():
                    logger.error("websub: %s", line)
            except Exception:
                logger.exception("websub: pinging failed")
