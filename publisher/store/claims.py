"""Several senders, one digest: claims on pending rows, heartbeats, and the shared rate slot.

A sender registers under a worker id and claims a few pending rows at a
time (PostgreSQL: FOR UPDATE SKIP LOCKED, so two senders never claim the
same row and neither waits for the other; SQLite: its one writer at a time
does the same). A row goes to `sending` only while the sender still holds
its claim, in the transaction that also says the sender is alive. The rows
a sender claimed and did not send go back to the others once it has been
silent longer than the timeout; the rows it left `sending` stay uncertain.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from publisher.store.deliveries import DeliveryQueries, PendingDelivery, instant
from publisher.store.subscribers import SUBSCRIBER_COLUMNS, subscriber_from

_COLUMNS = ", ".join(f"s.{c.strip()}" for c in SUBSCRIBER_COLUMNS.split(","))


class ClaimQueries(DeliveryQueries):
    def register_sender(self, worker: str, *, now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO senders (worker, started_at, heartbeat_at) VALUES (?, ?, ?) "
            "ON CONFLICT (worker) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (worker, instant(now), instant(now)),
        )

    def live_senders(self, *, since: datetime) -> list[str]:
        """The registered senders heard from since *since*."""
        rows = self.conn.execute(
            "SELECT worker FROM senders WHERE heartbeat_at >= ? ORDER BY worker",
            (instant(since),),
        ).fetchall()
        return [row[0] for row in rows]

    def senders_named(self, prefix: str) -> list[str]:
        """The registered senders whose id starts with *prefix* (those of one host)."""
        rows = self.conn.execute("SELECT worker FROM senders ORDER BY worker").fetchall()
        return [row[0] for row in rows if row[0].startswith(prefix)]

    def retire_sender(self, worker: str) -> None:
        """The sender is done: what it claimed and did not send is anyone's again."""
        self.conn.execute(
            "UPDATE deliveries SET worker = NULL WHERE worker = ? AND status = 'pending'",
            (worker,),
        )
        self.conn.execute("DELETE FROM senders WHERE worker = ?", (worker,))

    def claim_deliveries(
        self,
        digest_id: int,
        worker: str,
        *,
        limit: int,
        silent_before: datetime,
        uncertain_too: bool = False,
    ) -> list[PendingDelivery]:
        """Claim up to *limit* rows nobody live holds; the rows claimed, by subscriber id.

        A row is free when no sender holds it, or its sender has said nothing
        since *silent_before*; a sender's own claims are not free to it (a row it
        could not send for now stays with it until it retires). With
        *uncertain_too* (--resend-uncertain), rows a silent sender left
        `sending` are claimed as well.
        """
        statuses = "('pending', 'sending')" if uncertain_too else "('pending')"
        lock = " FOR UPDATE OF d SKIP LOCKED" if self.conn.backend == "postgresql" else ""
        rows = self.conn.execute(
            "SELECT d.subscriber_id FROM deliveries d LEFT JOIN senders w ON w.worker = d.worker "
            f"WHERE d.digest_id = ? AND d.status IN {statuses} "
            "AND (d.worker IS NULL OR w.worker IS NULL OR w.heartbeat_at < ?) "
            f"ORDER BY d.subscriber_id LIMIT ?{lock}",
            (digest_id, instant(silent_before), limit),
        ).fetchall()
        ids = [row[0] for row in rows]
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        self.conn.execute(
            f"UPDATE deliveries SET worker = ? WHERE digest_id = ? AND subscriber_id IN ({marks})",
            (worker, digest_id, *ids),
        )
        claimed = self.conn.execute(
            f"SELECT d.status, d.attempts, d.message_id, {_COLUMNS} FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id "
            f"WHERE d.digest_id = ? AND d.subscriber_id IN ({marks}) ORDER BY d.subscriber_id",
            (digest_id, *ids),
        ).fetchall()
        return [
            PendingDelivery(digest_id, subscriber_from(row[3:]), row[0], row[1], row[2])
            for row in claimed
        ]

    def mark_sending(
        self, digest_id: int, subscriber_id: int, worker: str, *, now: datetime
    ) -> bool:
        """Mark a claimed row `sending`, and the sender alive; False if the claim was lost.

        A sender silent too long may have had its claims taken over: then the
        row is someone else's, and it must not be sent from here.
        """
        cursor = self.conn.execute(
            "UPDATE deliveries SET status = 'sending', updated_at = ?, attempts = attempts + 1 "
            "WHERE digest_id = ? AND subscriber_id = ? AND worker = ? "
            "AND status IN ('pending', 'sending')",
            (now.isoformat(), digest_id, subscriber_id, worker),
        )
        self.conn.execute(
            "UPDATE senders SET heartbeat_at = ? WHERE worker = ?", (instant(now), worker)
        )
        return cursor.rowcount == 1

    def held_elsewhere(self, digest_id: int, worker: str, *, silent_before: datetime) -> int:
        """Pending rows another live sender holds: the digest is not done while they wait."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM deliveries d JOIN senders w ON w.worker = d.worker "
            "WHERE d.digest_id = ? AND d.status = 'pending' AND d.worker <> ? "
            "AND w.heartbeat_at >= ?",
            (digest_id, worker, instant(silent_before)),
        ).fetchone()
        return int(row[0])

    def heartbeat(self, worker: str, *, now: datetime) -> None:
        self.conn.execute(
            "UPDATE senders SET heartbeat_at = ? WHERE worker = ?", (instant(now), worker)
        )

    def stale_sending(self, digest_id: int, *, silent_before: datetime) -> list[PendingDelivery]:
        """Rows left `sending` by a sender that is gone (or by a run before senders had ids)."""
        rows = self.conn.execute(
            f"SELECT d.status, d.attempts, d.message_id, {_COLUMNS} FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id "
            "LEFT JOIN senders w ON w.worker = d.worker "
            "WHERE d.digest_id = ? AND d.status = 'sending' "
            "AND (w.worker IS NULL OR w.heartbeat_at < ?) ORDER BY d.subscriber_id",
            (digest_id, instant(silent_before)),
        ).fetchall()
        return [
            PendingDelivery(digest_id, subscriber_from(row[3:]), row[0], row[1], row[2])
            for row in rows
        ]

    def reserve_send_slot(self, digest_id: int, *, now: datetime, interval: timedelta) -> datetime:
        """The next moment a message of this digest may leave, from any sender (the rate limit).

        Call inside a transaction: the digest's row is the one place every
        sender takes its turn from.
        """
        lock = " FOR UPDATE" if self.conn.backend == "postgresql" else ""
        row = self.conn.execute(
            f"SELECT next_send_at FROM digests WHERE id = ?{lock}", (digest_id,)
        ).fetchone()
        slot = max(now, datetime.fromisoformat(row[0])) if row and row[0] else now
        self.conn.execute(
            "UPDATE digests SET next_send_at = ? WHERE id = ?",
            (instant(slot + interval), digest_id),
        )
        return slot
