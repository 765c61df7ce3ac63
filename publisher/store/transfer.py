"""`publisher state migrate`: the whole SQLite state copied into an empty PostgreSQL database.

One transaction on the target: its schema, every row of every table (ids
kept, so links, Message-IDs and the ledger mean what they meant), the
identity counters moved past the copied ids, and the row counts compared
table by table before the commit. Anything wrong rolls it all back, and the
target is as empty as it was. The SQLite file is only read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from publisher.errors import StoreError
from publisher.store import open_store
from publisher.store.base import create_schema
from publisher.store.postgres import PostgresConnection, connect, display_url
from publisher.store.schema import MIGRATIONS
from publisher.store.settings import SECRET_FINGERPRINT
from publisher.store.sqlite import SqliteConnection

# Who is running right now, not what the site holds: a copy starts with none.
_RUNTIME_TABLES = frozenset({"senders", "site_locks"})
NO_STATE = "no SQLite state here to copy"


@dataclass(frozen=True, slots=True)
class CopiedTable:
    name: str
    rows: int


def copy_state(
    source_db: Path,
    target_url: str,
    *,
    progress: Callable[[CopiedTable], None] = lambda _table: None,
    secret_fingerprint: str | None = None,
) -> list[CopiedTable]:
    """Copy every table of the SQLite state *source_db* into the empty database at *target_url*.

    The source is brought to the current schema first (as any command would).
    *secret_fingerprint*, the fingerprint of the secret the SQLite site signed
    its links and keyed its suppression list with, goes into the copy's
    settings, so that the machines sharing it must sign with that secret too.

    :raises StoreError: when either cannot be opened, the target is not
        empty, or a row does not go in; nothing is left in the target then.
    """
    if not source_db.is_file():
        raise StoreError(str(source_db), NO_STATE)
    with open_store(source_db) as store:
        assert isinstance(store.conn, SqliteConnection)  # a path opens SQLite
        return _copy_into(store.conn, target_url, progress, secret_fingerprint)


def _copy_into(
    source: SqliteConnection,
    target_url: str,
    progress: Callable[[CopiedTable], None],
    secret_fingerprint: str | None,
) -> list[CopiedTable]:
    target = connect(target_url)
    try:
        _refuse_non_empty(target, target_url)
        target.begin()
        try:
            create_schema(target, MIGRATIONS)
            copied = []
            for table in _tables_in_order(source):
                copied.append(_copy_table(source, target, table))
                progress(copied[-1])
            _move_identities_on(target)
            if secret_fingerprint is not None:  # after the counts: it is the copy's own row
                target.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (SECRET_FINGERPRINT, secret_fingerprint),
                )
            target.commit()
        except BaseException:
            target.rollback()
            raise
    finally:
        target.close()
    return copied


def _refuse_non_empty(target: PostgresConnection, url: str) -> None:
    tables = target.foreign_tables()
    if target.schema_version() or tables:
        shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
        message = (
            f"{display_url(url)} is not empty (it holds {shown or 'a publisher state'}); "
            "state migrate copies only into an empty database"
        )
        raise StoreError(target.where, message)


def _tables_in_order(source: SqliteConnection) -> list[str]:
    """Every table of ours, each after the tables its foreign keys point to."""
    names = [
        row[0]
        for row in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
        if row[0] not in _RUNTIME_TABLES
    ]
    needs = {
        name: {row[2] for row in source.execute(f'PRAGMA foreign_key_list("{name}")')}
        for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and needs[n] <= {*ordered, n}]
        if not ready:  # pragma: no cover - our schema has no cycle
            message = f"foreign keys form a cycle among {sorted(set(names) - set(ordered))}"
            raise StoreError(source.where, message)
        ordered.extend(ready)
    return ordered


def _copy_table(source: SqliteConnection, target: PostgresConnection, table: str) -> CopiedTable:
    columns = [row[1] for row in source.execute(f'PRAGMA table_info("{table}")')]
    rows = source.execute(f"SELECT {', '.join(columns)} FROM {table}")
    target.copy_rows(table, columns, rows)
    expected = int(source.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    found = int(target.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    if found != expected:
        message = f"{table}: copied {found} rows of {expected}; nothing was kept"
        raise StoreError(target.where, message)
    return CopiedTable(table, found)


def _move_identities_on(target: PostgresConnection) -> None:
    """Ids made from now on follow the copied ones (the copy gave them explicitly)."""
    columns = target.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall()
    for table, column in columns:
        target.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({column}), 0) + 1, false) "
            f"FROM {table}",
            (table, column),
        )
