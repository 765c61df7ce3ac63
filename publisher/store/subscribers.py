"""Subscribers and the suppression list (keyed hashes of addresses that must not be mailed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from publisher.model import Subscriber
from publisher.store.base import StoreBase
from publisher.store.settings import PUBLICATION_SEQ

SUBSCRIBER_COLUMNS = "id, email, name, status, created_at, hard_failures, topics, cadence"


# The last publication number given, in SQL both backends run (0 before the first).
_SEQ_NOW = (
    f"COALESCE((SELECT CAST(value AS INTEGER) FROM settings WHERE key = '{PUBLICATION_SEQ}'), 0)"
)


def subscriber_from(row: Sequence[Any]) -> Subscriber:
    return Subscriber(
        row[0],
        row[1],
        row[2],
        row[3],
        datetime.fromisoformat(row[4]),
        row[5],
        topics=topics_from(row[6]),
        cadence=row[7],
    )


def topics_text(topics: tuple[str, ...] | None) -> str | None:
    """Topic slugs as stored: sorted and comma-joined (None, everything, stays NULL)."""
    return None if topics is None else ",".join(sorted(set(topics)))


def topics_from(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(t for t in text.split(",") if t)


class SubscriberQueries(StoreBase):
    def find_subscriber(self, email: str) -> Subscriber | None:
        row = self.conn.execute(
            f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?", (email,)
        ).fetchone()
        return None if row is None else subscriber_from(row)

    def get_subscriber(self, subscriber_id: int) -> Subscriber | None:
        row = self.conn.execute(
            f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = ?", (subscriber_id,)
        ).fetchone()
        return None if row is None else subscriber_from(row)

    def insert_subscriber(
        self,
        email: str,
        name: str,
        *,
        status: str,
        now: datetime,
        topics: tuple[str, ...] | None = None,
        cadence: str | None = None,
    ) -> int:
        cursor = self.conn.execute(
            "INSERT INTO subscribers "
            "(email, name, status, created_at, updated_at, topics, cadence, joined_seq) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, {_SEQ_NOW}) RETURNING id",
            (email, name, status, now.isoformat(), now.isoformat(), topics_text(topics), cadence),
        )
        return int(cursor.fetchone()[0])

    def set_subscriber_status(self, subscriber_id: int, status: str, *, now: datetime) -> None:
        """Change the status; one who becomes active again rejoins their segment's stream.

        (See DigestQueries.streams: a returning subscriber never gets again
        what they had, and does not get what went out while they were away.)
        """
        returning = "? = 'active' AND status <> 'active'"
        self.conn.execute(
            "UPDATE subscribers SET "
            f"joining = CASE WHEN {returning} THEN 1 ELSE joining END, "
            f"joined_seq = CASE WHEN {returning} THEN {_SEQ_NOW} ELSE joined_seq END, "
            "status = ?, updated_at = ? WHERE id = ?",
            (status, status, status, now.isoformat(), subscriber_id),
        )

    def set_subscriber_choices(
        self,
        subscriber_id: int,
        *,
        topics: tuple[str, ...] | None,
        cadence: str | None,
        now: datetime,
    ) -> None:
        """Their topics (None: everything) and cadence (None: the site's default).

        Their stream stays where it is: the next digest of their new segment
        holds what they have not had yet of their new topics.
        """
        self.conn.execute(
            "UPDATE subscribers SET topics = ?, cadence = ?, updated_at = ? WHERE id = ?",
            (topics_text(topics), cadence, now.isoformat(), subscriber_id),
        )

    def set_subscriber_name(self, subscriber_id: int, name: str, *, now: datetime) -> None:
        self.conn.execute(
            "UPDATE subscribers SET name = ?, updated_at = ? WHERE id = ?",
            (name, now.isoformat(), subscriber_id),
        )

    def delete_subscriber(self, subscriber_id: int) -> None:
        self.conn.execute("DELETE FROM deliveries WHERE subscriber_id = ?", (subscriber_id,))
        # The history stays, keyed by the address's suppression key.
        self.conn.execute(
            "UPDATE subscriber_events SET subscriber_id = NULL WHERE subscriber_id = ?",
            (subscriber_id,),
        )
        self.conn.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))

    def iter_subscribers(self, *, status: str | None = None) -> Iterator[Subscriber]:
        """All subscribers (or those with *status*) by id, streamed in pages."""
        last = 0
        while True:
            query = f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id > ?"
            params: tuple[Any, ...] = (last,)
            if status is not None:
                query += " AND status = ?"
                params += (status,)
            rows = self.conn.execute(query + " ORDER BY id LIMIT 1000", params).fetchall()
            if not rows:
                return
            for row in rows:
                yield subscriber_from(row)
            last = rows[-1][0]

    def record_hard_failure(self, subscriber_id: int, *, bounce_after: int, now: datetime) -> bool:
        """Count a 5xx for the subscriber; returns True when this marks them bounced."""
        self.conn.execute(
            "UPDATE subscribers SET hard_failures = hard_failures + 1, updated_at = ? WHERE id = ?",
            (now.isoformat(), subscriber_id),
        )
        row = self.conn.execute(
            "SELECT hard_failures, status FROM subscribers WHERE id = ?", (subscriber_id,)
        ).fetchone()
        if row is not None and row[0] >= bounce_after and row[1] == "active":
            self.set_subscriber_status(subscriber_id, "bounced", now=now)
            return True
        return False

    def reset_hard_failures(self, subscriber_id: int) -> None:
        self.conn.execute(
            "UPDATE subscribers SET hard_failures = 0 WHERE id = ? AND hard_failures > 0",
            (subscriber_id,),
        )

    def insert_suppression(self, key: str, reason: str, *, now: datetime) -> None:
        """Record *key* as not to be mailed; an entry already there keeps its first reason."""
        self.conn.execute(
            "INSERT INTO suppressions (key, reason, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (key, reason, now.isoformat()),
        )

    def suppression_reason(self, key: str) -> str | None:
        row = self.conn.execute("SELECT reason FROM suppressions WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def delete_suppression(self, key: str) -> None:
        self.conn.execute("DELETE FROM suppressions WHERE key = ?", (key,))

    def count_suppressions(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0])

    def find_subscriber_any_case(self, address: str) -> Subscriber | None:
        """The subscriber with *address*, ignoring case (an exact match first)."""
        found = self.find_subscriber(address)
        if found is not None:
            return found
        # COLLATE NOCASE folds ASCII only, which is all a stored address holds.
        row = self.conn.execute(
            "SELECT id FROM subscribers WHERE email = ? COLLATE NOCASE ORDER BY id LIMIT 1",
            (address,),
        ).fetchone()
        return None if row is None else self.get_subscriber(row[0])

    def is_active_subscriber(self, address: str) -> bool:
        """Whether *address*, in any capitals, is an active subscriber."""
        row = self.conn.execute(
            "SELECT 1 FROM subscribers WHERE email = ? COLLATE NOCASE AND status = 'active'",
            (address,),
        ).fetchone()
        return row is not None

    def subscriber_counts(self) -> dict[str, int]:
        """How many subscribers have each status (statuses with none are left out)."""
        rows = self.conn.execute("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
        return {status: int(count) for status, count in rows}
