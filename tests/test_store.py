"""The state database: created with the current schema, migrated forward, never downgraded."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.schema import database_before

from publisher import tokens
from publisher.config import load_config
from publisher.errors import MigrationError, StoreError
from publisher.mail import subscribers
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.store import SCHEMA_VERSION, open_store


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


def test_not_a_database(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as raised:
        open_store(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert "not a database" in str(raised.value)


def test_transaction_rolls_back_on_error(tmp_path):
    def write_then_fail(store) -> None:
        with store.transaction():
            store.set_setting("y", "2")
            raise RuntimeError

    with open_store(tmp_path / "state.db") as store:
        with pytest.raises(RuntimeError):
            write_then_fail(store)
        assert store.get_setting("y") is None


# -- upgrades from every released schema -------------------------------------------

STATES = Path(__file__).parent / "data" / "states"
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
        digest = store.get_digest(sent.made or 0)
        rows = store.conn.execute(
            "SELECT d.digest_id, s.email, d.status FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id ORDER BY 1, 2 COLLATE NOCASE"
        ).fetchall()
    assert digest is not None
    titles = [a.title for a in digest.articles]
    if version == 1:
        assert sent.made == 1
        assert set(titles) == {
            ADDED_TITLE,
            "Observers find an orderly vote",
            "Pacific fisheries accord agreed in Tokyo",
            "Arms talks in Vienna end without results",
        }
        assert rows == [(1, "ada@example.org", "sent")]
    else:
        assert sent.made == 2
        assert titles == [ADDED_TITLE]  # what digest 1 carried is not sent again
        assert rows == [
            (1, "ada@example.org", "sent"),
            (1, "Grace@example.org", "sent"),
            (2, "ada@example.org", "sent"),
            (2, "Grace@example.org", "sent"),
        ]


def test_state_files_are_readable_by_the_owner_alone(tmp_path):
    """They hold every subscriber's address: 0600, the -wal and -shm files too."""
    path = tmp_path / "state" / "state.db"
    with open_store(path) as store, store.transaction():
        store.set_setting("x", "1")
        names = sorted(p.name for p in path.parent.iterdir())
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    assert names == ["state.db", "state.db-shm", "state.db-wal"]
    assert modes == dict.fromkeys(names, 0o600)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_state_folder_is_private_whichever_command_makes_it(runner, site_dir):
    from publisher.cli import cli

    result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), "build"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((site_dir / ".publisher").stat().st_mode) == 0o700


def test_a_state_database_readable_by_others_is_made_private(tmp_path, caplog):
    path = tmp_path / "state.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING), open_store(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"{path}: was readable by others (mode 0644); changed it to 0600" in caplog.messages


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
        with pytest.raises(sqlite3.IntegrityError), store.transaction():
            store.conn.execute(
                "INSERT INTO suppressions (key, reason, created_at) VALUES ('k', 'forgot', 'x')"
            )
