"""Sign-ups waiting for their confirmation, and the log of requests the rate limit reads."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from publisher.store.base import StoreBase, lock_key
from publisher.store.subscribers import topics_from, topics_text


class Signup(NamedTuple):
    email: str
    name: str
    confirmed_at: str | None
    topics: tuple[str, ...] | None = None  # what the form chose: None is everything
    cadence: str | None = None  # None: the site's default


class SignupQueries(StoreBase):
    def hold_address(self, email: str) -> None:
        """Until the transaction ends, be the only sign-up or confirmation for *email*.

        SQLite's one writer at a time does this already; on PostgreSQL two web
        replicas could otherwise both count the same few confirmations sent
        (the per-address limit), or both insert the subscriber a confirmation makes.
        """
        if self.conn.backend == "postgresql":
            key = lock_key("signup:" + email.lower())
            self.conn.execute("SELECT pg_advisory_xact_lock(?, ?)", key).fetchone()

    def confirmations_sent(self, email: str, *, since: datetime) -> int:
        """How many confirmation messages went to *email* after *since*."""
        (count,) = self.conn.execute(
            "SELECT COUNT(*) FROM signup_requests WHERE email = ? AND at > ? AND was_sent = 1",
            (email, since.isoformat()),
        ).fetchone()
        return int(count)

    def record_signup_request(
        self, email: str, *, client: str, now: datetime, was_sent: bool
    ) -> None:
        self.conn.execute(
            "INSERT INTO signup_requests (email, client, at, was_sent) VALUES (?, ?, ?, ?)",
            (email, client, now.isoformat(), int(was_sent)),
        )

    def forget_signups(self, *, requests_before: datetime, signups_before: datetime) -> None:
        """Drop the request log older than the rate window and unconfirmed sign-ups expired."""
        self.conn.execute(
            "DELETE FROM signup_requests WHERE at < ?", (requests_before.isoformat(),)
        )
        self.conn.execute("DELETE FROM signups WHERE created_at < ?", (signups_before.isoformat(),))

    def save_signup(
        self,
        email: str,
        name: str,
        *,
        now: datetime,
        topics: tuple[str, ...] | None = None,
        cadence: str | None = None,
    ) -> int:
        """Record (or renew) the pending sign-up of *email* and its choices; returns its id.

        A renewed sign-up takes the latest request's choices: its link and
        the earlier ones (the same sign-up) confirm those.
        """
        self.conn.execute(
            "INSERT INTO signups (email, name, created_at, topics, cadence) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (email) DO UPDATE SET name = excluded.name, "
            "created_at = excluded.created_at, confirmed_at = NULL, "
            "topics = excluded.topics, cadence = excluded.cadence",
            (email, name, now.isoformat(), topics_text(topics), cadence),
        )
        (signup_id,) = self.conn.execute(
            "SELECT id FROM signups WHERE email = ?", (email,)
        ).fetchone()
        return int(signup_id)

    def get_signup(self, signup_id: int) -> Signup | None:
        row = self.conn.execute(
            "SELECT email, name, confirmed_at, topics, cadence FROM signups WHERE id = ?",
            (signup_id,),
        ).fetchone()
        return None if row is None else Signup(row[0], row[1], row[2], topics_from(row[3]), row[4])

    def mark_signup_confirmed(self, signup_id: int, *, now: datetime) -> None:
        self.conn.execute(
            "UPDATE signups SET confirmed_at = ? WHERE id = ?", (now.isoformat(), signup_id)
        )

    def delete_signups(self, email: str) -> None:
        """Forget *email*'s sign-ups and sign-up requests (the columns ignore case)."""
        self.conn.execute("DELETE FROM signups WHERE email = ?", (email,))
        self.conn.execute("DELETE FROM signup_requests WHERE email = ?", (email,))
