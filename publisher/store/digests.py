"""Digests: each one's frozen article list and rendering, and which articles went out in which."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from publisher.model import Digest, DigestArticle, DigestIssue, RenderedDigest
from publisher.store.base import StoreBase


class DigestQueries(StoreBase):
    def digested_article_ids(self) -> set[str]:
        return {
            row[0] for row in self.conn.execute("SELECT DISTINCT article_id FROM digest_articles")
        }

    def first_digest_cutoff(self) -> int | None:
        """The last publication number the first digest covered; None before the first digest.

        The first digest takes only the newest few of what was published before
        it; everything numbered after it is new to the subscribers.
        """
        row = self.conn.execute("SELECT last_seq FROM digests ORDER BY id LIMIT 1").fetchone()
        return None if row is None else int(row[0] or 0)

    def undigested_article_ids(self, *, after: int | None) -> list[str]:
        """Articles with a publication number above *after* (any, if None) that no digest holds."""
        rows = self.conn.execute(
            "SELECT id FROM articles WHERE published_seq IS NOT NULL AND published_seq > ? "
            "AND id NOT IN (SELECT article_id FROM digest_articles) ORDER BY published_seq",
            (-1 if after is None else after,),
        )
        return [row[0] for row in rows]

    def latest_digest_id(self) -> int | None:
        row = self.conn.execute("SELECT MAX(id) FROM digests").fetchone()
        return None if row[0] is None else int(row[0])

    def latest_digest(self) -> Digest | None:
        row = self.conn.execute("SELECT id FROM digests ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else self.get_digest(row[0])

    def digest_issues(self) -> list[DigestIssue]:
        """Every digest made (and rendered), oldest first, as its page shows it."""
        rows = self.conn.execute(
            "SELECT id, created_at, subject, articles FROM digests "
            "WHERE subject IS NOT NULL ORDER BY id"
        )
        return [
            DigestIssue(
                id=row[0],
                created_at=datetime.fromisoformat(row[1]),
                subject=row[2],
                articles=tuple(_digest_article(item) for item in json.loads(row[3])),
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
        self, articles: tuple[DigestArticle, ...], *, last_seq: int, now: datetime
    ) -> int:
        """Record a new digest with its frozen article list (rendering is saved separately).

        *last_seq* is the last publication number it covered. (The watermark
        column, a time, is what digests were chosen by before schema 7: still
        written, never read.)
        """
        cursor = self.conn.execute(
            "INSERT INTO digests (created_at, watermark, last_seq, articles, article_count) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (
                now.isoformat(),
                now.isoformat(),
                last_seq,
                json.dumps([_article_record(a) for a in articles], ensure_ascii=False),
                len(articles),
            ),
        )
        digest_id = int(cursor.fetchone()[0])
        self.conn.executemany(
            "INSERT INTO digest_articles (digest_id, article_id) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            [(digest_id, a.id) for a in articles],
        )
        return digest_id

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
