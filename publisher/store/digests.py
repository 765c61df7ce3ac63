"""Digests: each one's frozen article list and rendering, and which articles went out in which."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.model import Digest, DigestArticle, DigestIssue, RenderedDigest
from publisher.store.base import StoreBase
from publisher.store.subscribers import topics_from


@dataclass(frozen=True, slots=True)
class StreamRow:
    """Where an active subscriber's stream stands, with their stored choices."""

    subscriber_id: int
    topics: tuple[str, ...] | None
    cadence: str | None
    stream_digest: int | None  # the latest digest that covered them
    joining: bool  # new, or active again: they start where their segment is
    joined_seq: int | None = None  # the last publication number when they became active


@dataclass(frozen=True, slots=True)
class StreamStart:
    """A digest as the start of the next one: its range's end and what it held back."""

    digest_id: int
    last_seq: int
    held: tuple[str, ...]


class DigestQueries(StoreBase):
    def latest_digest_id(self) -> int | None:
        row = self.conn.execute("SELECT MAX(id) FROM digests").fetchone()
        return None if row[0] is None else int(row[0])

    def latest_digest(self) -> Digest | None:
        row = self.conn.execute("SELECT id FROM digests ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else self.get_digest(row[0])

    def digest_issues(self) -> list[DigestIssue]:
        """Every digest made (and rendered), oldest first, as its page shows it."""
        rows = self.conn.execute(
            "SELECT id, created_at, subject, articles, segment FROM digests "
            "WHERE subject IS NOT NULL ORDER BY id"
        )
        return [
            DigestIssue(
                id=row[0],
                created_at=datetime.fromisoformat(row[1]),
                subject=row[2],
                articles=tuple(_digest_article(item) for item in json.loads(row[3])),
                segment=row[4],
            )
            for row in rows
        ]

    def get_digest(self, digest_id: int) -> Digest | None:
        row = self.conn.execute(
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
        self,
        articles: tuple[DigestArticle, ...],
        *,
        last_seq: int,
        now: datetime,
        segment: str | None = None,
        first_seq: int | None = None,
        held: Sequence[str] = (),
    ) -> int:
        """Record a new digest with its frozen article list (rendering is saved separately).

        It covers the publication numbers after *first_seq* (None: a
        segment's first digest) up to *last_seq*, for *segment*; *held* are
        the numbered articles of that range not public when it was made. (The
        watermark column, a time, is what digests were chosen by before
        schema 7: still written, never read.)
        """
        cursor = self.conn.execute(
            "INSERT INTO digests (created_at, watermark, last_seq, articles, article_count, "
            "segment, first_seq, held) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                now.isoformat(),
                now.isoformat(),
                last_seq,
                json.dumps([_article_record(a) for a in articles], ensure_ascii=False),
                len(articles),
                segment,
                first_seq,
                json.dumps(list(held)) if held else None,
            ),
        )
        digest_id = int(cursor.fetchone()[0])
        self.conn.executemany(
            "INSERT INTO digest_articles (digest_id, article_id) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            [(digest_id, a.id) for a in articles],
        )
        return digest_id

    # -- streams: where each subscriber's next digest starts ---------------------------

    def iter_streams(self) -> Iterator[StreamRow]:
        """Every active subscriber's choices and stream, by id, streamed in pages."""
        last = 0
        while True:
            rows = self.conn.execute(
                "SELECT id, topics, cadence, stream_digest, joining, joined_seq FROM subscribers "
                "WHERE status = 'active' AND id > ? ORDER BY id LIMIT 2000",
                (last,),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield StreamRow(row[0], topics_from(row[1]), row[2], row[3], bool(row[4]), row[5])
            last = rows[-1][0]

    def segment_positions(self) -> dict[str | None, int]:
        """Each segment's latest digest (None: the digests made before segments)."""
        rows = self.conn.execute("SELECT segment, MAX(id) FROM digests GROUP BY segment")
        return {row[0]: int(row[1]) for row in rows}

    def stream_starts(self, digest_ids: Iterable[int]) -> dict[int, StreamStart]:
        """What the next digest after each of *digest_ids* starts from."""
        found: dict[int, StreamStart] = {}
        query = "SELECT id, last_seq, held FROM digests WHERE id IN ({marks})"
        for row in self.rows_in(query, digest_ids):
            held = tuple(json.loads(row[2])) if row[2] else ()
            found[row[0]] = StreamStart(row[0], int(row[1] or 0), held)
        return found

    def numbered_after(self, after: int | None, *, upto: int) -> list[str]:
        """Articles numbered after *after* (all, if None) up to *upto*, in publication order."""
        rows = self.conn.execute(
            "SELECT id FROM articles WHERE published_seq IS NOT NULL AND published_seq > ? "
            "AND published_seq <= ? ORDER BY published_seq",
            (-1 if after is None else after, upto),
        )
        return [row[0] for row in rows]

    def advance_streams(self, subscriber_ids: Sequence[int], digest_id: int) -> None:
        """*digest_id* covered them: their next digest starts after it."""
        self.conn.executemany(
            "UPDATE subscribers SET stream_digest = ?, joining = 0 WHERE id = ?",
            [(digest_id, sid) for sid in subscriber_ids],
        )

    def each_article_counts(self, *, since: datetime) -> dict[int, int]:
        """How many "each article" messages each subscriber has had since *since*."""
        rows = self.conn.execute(
            "SELECT id, created_at FROM digests WHERE segment LIKE ?", ("%|each article",)
        ).fetchall()
        recent = [row[0] for row in rows if datetime.fromisoformat(row[1]) >= since]
        counts: dict[int, int] = {}
        for start in range(0, len(recent), 500):
            chunk = recent[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for sid, count in self.conn.execute(
                f"SELECT subscriber_id, COUNT(*) FROM deliveries WHERE digest_id IN ({marks}) "
                "GROUP BY subscriber_id",
                chunk,
            ):
                counts[sid] = counts.get(sid, 0) + int(count)
        return counts

    def save_rendered(self, digest_id: int, rendered: RenderedDigest) -> None:
        self.conn.execute(
            "UPDATE digests SET subject = ?, html = ?, text = ?, web_html = ? WHERE id = ?",
            (rendered.subject, rendered.html, rendered.text, rendered.web_html, digest_id),
        )

    def finish_digest(self, digest_id: int, *, now: datetime) -> None:
        self.conn.execute(
            "UPDATE digests SET finished_at = ? WHERE id = ? AND finished_at IS NULL",
            (now.isoformat(), digest_id),
        )

    def unfinished_digests(self) -> list[int]:
        return [
            row[0]
            for row in self.conn.execute(
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
