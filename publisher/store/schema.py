"""The schema: forward-only migrations, applied in order, one transaction each.

Both backends run the same steps: SQL in SQLite's words (the PostgreSQL
connection turns INTEGER into BIGINT and a row id into an identity column),
a step of one backend only (OnBackend), or a function for what SQL alone
cannot do. The version is kept by the backend (SQLite: PRAGMA user_version).
Never change what a released step does: add a step.
"""

from __future__ import annotations

import json
from datetime import datetime

from publisher.store.articles import JSON, article_version, last_modified
from publisher.store.base import Connection, OnBackend, Step
from publisher.store.settings import PUBLICATION_SEQ


def _backfill_article_columns(conn: Connection) -> None:
    """Fill the planning columns that schema 5 added empty, from each article's metadata.

    Schema 5 left them NULL and relied on the next build re-indexing every
    file; an article kept at its last good version (its file broken) is never
    re-indexed, and every build then failed on it.
    """
    rows = conn.execute(
        "SELECT id, meta, text_hash, edited_at FROM articles "
        "WHERE date IS NULL OR is_draft IS NULL OR tags IS NULL OR version IS NULL"
    ).fetchall()
    for article_id, meta_text, text_hash, edited_at in rows:
        meta = json.loads(meta_text)
        conn.execute(
            "UPDATE articles SET date = ?, is_draft = ?, tags = ?, version = ? WHERE id = ?",
            (
                meta["date"],
                int(bool(meta["draft"])),
                JSON.encode([[name, slug] for name, slug in meta["tags"]]),
                article_version(meta_text, text_hash, edited_at),
                article_id,
            ),
        )


def _backfill_links(conn: Connection) -> None:
    """Fill the page-planning columns of schema 13 from each article's metadata."""
    rows = conn.execute("SELECT id, meta, edited_at FROM articles WHERE link IS NULL").fetchall()
    for article_id, meta_text, edited_at in rows:
        meta = json.loads(meta_text)
        conn.execute(
            "UPDATE articles SET link = ?, modified = ? WHERE id = ?",
            (meta["link"], last_modified(meta["date"], meta["updated"], edited_at), article_id),
        )


def _number_covered_articles(conn: Connection) -> None:
    """Give publication numbers to what the digests made so far have covered.

    Before schema 7 a digest took the articles that became public after the
    previous digest's watermark, a time. The articles public before the
    latest watermark are numbered here, and every digest covers them; the
    rest are numbered by the next build, so they go out in the next digest.
    The comparison is to the whole second below the watermark: the old rule
    lost an article first seen in the same second as a digest (its first
    sight was kept in whole seconds), and this gives it back. An article that
    did go out is known by digest_articles and is never sent again.
    """
    rows = conn.execute("SELECT watermark FROM digests").fetchall()
    if not rows:
        return
    cut = max(datetime.fromisoformat(row[0]) for row in rows).replace(microsecond=0)
    articles = conn.execute("SELECT date, first_seen, id FROM articles WHERE is_draft = 0")
    covered = sorted(
        (date, article_id)
        for date, first_seen, article_id in (
            (datetime.fromisoformat(d), datetime.fromisoformat(f), i) for d, f, i in articles
        )
        if max(date, first_seen) < cut
    )
    conn.executemany(
        "UPDATE articles SET published_seq = ? WHERE id = ?",
        [(number, article_id) for number, (_date, article_id) in enumerate(covered, 1)],
    )
    conn.execute("UPDATE digests SET last_seq = ?", (len(covered),))
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (PUBLICATION_SEQ, str(len(covered))),
    )


# Each migration is applied once, in order, inside its own transaction; the
# schema version is PRAGMA user_version. Never edit a released step: add one.
# Addresses compare without regard to case (ASCII, which is all a stored
# address holds): SQLite's NOCASE, and on PostgreSQL a collation of the same
# name, case-insensitive through ICU, made before anything uses it.
_NOCASE = (
    "CREATE COLLATION IF NOT EXISTS nocase "
    "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
)


def _count_digest_articles(conn: Connection) -> None:
    """Each digest's number of articles, from its frozen list (for the status tables)."""
    rows = conn.execute("SELECT id, articles FROM digests").fetchall()
    conn.executemany(
        "UPDATE digests SET article_count = ? WHERE id = ?",
        [(len(json.loads(articles)), digest_id) for digest_id, articles in rows],
    )


