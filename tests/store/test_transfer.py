"""store.transfer: a whole SQLite state copied into an empty PostgreSQL database.

Every row of every table arrives as it was, ids included, and the ids made
afterwards follow them; the tables of who runs now stay behind; a row that
does not go in leaves the target as empty as it was; the SQLite file is only
read.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from support.full_state import RUNTIME_TABLES, TABLES
from support.paths import STATES

from publisher.errors import StoreError
from publisher.store import SCHEMA_VERSION, open_store, settings
from publisher.store.transfer import CopiedTable, copy_state

# Every test here needs the server: where none can run, the fixture skips them all.
pytestmark = pytest.mark.usefixtures("postgres_server")

# Each table after those its foreign keys point to; the runtime tables are not copied.
COPY_ORDER = [
    "articles",
    "bounce_events",
    "digests",
    "feed_entries",
    "files",
    "outputs",
    "pages",
    "settings",
    "signup_requests",
    "signups",
    "subscriber_events",
    "subscribers",
    "suppressions",
    "webhook_nonces",
    "websub_pings",
    "deliveries",
    "digest_articles",
]


def _columns(db: Path, table: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
    finally:
        conn.close()


def _rows(location: Path | str, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    """Every row of *table*, in an order both backends agree on (the values' reprs)."""
    with open_store(location) as store:
        rows = store.conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
    return sorted((tuple(row) for row in rows), key=repr)


def _table_names(postgres_server, url: str) -> list[str]:
    database = url.rsplit("/", 1)[1]
    rows = postgres_server.admin(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database
    )
    return [str(row[0]) for row in rows]


# -- the copy ----------------------------------------------------------------------------


def test_every_row_of_every_table_arrives_as_it_was(full_site, target):
    source = full_site.site.state_db
    before = source.read_bytes()
    reported: list[CopiedTable] = []

    copied = copy_state(source, target, progress=reported.append)

    assert copied == reported
    assert [table.name for table in copied] == COPY_ORDER
    counts = {table.name: table.rows for table in copied}
    for table in TABLES:
        columns = _columns(source, table)
        mine, theirs = _rows(source, table, columns), _rows(target, table, columns)
        if table in RUNTIME_TABLES:
            assert theirs == [], table
            continue
        assert theirs == mine, table
        assert counts[table] == len(mine) > 0, table  # the state holds every kind of row
    # Every status a row can have went across.
    statuses = {
        "deliveries": {("failed",), ("pending",), ("sending",), ("sent",)},
        "subscribers": {("active",), ("bounced",), ("unsubscribed",)},
        "suppressions": {("bounced",), ("complained",), ("removed",), ("unsubscribed",)},
    }
    for table, expected in statuses.items():
        column = "reason" if table == "suppressions" else "status"
        assert set(_rows(target, table, [column])) == expected, table
    with open_store(target) as store:
        assert store.conn.schema_version() == SCHEMA_VERSION
    assert source.read_bytes() == before  # only read


def test_ids_made_after_the_copy_follow_the_copied_ones(full_site, target, now):
    copy_state(full_site.site.state_db, target)
    made = []
    for location in (target, full_site.site.state_db):  # the same, on either backend
        with open_store(location) as store, store.transaction():
            made.append(
                (
                    store.insert_subscriber("kai@example.org", "", status="active", now=now),
                    store.insert_digest((), last_seq=3, now=now),
                    store.save_signup("kai@example.org", "", now=now),
                )
            )
    assert made == [(9, 2, 3), (9, 2, 3)]  # the largest ids copied are 8, 1 and 2


def test_the_fingerprint_of_the_sites_secret_goes_with_the_copy(full_site, target):
    copied = copy_state(full_site.site.state_db, target, secret_fingerprint="f1" * 32)
    with open_store(target) as store:
        assert store.get_setting(settings.SECRET_FINGERPRINT) == "f1" * 32
        (found,) = store.conn.execute("SELECT COUNT(*) FROM settings").fetchone()
    # The copy's own row, added after the counts were compared: the report is of the source.
    (reported,) = [table.rows for table in copied if table.name == "settings"]
    assert found == reported + 1
    with open_store(full_site.site.state_db) as source:
        assert source.get_setting(settings.SECRET_FINGERPRINT) is None


def test_the_tables_of_who_runs_now_stay_behind(full_site, target, now):
    with open_store(full_site.site.state_db) as store, store.transaction():
        store.register_sender("elsewhere:4242:0badcafe", now=now)
        store.conn.execute(
            "INSERT INTO site_locks (name, holder, since) VALUES ('site', 'pid 4242', '')"
        )
    copied = copy_state(full_site.site.state_db, target)
    assert not {table.name for table in copied} & set(RUNTIME_TABLES)
    for table in RUNTIME_TABLES:
        assert _rows(target, table, ["*"]) == [], table


def test_a_row_that_does_not_go_in_leaves_the_target_as_empty_as_it_was(
    full_site, target, postgres_server
):
    # A value PostgreSQL's text cannot hold (SQLite's can): the copy stops at it.
    with open_store(full_site.site.state_db) as store, store.transaction():
        store.set_setting("note", "a\x00b")
    reported: list[CopiedTable] = []
    with pytest.raises(StoreError) as raised:
        copy_state(full_site.site.state_db, target, progress=reported.append)
    assert raised.value.where == "state"
    assert raised.value.message.startswith("settings: ")
    assert "NUL" in raised.value.message
    assert [table.name for table in reported] == COPY_ORDER[
        : COPY_ORDER.index("settings")
    ]  # before it
    assert _table_names(postgres_server, target) == []  # ... and out again with the rest


def test_a_state_of_an_older_schema_is_upgraded_first_and_copied_whole(tmp_path, target):
    folder = shutil.copytree(STATES / "v5", tmp_path / "v5")
    source = folder / ".publisher" / "state.db"
    copied = copy_state(source, target)
    with open_store(source) as store:  # what the copy upgraded it to
        assert store.conn.schema_version() == SCHEMA_VERSION
    for table in COPY_ORDER:
        columns = _columns(source, table)
        assert _rows(target, table, columns) == _rows(source, table, columns), table
    assert sum(table.rows for table in copied) > 0


def test_a_missing_source_is_refused_before_the_target_is_touched(
    tmp_path, target, postgres_server
):
    missing = tmp_path / ".publisher" / "state.db"
    with pytest.raises(StoreError) as raised:
        copy_state(missing, target)
    assert str(raised.value) == f"{missing}: no SQLite state here to copy"
    assert not missing.parent.exists()
    assert _table_names(postgres_server, target) == []
