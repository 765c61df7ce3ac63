"""The delivery ledger: one row per (digest, subscriber), pending → sending → sent | failed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from publisher.errors import StoreError
from publisher.model import DeliveryCounts, Subscriber
from publisher.store.base import StoreBase
from publisher.store.subscribers import SUBSCRIBER_COLUMNS, SubscriberQueries, subscriber_from


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    digest_id: int
    subscriber: Subscriber
    status: str
    attempts: int
    message_id: str


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A delivery that did not (or may not have) arrived, with what the server said."""

    digest_id: int
    email: str
    status: str  # "failed", or "sending": uncertain
    updated_at: datetime
    reply: str | None  # the last error or reply recorded, None when there is none
    bounce: str | None = None  # what came back later: "hard 5.1.1", "soft 4.2.2", "complaint"


class DeliveryQueries(SubscriberQueries, StoreBase):
    def create_deliveries(
        self,
        digest_id: int,
        message_id_for: Any,
        *,
        now: datetime,
        subscriber_ids: Sequence[int] | None = None,
    ) -> int:
        """One pending row per subscriber of a digest just made (None: every active one)."""
        if subscriber_ids is None:
            subscriber_ids = [s.id for s in self.iter_subscribers(status="active")]
        rows = [
            (digest_id, sid, message_id_for(digest_id, sid), now.isoformat())
            for sid in subscriber_ids
        ]
        self.conn.executemany(
            "INSERT INTO deliveries (digest_id, subscriber_id, status, message_id, updated_at) "
            "VALUES (?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
            rows,
        )
        return len(rows)

    def iter_deliveries(
        self, digest_id: int, statuses: tuple[str, ...]
    ) -> Iterator[PendingDelivery]:
        """Rows of *digest_id* in *statuses*, by subscriber id, streamed in pages."""
        last = 0
        marks = ", ".join("?" for _ in statuses)
        columns = ", ".join(f"s.{c.strip()}" for c in SUBSCRIBER_COLUMNS.split(","))
        while True:
            rows = self.conn.execute(
                f"SELECT d.status, d.attempts, d.message_id, {columns} FROM deliveries d "
                f"JOIN subscribers s ON s.id = d.subscriber_id "
                f"WHERE d.digest_id = ? AND d.status IN ({marks}) AND d.subscriber_id > ? "
                f"ORDER BY d.subscriber_id LIMIT 500",
                (digest_id, *statuses, last),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield PendingDelivery(digest_id, subscriber_from(row[3:]), row[0], row[1], row[2])
            last = rows[-1][3]

    def set_delivery(
        self,
        digest_id: int,
        subscriber_id: int,
        status: str,
        *,
        now: datetime,
        error: str | None = None,
        reply: str | None = None,
        count_attempt: bool = False,
    ) -> None:
        cursor = self.conn.execute(
            "UPDATE deliveries SET status = ?, updated_at = ?, "
            "last_error = COALESCE(?, last_error), reply = COALESCE(?, reply), "
            "attempts = attempts + ? "
            "WHERE digest_id = ? AND subscriber_id = ?",
            (
                status,
                now.isoformat(),
                error,
                reply,
                1 if count_attempt else 0,
                digest_id,
                subscriber_id,
            ),
        )
        if cursor.rowcount != 1:
            message = f"no delivery row for digest {digest_id}, subscriber {subscriber_id}"
            raise StoreError(self.where, message)

    def count_deliveries(self, digest_id: int, statuses: tuple[str, ...]) -> int:
        marks = ", ".join("?" for _ in statuses)
        row = self.conn.execute(
            f"SELECT COUNT(*) FROM deliveries WHERE digest_id = ? AND status IN ({marks})",
            (digest_id, *statuses),
        ).fetchone()
        return int(row[0])

    def delivery_counts(
        self, digest_id: int | None = None, *, live: Sequence[str] = ()
    ) -> list[DeliveryCounts]:
        """Per digest (newest first): how many rows are in each ledger state.

        A `sending` row is in flight while its sender is one of *live*, and
        uncertain once it is not.
        """
        where = "" if digest_id is None else "WHERE g.id = ?"
        in_flight = _held_by(live)
        rows = self.conn.execute(
            "SELECT g.id, g.created_at, g.article_count, "
            f"{_count('pending')}, {_count('sending', f'AND NOT {in_flight}')}, "
            f"{_count('sent')}, {_count('failed')}, {_count('sending', f'AND {in_flight}')}, "
            "SUM(CASE WHEN d.bounce IS NOT NULL THEN 1 ELSE 0 END), g.segment "
            "FROM digests g LEFT JOIN deliveries d ON d.digest_id = g.id "
            f"{where} GROUP BY g.id, g.created_at, g.article_count, g.segment ORDER BY g.id DESC",
            [*live, *live, *(() if digest_id is None else (digest_id,))],
        ).fetchall()
        return [_counts_from(row) for row in rows]

    def choice_counts(self) -> dict[tuple[str | None, str | None], int]:
        """Active subscribers by their stored (topics, cadence)."""
        rows = self.conn.execute(
            "SELECT topics, cadence, COUNT(*) FROM subscribers WHERE status = 'active' "
            "GROUP BY topics, cadence"
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def iter_failures(
        self, digest_id: int | None = None, *, live: Sequence[str] = ()
    ) -> Iterator[FailedDelivery]:
        """Failed, uncertain and bounced rows (of *digest_id*, or all), by digest then address.

        Rows in flight under one of the *live* senders are not uncertain yet,
        and are left out. Streamed from the cursor: the database sorts,
        Python holds one row at a time.
        """
        where = "" if digest_id is None else "AND d.digest_id = ? "
        rows = self.conn.execute(
            "SELECT d.digest_id, s.email, d.status, d.updated_at, COALESCE(d.last_error, d.reply), "
            "d.bounce FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            f"WHERE (d.status = 'failed' OR d.bounce IS NOT NULL "
            f"OR (d.status = 'sending' AND NOT {_held_by(live)})) "
            f"{where}ORDER BY d.digest_id, s.email COLLATE NOCASE, s.id",
            [*live, *(() if digest_id is None else (digest_id,))],
        )
        for row in rows:
            yield FailedDelivery(
                row[0], row[1], row[2], datetime.fromisoformat(row[3]), row[4], row[5]
            )


def _counts_from(row: Sequence[Any]) -> DeliveryCounts:
    pending, uncertain, sent, failed, sending, bounced = (int(n or 0) for n in row[3:9])
    return DeliveryCounts(
        row[0],
        datetime.fromisoformat(row[1]),
        int(row[2] or 0),
        pending=pending,
        uncertain=uncertain,
        sent=sent,
        failed=failed,
        sending=sending,
        bounced=bounced,
        segment=row[9],
    )


def _count(status: str, condition: str = "") -> str:
    """How many of a digest's rows are in *status*, in SQL both backends run."""
    return f"SUM(CASE WHEN d.status = '{status}' {condition} THEN 1 ELSE 0 END)"


def _held_by(workers: Sequence[str]) -> str:
    """The row's sender is one of *workers* (one placeholder each), in SQL both backends run."""
    if not workers:
        return "FALSE"
    return f"(d.worker IS NOT NULL AND d.worker IN ({', '.join('?' for _ in workers)}))"


def instant(moment: datetime) -> str:
    """Fixed width in UTC, so that text order is time order in SQL (heartbeats, slots)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