def _hold_what_the_last_digest_left(conn: Connection) -> None:
    """What digests before schema 17 left to the next: numbered, after the first, in none.

    They took every numbered article no digest held; from schema 17 each
    digest starts after the last one's publication number and takes up what
    it held back. The latest digest holds back what the old rule still owed.
    """
    first = conn.execute("SELECT last_seq FROM digests ORDER BY id LIMIT 1").fetchone()
    latest = conn.execute("SELECT id, last_seq FROM digests ORDER BY id DESC LIMIT 1").fetchone()
    if first is None or latest is None:
        return
    rows = conn.execute(
        "SELECT id FROM articles WHERE published_seq > ? AND published_seq <= ? "
        "AND id NOT IN (SELECT article_id FROM digest_articles) ORDER BY published_seq",
        (int(first[0] or 0), int(latest[1] or 0)),
    ).fetchall()
    if rows:
        held = json.dumps([row[0] for row in rows])
        conn.execute("UPDATE digests SET held = ? WHERE id = ?", (held, latest[0]))


MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        OnBackend(sqlite=None, postgresql=_NOCASE),
        """CREATE TABLE files (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            file_hash TEXT NOT NULL,
            article_id TEXT,
            problem TEXT
        )""",
        """CREATE TABLE articles (
            id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            edited_at TEXT,
            text_hash TEXT NOT NULL,
            meta TEXT NOT NULL,
            body TEXT NOT NULL,
            body_format TEXT NOT NULL,
            html TEXT,
            html_key TEXT
        )""",
        "CREATE INDEX articles_text_hash ON articles (text_hash)",
        "CREATE TABLE outputs (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL)",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (
        """CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('active', 'unsubscribed', 'bounced')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            hard_failures INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE digests (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            watermark TEXT NOT NULL,
            articles TEXT NOT NULL,
            subject TEXT,
            html TEXT,
            text TEXT,
            web_html TEXT,
            finished_at TEXT
        )""",
        """CREATE TABLE digest_articles (
            digest_id INTEGER NOT NULL REFERENCES digests (id),
            article_id TEXT NOT NULL,
            PRIMARY KEY (article_id, digest_id)
        )""",
        """CREATE TABLE deliveries (
            digest_id INTEGER NOT NULL REFERENCES digests (id),
            subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            reply TEXT,
            message_id TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (digest_id, subscriber_id)
        )""",
        "CREATE INDEX deliveries_status ON deliveries (digest_id, status, subscriber_id)",
    ),
    (
        # The stat of each output lets a build with nothing to do prove it
        # without reading them; the signature says what went into each.
        "ALTER TABLE outputs ADD COLUMN size INTEGER",
        "ALTER TABLE outputs ADD COLUMN mtime_ns INTEGER",
        "ALTER TABLE outputs ADD COLUMN signature TEXT",
    ),
    (
        # Double opt-in: a sign-up waits here until its address is confirmed,
        # and every request is logged for the per-address rate limit.
        """CREATE TABLE signups (
            id INTEGER PRIMARY KEY,
            email TEXT COLLATE NOCASE NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            confirmed_at TEXT
        )""",
        """CREATE TABLE signup_requests (
            email TEXT COLLATE NOCASE NOT NULL,
            client TEXT NOT NULL,
            at TEXT NOT NULL,
            was_sent INTEGER NOT NULL
        )""",
        "CREATE INDEX signup_requests_email ON signup_requests (email, at)",
    ),
    (
        # What planning the feeds needs, in columns: a build after one edit
        # reads these for every article and the full record only for the few
        # in feeds. Clearing the config fingerprint re-indexes every file,
        # which fills them.
        "ALTER TABLE articles ADD COLUMN date TEXT",
        "ALTER TABLE articles ADD COLUMN is_draft INTEGER",
        "ALTER TABLE articles ADD COLUMN tags TEXT",
        "ALTER TABLE articles ADD COLUMN version TEXT",
        "DELETE FROM settings WHERE key = 'config'",
    ),
    (_backfill_article_columns,),
    (
        # Which articles a digest has not covered yet is decided by numbers, not
        # times (#9): a build gives each article a publication number when it
        # first publishes it, and a digest records the last number it covered.
        # A file's body hash (valid front matter or not) recognises it renamed
        # with a new title; clearing the config fingerprint re-indexes every
        # file, which fills it.
        "ALTER TABLE articles ADD COLUMN published_seq INTEGER",
        "ALTER TABLE files ADD COLUMN body_hash TEXT",
        "ALTER TABLE digests ADD COLUMN last_seq INTEGER",
        "CREATE UNIQUE INDEX articles_published_seq ON articles (published_seq)",
        _number_covered_articles,
        "DELETE FROM settings WHERE key = 'config'",
    ),
    (
        # Addresses that must not be mailed again unless the person confirms a
        # sign-up themselves: kept when their subscriber row is removed, so an
        # old list cannot bring them back. `key` is an HMAC of the address
        # under the site secret, never the address (the migration cannot
        # compute it, so rows already unsubscribed or bounced are respected
        # through their row until they are removed).
        """CREATE TABLE suppressions (
            key TEXT PRIMARY KEY,
            reason TEXT NOT NULL
                CHECK (reason IN ('unsubscribed', 'bounced', 'removed', 'complained')),
            created_at TEXT NOT NULL
        )""",
    ),
    (
        # WebSub pings still to send, one row per feed URL: a build records
        # them in its last commit, and pingers send them after the site lock
        # is released, backing off after each failure. The list earlier
        # versions kept in the `websub_pending` setting moves here, due now.
        """CREATE TABLE websub_pings (
            url TEXT PRIMARY KEY,
            attempts INTEGER NOT NULL,
            next_attempt TEXT NOT NULL,
            last_error TEXT
        )""",
        # A PostgreSQL state is new, or copied from an up-to-date SQLite one:
        # it never held the old setting.
        OnBackend(
            sqlite="INSERT OR IGNORE INTO websub_pings (url, attempts, next_attempt) "
            "SELECT value, 1, '' FROM json_each((SELECT value FROM settings "
            "WHERE key = 'websub_pending'))",
            postgresql=None,
        ),
        "DELETE FROM settings WHERE key = 'websub_pending'",
    ),
    (
        # What the status tables count, in a column: both backends, no JSON in SQL.
        "ALTER TABLE digests ADD COLUMN article_count INTEGER",
        _count_digest_articles,
    ),
    (
        # Several senders share a digest: each claims pending rows for itself
        # (deliveries.worker) and says it is alive (senders.heartbeat_at); the
        # rows a sender that went silent had claimed go back to the others.
        # A digest's rate limit is one slot every 1/rate seconds, shared.
        """CREATE TABLE senders (
            worker TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL
        )""",
        "ALTER TABLE deliveries ADD COLUMN worker TEXT",
        "ALTER TABLE digests ADD COLUMN next_send_at TEXT",
        # Who holds the site lock, when it is PostgreSQL's (an advisory lock).
        """CREATE TABLE site_locks (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            since TEXT NOT NULL
        )""",
    ),
    (
        # The static pages a build wrote into [paths] site, as `outputs` holds
        # the feeds: a table of its own, for another folder (both may hold a
        # "digests/1/index.html").
        # Where each article's page goes and when it last changed, in columns:
        # planning the pages reads these for every article without decoding it.
        "ALTER TABLE articles ADD COLUMN link TEXT",
        "ALTER TABLE articles ADD COLUMN modified TEXT",
        _backfill_links,
        """CREATE TABLE pages (
            path TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            signature TEXT NOT NULL
        )""",
    ),
    (
        # Each article's feed entry per format, as the feeds carry it: an entry
        # depends on its article alone, so a build renders it once for every
        # feed that shows it, and a later build only for the articles that
        # changed. `signature` says what went into it; only a cache.
        """CREATE TABLE feed_entries (
            article_id TEXT NOT NULL,
            format TEXT NOT NULL,
            signature TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (article_id, format)
        )""",
    ),
    (
        # Planning reads these columns of every article; in SQLite they sit after
        # the rendered HTML in each row, so reading them walked every article's
        # overflow pages (0.10-0.12 s of a build with pages, 10,000 articles;
        # 0.03-0.05 s from this index). PostgreSQL keeps long values out of line.
        OnBackend(
            sqlite="CREATE INDEX articles_keys "
            "ON articles (id, date, is_draft, tags, version, link, modified, path)",
            postgresql=None,
        ),
    ),
    (
        # Bounces and complaints that arrive later, by mail or from a provider
        # (issue "Reach the inbox"). Each subscriber's history: every status
        # change and every bounce, with its reason and source. `subject` is the
        # suppression key of the address (an HMAC, never the address), so the
        # history of a removed subscriber outlives its row (subscriber_id is
        # then NULL).
        """CREATE TABLE subscriber_events (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            subscriber_id INTEGER,
            at TEXT NOT NULL,
            change TEXT NOT NULL,
            reason TEXT NOT NULL,
            source TEXT NOT NULL
        )""",
        "CREATE INDEX subscriber_events_subject ON subscriber_events (subject, id)",
        "CREATE INDEX subscriber_events_subscriber ON subscriber_events (subscriber_id)",
        # Each bounce, complaint or provider event counted, by an idempotency
        # key (the provider's event id, or the bounce message's Message-ID or
        # hash): a retried webhook or a message read twice counts once.
        """CREATE TABLE bounce_events (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            subscriber_id INTEGER,
            digest_id INTEGER,
            received_at TEXT NOT NULL,
            source TEXT NOT NULL
        )""",
        # Signed webhook tokens already accepted (Mailgun's replay protection).
        "CREATE TABLE webhook_nonces (key TEXT PRIMARY KEY, seen_at TEXT NOT NULL)",
        "CREATE INDEX webhook_nonces_seen ON webhook_nonces (seen_at)",
        # Soft bounces in a row, and the last digest one was counted for (a
        # delivery of a digest in between that did not bounce breaks the row).
        "ALTER TABLE subscribers ADD COLUMN soft_bounces INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE subscribers ADD COLUMN soft_bounce_digest INTEGER",
        # What came back for a ledger row after it was sent: "hard 5.1.1",
        # "soft 4.2.2", "complaint". The row stays `sent`: it went out once.
        "ALTER TABLE deliveries ADD COLUMN bounce TEXT",
    ),
    (
        # Subscribers choose (issue "Subscribers choose"): topic slugs, sorted
        # and comma-joined (NULL: everything), and a cadence (NULL: the site's
        # default). Each subscriber's stream: the latest digest that covered
        # them (its last_seq is where their next one starts) and whether they
        # are joining a segment (new, or active again), to start where it is.
        "ALTER TABLE subscribers ADD COLUMN topics TEXT",
        "ALTER TABLE subscribers ADD COLUMN cadence TEXT",
        "ALTER TABLE subscribers ADD COLUMN stream_digest INTEGER",
        "ALTER TABLE subscribers ADD COLUMN joining INTEGER NOT NULL DEFAULT 1",
        # Each digest's segment ("<topics>|<cadence>"; NULL for those made
        # before, all of the one segment there was), the publication number its
        # range starts after (NULL: a segment's first digest), and the numbered
        # articles of its range held back (not public when it was made) as a
        # JSON list, which the next digest of its subscribers takes up again.
        "ALTER TABLE digests ADD COLUMN segment TEXT",
        "ALTER TABLE digests ADD COLUMN first_seq INTEGER",
        "ALTER TABLE digests ADD COLUMN held TEXT",
        "CREATE INDEX digests_segment ON digests (segment, last_seq)",
        _hold_what_the_last_digest_left,
    ),
    (
        # What a sign-up chose on the form (topics as subscribers.topics holds
        # them, NULL: everything; a cadence, NULL: the site's default), kept
        # until the confirmation makes the subscriber with them.
        "ALTER TABLE signups ADD COLUMN topics TEXT",
        "ALTER TABLE signups ADD COLUMN cadence TEXT",
    ),
    (
        # The last publication number given when each subscriber became active:
        # one joining a segment that has moved on since starts from there, so
        # nothing published while they were subscribed is skipped. NULL for
        # those who joined before it was kept: they start where their segment is.
        "ALTER TABLE subscribers ADD COLUMN joined_seq INTEGER",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
