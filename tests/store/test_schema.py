"""store.schema: new databases get the current schema, older ones are migrated.

One transaction a step, from every released schema; a newer schema is refused.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.paths import STATES
from support.schema import database_before, database_before_step

from publisher import tokens
from publisher.config import load_config
from publisher.errors import MigrationError, StoreError
from publisher.mail import subscribers
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.store import MIGRATIONS, SCHEMA_VERSION, open_store
from publisher.store.base import migrate


def test_new_database_has_the_current_schema_and_wal(tmp_path):
    path = tmp_path / "state" / "state.db"
    with open_store(path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {
            row[0]
            for row in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert {"files", "articles", "outputs", "settings"} <= tables


def test_reopening_does_not_migrate_again(tmp_path):
    path = tmp_path / "state.db"
    with open_store(path) as store, store.transaction():
        store.set_setting("x", "1")
    with open_store(path) as store:
        assert store.get_setting("x") == "1"


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(MigrationError) as raised:
        open_store(path)
    assert str(raised.value) == (
        f"{path}: schema version {SCHEMA_VERSION + 1} is newer than this publisher understands "
        f"({SCHEMA_VERSION}); upgrade publisher"
    )


def test_a_migration_that_fails_names_its_step_and_leaves_the_database_as_it_was(tmp_path):
    path = tmp_path / "state.db"
    with open_store(path) as store:
        steps = [
            ("CREATE TABLE later (id INTEGER PRIMARY KEY)",),
            ("CREATE TABLE half_done (id INTEGER)", "INSERT INTO no_such_table VALUES (1)"),
        ]
        with pytest.raises(MigrationError) as raised:
            migrate(store.conn, [*MIGRATIONS, *steps])
        assert str(raised.value) == (
            f"{path}: migration to schema version {SCHEMA_VERSION + 2} failed: "
            "database error: no such table: no_such_table"
        )
        # The step before it went in whole; the failed one not at all.
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        tables = {row[0] for row in store.conn.execute("SELECT name FROM sqlite_master")}
        assert "later" in tables
        assert "half_done" not in tables


# -- upgrades from every released schema -------------------------------------------

# After every fixture was made (they hold articles dated 2026-12-01).
UPGRADE_NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
ADDED_TITLE = "Added after the first digest"


def _fixture_ids(folder: Path) -> dict[str, str]:
    conn = sqlite3.connect(folder / ".publisher" / "state.db")
    try:
        return dict(conn.execute("SELECT path, id FROM articles").fetchall())
    finally:
        conn.close()


@pytest.mark.parametrize("version", range(1, 6))
def test_every_released_schema_upgrades_then_builds_and_sends(tmp_path, monkeypatch, version):
    """A state made by each released version: ids kept, the broken article kept, nothing re-sent."""
    monkeypatch.setenv("PUBLISHER_SECRET", "a-test-secret-of-enough-length")
    folder = tmp_path / f"v{version}"
    shutil.copytree(STATES / f"v{version}", folder)
    before = _fixture_ids(folder)
    site = load_config(folder / "publisher.toml")

    report = build(site, now=UPGRADE_NOW)

    with open_store(site.state_db) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        after = dict(store.conn.execute("SELECT path, id FROM articles").fetchall())
    assert after == before
    assert [(p.path, p.kept_previous) for p in report.problems] == [
        ("content/2021-03-04-observers.md", True)
    ]
    feed = json.loads((site.output_dir / "feed.json").read_text(encoding="utf-8"))
    titles = [item["title"] for item in feed["items"]]
    assert "Observers find an orderly vote" in titles  # its last good version
    assert ADDED_TITLE in titles

    if version == 1:  # no subscribers yet: the first digest takes the newest articles
        with open_store(site.state_db) as store, store.transaction():
            subscribers.add_subscriber(
                store,
                tokens.load_secret(site.state_dir),
                "ada@example.org",
                "",
                now=UPGRADE_NOW,
            )
    sent = digests.send_digests(site, now=lambda: UPGRADE_NOW)

    with open_store(site.state_db) as store:
        digest = store.get_digest(sent.made[0])
        rows = store.conn.execute(
            "SELECT d.digest_id, s.email, d.status FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id ORDER BY 1, 2 COLLATE NOCASE"
        ).fetchall()
    assert digest is not None
    titles = [a.title for a in digest.articles]
    if version == 1:
        assert sent.made == [1]
        assert set(titles) == {
            ADDED_TITLE,
            "Observers find an orderly vote",
            "Pacific fisheries accord agreed in Tokyo",
            "Arms talks in Vienna end without results",
        }
        assert rows == [(1, "ada@example.org", "sent")]
    else:
        assert sent.made == [2]
        assert titles == [ADDED_TITLE]  # what digest 1 carried is not sent again
        assert rows == [
            (1, "ada@example.org", "sent"),
            (1, "Grace@example.org", "sent"),
            (2, "ada@example.org", "sent"),
            (2, "Grace@example.org", "sent"),
        ]


def test_a_database_from_before_the_suppression_list_gains_it_and_keeps_its_rows(tmp_path):
    path = tmp_path / "state.db"
    conn = database_before(path, "suppressions")
    conn.execute(
        "INSERT INTO subscribers (email, status, created_at, updated_at) "
        "VALUES ('gone@example.org', 'unsubscribed', '2020-01-01', '2020-01-01')"
    )
    conn.close()
    with open_store(path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.conn.execute("SELECT email, status FROM subscribers").fetchall() == [
            ("gone@example.org", "unsubscribed")
        ]
        assert store.conn.execute("SELECT * FROM suppressions").fetchall() == []
        with pytest.raises(StoreError, match="CHECK constraint failed"), store.transaction():
            store.conn.execute(
                "INSERT INTO suppressions (key, reason, created_at) VALUES ('k', 'forgot', 'x')"
            )


FEEDS_URL = "https://gazette.example/news/feeds/"


def test_pings_pending_before_the_upgrade_are_kept(tmp_path, now):
    # Older versions kept the URLs still to ping as a JSON list in a setting.
    path = tmp_path / "state.db"
    connection = database_before(path, "websub_pings")
    urls = [FEEDS_URL + "rss.xml", FEEDS_URL + "tags/vienna/atom.xml"]
    connection.execute(
        "INSERT INTO settings (key, value) VALUES ('websub_pending', ?)", (json.dumps(urls),)
    )
    connection.close()
    with open_store(path) as store:
        assert store.get_setting("websub_pending") is None
        due = store.due_pings(now)
    assert sorted(ping.url for ping in due) == urls
    assert {ping.attempts for ping in due} == {1}


def test_digests_from_before_segments_hand_on_what_they_still_owed(tmp_path):
    """Before schema 17 a digest took any numbered article no digest held; one is still owed."""
    path = tmp_path / "state.db"
    conn = database_before_step(path, "ADD COLUMN stream_digest")
    for seq, article in enumerate(("urn:a", "urn:b", "urn:c", "urn:d"), 1):
        conn.execute(
            "INSERT INTO articles (id, path, first_seen, text_hash, meta, body, body_format, "
            "published_seq) VALUES (?, ?, '2026-01-01T00:00:00+00:00', '', '{}', '', 'markdown', "
            "?)",
            (article, f"{article[4:]}.md", seq),
        )
    for digest_id, last_seq in ((1, 1), (2, 4)):
        conn.execute(
            "INSERT INTO digests (id, created_at, watermark, last_seq, articles) "
            "VALUES (?, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', ?, '[]')",
            (digest_id, last_seq),
        )
    # The first digest took urn:a; the second urn:b and urn:d (urn:c was a draft again).
    for digest_id, article in ((1, "urn:a"), (2, "urn:b"), (2, "urn:d")):
        conn.execute("INSERT INTO digest_articles VALUES (?, ?)", (digest_id, article))
    conn.execute(
        "INSERT INTO subscribers (email, status, created_at, updated_at) "
        "VALUES ('ada@example.org', 'active', '2020-01-01', '2020-01-01')"
    )
    conn.close()
    with open_store(path) as store:
        assert store.stream_starts([1, 2])[2].held == ("urn:c",)
        assert store.stream_starts([1, 2])[1].held == ()
        assert store.segment_positions() == {None: 2}
        (stream,) = store.iter_streams()
        assert (stream.stream_digest, stream.joining, stream.topics) == (None, True, None)
