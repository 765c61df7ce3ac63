"""The embedded backend: one SQLite file in the site's state folder (WAL, private, 0600).

The queries are SQLite's own dialect already; what this module adds is the
file's creation with safe permissions, the schema version in PRAGMA
user_version, and its errors as StoreError naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from publisher.errors import StoreError
from publisher.store.base import Backend, Cursor

logger = logging.getLogger("publisher.store")

MANY_WRITES_CACHE_KIB = 16384  # the page cache of a transaction of many writes


class SqliteConnection:
    backend: Backend = "sqlite"

    def __init__(self, raw: sqlite3.Connection, path: Path) -> None:
        self.raw = raw
        self.where = str(path)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.raw.execute(sql, params)
        except sqlite3.Error as err:
            raise _error(self.where, err) from err

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.raw.executemany(sql, rows)
        except sqlite3.Error as err:
            raise _error(self.where, err) from err

    def begin(self) -> None:
        # IMMEDIATE: the write lock now, so a transaction never fails half-way
        # for want of it (others wait up to the busy timeout).
        try:
            self.raw.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(self.where, f"cannot start a transaction: {err}") from err

    def commit(self) -> None:
        try:
            self.raw.execute("COMMIT")
        except sqlite3.Error as err:
            raise StoreError(self.where, f"cannot commit: {err}") from err

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    @contextlib.contextmanager
    def many_writes(self) -> Iterator[None]:
        """A bigger page cache while it lasts, the connection's own after (SQLite's default
        is 2 MB).

        Indexing 10,000 articles inserts rows under random ids into the table
        and its covering index: with 2 MB, the transaction spilled pages to the
        WAL and read them back, about a third of the time its inserts took.
        """
        before = self.execute("PRAGMA cache_size").fetchone()[0]
        self.execute(f"PRAGMA cache_size = -{MANY_WRITES_CACHE_KIB}")
        try:
            yield
        finally:
            self.execute(f"PRAGMA cache_size = {int(before)}")

    def close(self) -> None:
        self.raw.close()

    def schema_version(self) -> int:
        try:
            return int(self.raw.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as err:
            message = f"not a state database ({err})"
            raise StoreError(self.where, message) from err

    def set_schema_version(self, version: int) -> None:
        self.raw.execute(f"PRAGMA user_version = {int(version)}")

    def hold_schema(self) -> None:
        """Nothing to take: BEGIN IMMEDIATE holds the one write lock already."""

    def foreign_tables(self) -> list[str]:
        rows = self.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [row[0] for row in rows]

    def ddl(self, statement: str) -> str:
        return statement


def connect(path: Path) -> SqliteConnection:
    """A connection to the database at *path*, created private (0600) if new.

    :raises StoreError: when it cannot be opened.
    """
    try:
        _make_private(path)
        raw = sqlite3.connect(path, isolation_level=None, timeout=30)
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("PRAGMA synchronous = NORMAL")
    except (OSError, sqlite3.Error) as err:
        message = f"cannot open the state database ({err})"
        raise StoreError(str(path), message) from err
    return SqliteConnection(raw, path)


def _make_private(path: Path) -> None:
    """Create the database file 0600 (in a 0700 folder) before SQLite opens it.

    It holds every subscriber's address. SQLite gives the -wal and -shm files
    the database file's own permissions, so they follow.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)
            logger.warning("%s: was readable by others (mode %04o); changed it to 0600", path, mode)


def _error(where: str, err: sqlite3.Error) -> StoreError:
    if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
        return StoreError(where, f"the database stayed locked by another process ({err})")
    return StoreError(where, f"database error: {err}")
