"""The state database: created with the current schema, migrated forward, never downgraded."""

from __future__ import annotations

import sqlite3

import pytest

from publisher.errors import MigrationError, StoreError
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


def test_a_database_from_before_the_suppression_list_gains_it_and_keeps_its_rows(tmp_path):
    from publisher.store import MIGRATIONS

    # Found by content, not number: steps may be renumbered when branches merge.
    (step,) = [
        n for n, stmts in enumerate(MIGRATIONS) if any("TABLE suppressions" in s for s in stmts)
    ]
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:step]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {step}")
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
