"""Subscribers, digests and the delivery ledger in the state database.

The ledger has one row per (digest, subscriber): pending → sending → sent or
failed. A row is marked `sending` and committed *before* its message leaves,
so after a crash a row still in `sending` means "may have been delivered":
it is reported, and sent again only when the operator asks.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.errors import StoreError
from publisher.model import (
    DeliveryCounts,
    Digest,
    DigestArticle,
    RenderedDigest,
    Subscriber,
)
from publisher.store import Store

_SUBSCRIBER_COLUMNS = "id, email, name, status, created_at, hard_failures"


def _subscriber(row: sqlite3.Row | tuple[Any, ...]) -> Subscriber:
    return Subscriber(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4]), row[5])


# -- subscribers -------------------------------------------------------------------


def find_subscriber(store: Store, email: str) -> Subscriber | None:
    row = store.conn.execute(
        f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?", (email,)
    ).fetchone()
    return None if row is None else _subscriber(row)


def get_subscriber(store: Store, subscriber_id: int) -> Subscriber | None:
    row = store.conn.execute(
        f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = ?", (subscriber_id,)
    ).fetchone()
    return None if row is None else _subscriber(row)


def insert_subscriber(store: Store, email: str, name: str, *, status: str, now: datetime) -> int:
    cursor = store.conn.execute(
        "INSERT INTO subscribers (email, name, status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (email, name, status, now.isoformat(), now.isoformat()),
    )
    return int(cursor.lastrowid or 0)


def set_subscriber_status(store: Store, subscriber_id: int, status: str, *, now: datetime) -> None:
    store.conn.execute(
        "UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
        (status, now.isoformat(), subscriber_id),
    )


def set_subscriber_name(store: Store, subscriber_id: int, name: str, *, now: datetime) -> None:
    store.conn.execute(
        "UPDATE subscribers SET name = ?, updated_at = ? WHERE id = ?",
        (name, now.isoformat(), subscriber_id),
    )


def delete_subscriber(store: Store, subscriber_id: int) -> None:
    store.conn.execute("DELETE FROM deliveries WHERE subscriber_id = ?", (subscriber_id,))
    store.conn.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))


def iter_subscribers(store: Store, *, status: str | None = None) -> Iterator[Subscriber]:
    """All subscribers (or those with *status*) by id, streamed in pages."""
    last = 0
    while True:
        query = f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE id > ?"
        params: tuple[Any, ...] = (last,)
        if status is not None:
            query += " AND status = ?"
            params += (status,)
        rows = store.conn.execute(query + " ORDER BY id LIMIT 1000", params).fetchall()
        if not rows:
            return
        for row in rows:
            yield _subscriber(row)
        last = rows[-1][0]


def record_hard_failure(
    store: Store, subscriber_id: int, *, bounce_after: int, now: datetime
) -> bool:
    """Count a 5xx for the subscriber; returns True when this marks them bounced."""
    store.conn.execute(
        "UPDATE subscribers SET hard_failures = hard_failures + 1, updated_at = ? WHERE id = ?",
        (now.isoformat(), subscriber_id),
    )
    row = store.conn.execute(
        "SELECT hard_failures, status FROM subscribers WHERE id = ?", (subscriber_id,)
    ).fetchone()
    if row is not None and row[0] >= bounce_after and row[1] == "active":
        set_subscriber_status(store, subscriber_id, "bounced", now=now)
        return True
    return False


def reset_hard_failures(store: Store, subscriber_id: int) -> None:
    store.conn.execute(
        "UPDATE subscribers SET hard_failures = 0 WHERE id = ? AND hard_failures > 0",
        (subscriber_id,),
    )


def delete_signups(store: Store, email: str) -> None:
    """Forget *email*'s sign-ups and sign-up requests (the columns ignore case)."""
    store.conn.execute("DELETE FROM signups WHERE email = ?", (email,))
    store.conn.execute("DELETE FROM signup_requests WHERE email = ?", (email,))


# -- suppressions ------------------------------------------------------------------


def insert_suppression(store: Store, key: str, reason: str, *, now: datetime) -> None:
    """Record *key* as not to be mailed; an entry already there keeps its first reason."""
    store.conn.execute(
        "INSERT INTO suppressions (key, reason, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO NOTHING",
        (key, reason, now.isoformat()),
    )


def suppression_reason(store: Store, key: str) -> str | None:
    row = store.conn.execute("SELECT reason FROM suppressions WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def delete_suppression(store: Store, key: str) -> None:
    store.conn.execute("DELETE FROM suppressions WHERE key = ?", (key,))


def count_suppressions(store: Store) -> int:
    return int(store.conn.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0])


