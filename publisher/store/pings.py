"""WebSub pings still to send: one row per feed URL, with its attempts and next try."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from publisher.store.base import StoreBase


class PendingPing(NamedTuple):
    """A WebSub ping still to send; `next_attempt` is as stored, to update it only if unchanged."""

    url: str
    attempts: int
    next_attempt: str


class PingQueries(StoreBase):
    #
    # Pingers work without the site lock, so two may send the same row at
    # once: each updates a row only while it still holds what that pinger
    # read. The slower one changes nothing; a row is never lost or counted twice.

    def queue_pings(self, urls: Iterable[str], *, now: datetime) -> None:
        """Feeds that changed are due at once, even while earlier pings back off."""
        self.conn.executemany(
            "INSERT INTO websub_pings (url, attempts, next_attempt) VALUES (?, 0, ?) "
            "ON CONFLICT (url) DO UPDATE SET next_attempt = excluded.next_attempt",
            [(url, _instant(now)) for url in sorted(set(urls))],
        )

    def due_pings(self, now: datetime) -> list[PendingPing]:
        rows = self.conn.execute(
            "SELECT url, attempts, next_attempt FROM websub_pings WHERE next_attempt <= ? "
            "ORDER BY url",
            (_instant(now),),
        )
        return [PendingPing(*row) for row in rows]

    def ping_accepted(self, ping: PendingPing) -> None:
        self.conn.execute(
            "DELETE FROM websub_pings WHERE url = ? AND next_attempt = ?",
            (ping.url, ping.next_attempt),
        )

    def ping_failed(self, ping: PendingPing, *, error: str, retry_at: datetime) -> None:
        self.conn.execute(
            "UPDATE websub_pings SET attempts = attempts + 1, next_attempt = ?, last_error = ? "
            "WHERE url = ? AND next_attempt = ?",
            (_instant(retry_at), error, ping.url, ping.next_attempt),
        )


def _instant(moment: datetime) -> str:
    # Fixed width in UTC, so that text order is time order in SQL.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
