"""Subscriber history, bounce events counted once, webhook nonces, soft-bounce counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from publisher.store.base import StoreBase
from publisher.store.deliveries import instant


@dataclass(frozen=True, slots=True)
class SubscriberEvent:
    """One line of a subscriber's history: what changed, why, and what said so."""

    at: datetime
    change: str  # "active→bounced", or the status alone when it did not change
    reason: str  # "hard bounce 5.1.1 user unknown"
    source: str  # "mailbox maildir:/srv/bounces message <id>", "webhook postmark event 7", "cli"


class EventQueries(StoreBase):
    def record_event(
        self,
        subject: str,
        subscriber_id: int | None,
        *,
        change: str,
        reason: str,
        source: str,
        now: datetime,
    ) -> None:
        """Add a line to the history of the address whose suppression key is *subject*."""
        self.conn.execute(
            "INSERT INTO subscriber_events (subject, subscriber_id, at, change, reason, source) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (subject, subscriber_id, now.isoformat(), change, reason, source),
        )

    def subscriber_events(self, subject: str) -> list[SubscriberEvent]:
        """The history of the address keyed *subject*, oldest first (removed subscribers too)."""
        rows = self.conn.execute(
            "SELECT at, change, reason, source FROM subscriber_events WHERE subject = ? "
            "ORDER BY id",
            (subject,),
        ).fetchall()
        return [SubscriberEvent(datetime.fromisoformat(r[0]), r[1], r[2], r[3]) for r in rows]

    def claim_bounce_event(
        self,
        key: str,
        kind: str,
        *,
        subscriber_id: int | None,
        digest_id: int | None,
        source: str,
        now: datetime,
    ) -> bool:
        """Record the event *key* as counted; False when it was counted before (a retry)."""
        row = self.conn.execute(
            "INSERT INTO bounce_events (key, kind, subscriber_id, digest_id, received_at, source) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING key",
            (key, kind, subscriber_id, digest_id, now.isoformat(), source),
        ).fetchone()
        return row is not None

    def has_bounce_event(self, key: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM bounce_events WHERE key = ?", (key,)).fetchone()
        return row is not None

    def count_bounce_events(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM bounce_events").fetchone()[0])

    def claim_nonce(self, key: str, *, now: datetime, forget_before: datetime) -> bool:
        """Accept a signed request's nonce once; False for one seen before (a replay).

        Nonces older than *forget_before* are dropped: a request that old is
        refused by its timestamp anyway.
        """
        self.conn.execute("DELETE FROM webhook_nonces WHERE seen_at < ?", (instant(forget_before),))
        row = self.conn.execute(
            "INSERT INTO webhook_nonces (key, seen_at) VALUES (?, ?) "
            "ON CONFLICT (key) DO NOTHING RETURNING key",
            (key, instant(now)),
        ).fetchone()
        return row is not None

    def set_delivery_bounce(self, digest_id: int, subscriber_id: int, bounce: str) -> bool:
        """Show *bounce* on the ledger row; False when there is no such row.

        A complaint is never overwritten by a later bounce, nor a hard bounce
        by a soft one: the row shows the worst that came back.
        """
        cursor = self.conn.execute(
            "UPDATE deliveries SET bounce = ? WHERE digest_id = ? AND subscriber_id = ? "
            "AND (bounce IS NULL OR bounce NOT LIKE 'complaint%') "
            "AND (bounce IS NULL OR ? NOT LIKE 'soft%' OR bounce LIKE 'soft%')",
            (bounce, digest_id, subscriber_id, bounce),
        )
        if cursor.rowcount == 1:
            return True
        row = self.conn.execute(
            "SELECT 1 FROM deliveries WHERE digest_id = ? AND subscriber_id = ?",
            (digest_id, subscriber_id),
        ).fetchone()
        return row is not None

    def delivery_bounce(self, digest_id: int, subscriber_id: int) -> str | None:
        row = self.conn.execute(
            "SELECT bounce FROM deliveries WHERE digest_id = ? AND subscriber_id = ?",
            (digest_id, subscriber_id),
        ).fetchone()
        return None if row is None else row[0]

    def count_soft_bounce(self, subscriber_id: int, digest_id: int | None) -> int:
        """Count a soft bounce for the subscriber; returns how many are now in a row.

        A row is broken by a successful delivery: a digest sent to them after
        the one the last soft bounce was for, which did not bounce. (A relay
        accepts every message, so its "sent" alone proves nothing until a
        later bounce shows the earlier one did not come back.) A second soft
        bounce for the same digest (a "delayed" notice, then another) is not
        counted again.
        """
        count, last = self.conn.execute(
            "SELECT soft_bounces, soft_bounce_digest FROM subscribers WHERE id = ?",
            (subscriber_id,),
        ).fetchone()
        if digest_id and last is not None:
            if digest_id == last:
                return int(count)
            if self._delivered_between(subscriber_id, last, digest_id):
                count = 0
        newest = max(digest_id or 0, last or 0) or None
        self.conn.execute(
            "UPDATE subscribers SET soft_bounces = ?, soft_bounce_digest = ? WHERE id = ?",
            (int(count) + 1, newest, subscriber_id),
        )
        return int(count) + 1

    def _delivered_between(self, subscriber_id: int, first: int, last: int) -> bool:
        low, high = min(first, last), max(first, last)
        row = self.conn.execute(
            "SELECT 1 FROM deliveries WHERE subscriber_id = ? AND digest_id > ? AND digest_id < ? "
            "AND status = 'sent' AND bounce IS NULL LIMIT 1",
            (subscriber_id, low, high),
        ).fetchone()
        return row is not None

    def soft_bounces(self, subscriber_id: int) -> int:
        row = self.conn.execute(
            "SELECT soft_bounces FROM subscribers WHERE id = ?", (subscriber_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def reset_soft_bounces(self, subscriber_id: int) -> None:
        self.conn.execute(
            "UPDATE subscribers SET soft_bounces = 0, soft_bounce_digest = NULL "
            "WHERE id = ? AND (soft_bounces > 0 OR soft_bounce_digest IS NOT NULL)",
            (subscriber_id,),
        )

    def set_suppression(self, key: str, reason: str, *, now: datetime) -> None:
        """Record *key* with *reason*, replacing the reason of an entry already there."""
        self.conn.execute(
            "INSERT INTO suppressions (key, reason, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET reason = excluded.reason",
            (key, reason, now.isoformat()),
        )