# -- digests -----------------------------------------------------------------------


def digested_article_ids(store: Store) -> set[str]:
    return {row[0] for row in store.conn.execute("SELECT DISTINCT article_id FROM digest_articles")}


def first_digest_cutoff(store: Store) -> int | None:
    """The last publication number the first digest covered; None before the first digest.

    The first digest takes only the newest few of what was published before
    it; everything numbered after it is new to the subscribers.
    """
    row = store.conn.execute("SELECT last_seq FROM digests ORDER BY id LIMIT 1").fetchone()
    return None if row is None else int(row[0] or 0)


def undigested_article_ids(store: Store, *, after: int | None) -> list[str]:
    """Articles with a publication number above *after* (any, if None) that no digest holds."""
    rows = store.conn.execute(
        "SELECT id FROM articles WHERE published_seq IS NOT NULL AND published_seq > ? "
        "AND id NOT IN (SELECT article_id FROM digest_articles) ORDER BY published_seq",
        (-1 if after is None else after,),
    )
    return [row[0] for row in rows]


def latest_digest_id(store: Store) -> int | None:
    row = store.conn.execute("SELECT MAX(id) FROM digests").fetchone()
    return None if row[0] is None else int(row[0])


def latest_digest(store: Store) -> Digest | None:
    row = store.conn.execute("SELECT id FROM digests ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else get_digest(store, row[0])


def get_digest(store: Store, digest_id: int) -> Digest | None:
    row = store.conn.execute(
        "SELECT id, created_at, last_seq, articles, subject, html, text, web_html, finished_at "
        "FROM digests WHERE id = ?",
        (digest_id,),
    ).fetchone()
    if row is None:
        return None
    rendered = None
    if row[4] is not None:
        rendered = RenderedDigest(subject=row[4], html=row[5], text=row[6], web_html=row[7])
    return Digest(
        id=row[0],
        created_at=datetime.fromisoformat(row[1]),
        last_seq=row[2],
        articles=tuple(_digest_article(item) for item in json.loads(row[3])),
        rendered=rendered,
        finished_at=datetime.fromisoformat(row[8]) if row[8] else None,
    )


def insert_digest(
    store: Store, articles: tuple[DigestArticle, ...], *, last_seq: int, now: datetime
) -> int:
    """Record a new digest with its frozen article list (rendering is saved separately).

    *last_seq* is the last publication number it covered. (The watermark
    column, a time, is what digests were chosen by before schema 7: still
    written, never read.)
    """
    cursor = store.conn.execute(
        "INSERT INTO digests (created_at, watermark, last_seq, articles) VALUES (?, ?, ?, ?)",
        (
            now.isoformat(),
            now.isoformat(),
            last_seq,
            json.dumps([_article_record(a) for a in articles], ensure_ascii=False),
        ),
    )
    digest_id = int(cursor.lastrowid or 0)
    store.conn.executemany(
        "INSERT OR IGNORE INTO digest_articles (digest_id, article_id) VALUES (?, ?)",
        [(digest_id, a.id) for a in articles],
    )
    return digest_id


def save_rendered(store: Store, digest_id: int, rendered: RenderedDigest) -> None:
    store.conn.execute(
        "UPDATE digests SET subject = ?, html = ?, text = ?, web_html = ? WHERE id = ?",
        (rendered.subject, rendered.html, rendered.text, rendered.web_html, digest_id),
    )


def finish_digest(store: Store, digest_id: int, *, now: datetime) -> None:
    store.conn.execute(
        "UPDATE digests SET finished_at = ? WHERE id = ? AND finished_at IS NULL",
        (now.isoformat(), digest_id),
    )


def unfinished_digests(store: Store) -> list[int]:
    return [
        row[0]
        for row in store.conn.execute(
            "SELECT id FROM digests WHERE finished_at IS NULL ORDER BY id"
        )
    ]


def _article_record(article: DigestArticle) -> dict[str, Any]:
    return {
        "id": article.id,
        "title": article.title,
        "link": article.link,
        "date": article.date.isoformat(),
        "authors": list(article.authors),
        "summary": article.summary,
    }


def _digest_article(record: dict[str, Any]) -> DigestArticle:
    return DigestArticle(
        id=record["id"],
        title=record["title"],
        link=record["link"],
        date=datetime.fromisoformat(record["date"]),
        authors=tuple(record["authors"]),
        summary=record["summary"],
    )


# -- deliveries ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    digest_id: int
    subscriber: Subscriber
    status: str
    attempts: int
    message_id: str


def create_deliveries(store: Store, digest_id: int, message_id_for: Any, *, now: datetime) -> int:
    """One pending row per active subscriber, for a digest just made. Returns the count."""
    count = 0
    for subscriber in iter_subscribers(store, status="active"):
        store.conn.execute(
            "INSERT OR IGNORE INTO deliveries (digest_id, subscriber_id, status, message_id, "
            "updated_at) VALUES (?, ?, 'pending', ?, ?)",
            (digest_id, subscriber.id, message_id_for(digest_id, subscriber.id), now.isoformat()),
        )
        count += 1
    return count


def iter_deliveries(
    store: Store, digest_id: int, statuses: tuple[str, ...]
) -> Iterator[PendingDelivery]:
    """Rows of *digest_id* in *statuses*, by subscriber id, streamed in pages."""
    last = 0
    marks = ", ".join("?" for _ in statuses)
    columns = ", ".join(f"s.{c.strip()}" for c in _SUBSCRIBER_COLUMNS.split(","))
    while True:
        rows = store.conn.execute(
            f"SELECT d.status, d.attempts, d.message_id, {columns} FROM deliveries d "
            f"JOIN subscribers s ON s.id = d.subscriber_id "
            f"WHERE d.digest_id = ? AND d.status IN ({marks}) AND d.subscriber_id > ? "
            f"ORDER BY d.subscriber_id LIMIT 500",
            (digest_id, *statuses, last),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield PendingDelivery(digest_id, _subscriber(row[3:]), row[0], row[1], row[2])
        last = rows[-1][3]


def set_delivery(
    store: Store,
    digest_id: int,
    subscriber_id: int,
    status: str,
    *,
    now: datetime,
    error: str | None = None,
    reply: str | None = None,
    count_attempt: bool = False,
) -> None:
    cursor = store.conn.execute(
        "UPDATE deliveries SET status = ?, updated_at = ?, last_error = COALESCE(?, last_error), "
        "reply = COALESCE(?, reply), attempts = attempts + ? "
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
        raise StoreError(str(store.path), message)


def count_deliveries(store: Store, digest_id: int, statuses: tuple[str, ...]) -> int:
    marks = ", ".join("?" for _ in statuses)
    row = store.conn.execute(
        f"SELECT COUNT(*) FROM deliveries WHERE digest_id = ? AND status IN ({marks})",
        (digest_id, *statuses),
    ).fetchone()
    return int(row[0])


def delivery_counts(store: Store, digest_id: int | None = None) -> list[DeliveryCounts]:
    """Per digest (newest first): how many rows are in each ledger state."""
    where = "" if digest_id is None else "WHERE g.id = ?"
    params: tuple[Any, ...] = () if digest_id is None else (digest_id,)
    rows = store.conn.execute(
        "SELECT g.id, g.created_at, json_array_length(g.articles), "
        "SUM(d.status = 'pending'), SUM(d.status = 'sending'), SUM(d.status = 'sent'), "
        "SUM(d.status = 'failed') FROM digests g LEFT JOIN deliveries d ON d.digest_id = g.id "
        f"{where} GROUP BY g.id ORDER BY g.id DESC",
        params,
    ).fetchall()
    return [
        DeliveryCounts(
            row[0],
            datetime.fromisoformat(row[1]),
            row[2],
            row[3] or 0,
            row[4] or 0,
            row[5] or 0,
            row[6] or 0,
        )
        for row in rows
    ]


def delivery_error(store: Store, digest_id: int, subscriber_id: int) -> str | None:
    row = store.conn.execute(
        "SELECT last_error FROM deliveries WHERE digest_id = ? AND subscriber_id = ?",
        (digest_id, subscriber_id),
    ).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A delivery that did not (or may not have) arrived, with what the server said."""

    digest_id: int
    email: str
    status: str  # "failed", or "sending": uncertain
    updated_at: datetime
    reply: str | None  # the last error or reply recorded, None when there is none


def iter_failures(store: Store, digest_id: int | None = None) -> Iterator[FailedDelivery]:
    """Failed and uncertain rows (of *digest_id*, or every digest), by digest then address.

    Streamed from the cursor: SQLite sorts, Python holds one row at a time.
    """
    where = "" if digest_id is None else "AND d.digest_id = ? "
    params: tuple[Any, ...] = () if digest_id is None else (digest_id,)
    rows = store.conn.execute(
        "SELECT d.digest_id, s.email, d.status, d.updated_at, COALESCE(d.last_error, d.reply) "
        "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
        f"WHERE d.status IN ('failed', 'sending') {where}"
        "ORDER BY d.digest_id, s.email COLLATE NOCASE, s.id",
        params,
    )
    for row in rows:
        yield FailedDelivery(row[0], row[1], row[2], datetime.fromisoformat(row[3]), row[4])
