"""One open state database: the connection, the one transaction API, opening and migrating.

The query groups (articles, subscribers, digests, …) are mixins over this
base, each in its module; `publisher.store.Store` is all of them together.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from publisher.errors import MigrationError, StoreError

logger = logging.getLogger("publisher.store")

# A migration step: an SQL statement, or a function for what SQL alone cannot do.
Step = str | Callable[[sqlite3.Connection], None]


class StoreBase:
    """An open database: use as a context manager, or call close()."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception.

        :raises StoreError: when the transaction cannot start or commit.
        """
        self._begin()
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as err:
                raise StoreError(str(self.path), f"cannot commit: {err}") from err

    @contextmanager
    def trial(self) -> Iterator[None]:
        """A transaction that is always rolled back: a preview that records nothing."""
        self._begin()
        try:
            yield
        finally:
            self.conn.execute("ROLLBACK")

    def _begin(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(str(self.path), f"cannot start a transaction: {err}") from err


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the database at *path*, created private (0600) if new.

    :raises StoreError: when it cannot be opened.
    """
    try:
        _make_private(path)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
    except (OSError, sqlite3.Error) as err:
        message = f"cannot open the state database ({err})"
        raise StoreError(str(path), message) from err
    return conn


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


def migrate(store: StoreBase, migrations: Sequence[Sequence[Step]]) -> None:
    """Apply the migrations the database has not had yet, one transaction each.

    :raises StoreError: when the file is not a state database; MigrationError
        when its schema is newer than this program or a migration fails.
    """
    try:
        version = int(store.conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as err:
        message = f"not a state database ({err})"
        raise StoreError(str(store.path), message) from err
    latest = len(migrations)
    if version > latest:
        message = (
            f"schema version {version} is newer than this publisher understands "
            f"({latest}); upgrade publisher"
        )
        raise MigrationError(str(store.path), message)
    for number in range(version, latest):
        try:
            with store.transaction():
                for step in migrations[number]:
                    if isinstance(step, str):
                        store.conn.execute(step)
                    else:
                        step(store.conn)
                store.conn.execute(f"PRAGMA user_version = {number + 1}")
        except sqlite3.Error as err:
            message = f"migration to schema version {number + 1} failed: {err}"
            raise MigrationError(str(store.path), message) from err
