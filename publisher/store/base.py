"""One open state database: the connection, the one transaction API, and migrating.

The query groups (articles, subscribers, digests, …) are mixins over this
base, each in its module; `publisher.store.Store` is all of them together.
The queries are written once, in SQL both backends run (`?` placeholders);
a backend's connection (`sqlite`, `postgres`) translates what it must and
turns its driver's errors into StoreError.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self

from publisher.errors import MigrationError, StoreError

Backend = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the queries use of a database: the shape of sqlite3's, on either backend."""

    backend: Backend
    where: str  # how messages name the database: its file, or "state"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...
    def schema_version(self) -> int: ...
    def set_schema_version(self, version: int) -> None: ...
    def hold_schema(self) -> None: ...
    def foreign_tables(self) -> list[str]: ...
    def ddl(self, statement: str) -> str: ...
    def many_writes(self) -> AbstractContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class OnBackend:
    """A migration step that differs by backend (None: nothing to do there)."""

    sqlite: str | None
    postgresql: str | None


# A migration step: an SQL statement both backends run, one per backend, or a
# function for what SQL alone cannot do (a backfill that decodes stored JSON).
Step = str | OnBackend | Callable[[Connection], None]


# Advisory-lock keys (PostgreSQL) are 64-bit numbers shared by every
# application on the server: ours are a fixed namespace and a hash of the name.
_LOCK_NAMESPACE = 0x7075626C  # "publ"


def lock_key(name: str) -> tuple[int, int]:
    """The two 32-bit keys of an advisory lock named *name* (pg_advisory_lock(int, int))."""
    return _LOCK_NAMESPACE, zlib.crc32(name.encode()) - 2**31


class StoreBase:
    """An open database: use as a context manager, or call close()."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.where = conn.where

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def rows_in(self, query: str, values: Iterable[Any]) -> Iterator[Sequence[Any]]:
        """The rows of *query* for *values* (distinct, in order), 500 values a query.

        *query* holds "IN ({marks})" where the values go: one statement per 500
        stays under what SQLite and PostgreSQL take in parameters, and each is
        one round trip instead of one per value.
        """
        wanted = sorted(set(values))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            yield from self.conn.execute(query.format(marks=", ".join("?" for _ in chunk)), chunk)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN … COMMIT, rolled back on any exception (SQLite: BEGIN IMMEDIATE).

        :raises StoreError: when the transaction cannot start or commit.
        """
        self.conn.begin()
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        else:
            self.conn.commit()

    @contextmanager
    def bulk_transaction(self) -> Iterator[None]:
        """A transaction that writes thousands of rows (indexing a content folder): the
        backend may hold more of the database in memory while it lasts."""
        with self.conn.many_writes(), self.transaction():
            yield

    @contextmanager
    def trial(self) -> Iterator[None]:
        """A transaction that is always rolled back: a preview that records nothing."""
        self.conn.begin()
        try:
            yield
        finally:
            self.conn.rollback()


def migrate(conn: Connection, migrations: Sequence[Sequence[Step]]) -> None:
    """Apply the migrations the database has not had yet, one transaction each.

    The version is read again inside each transaction, so two processes
    opening a new database at once apply each step once.

    :raises StoreError: for a database that holds another application's
        tables; MigrationError when its schema is newer than this program or
        a migration fails.
    """
    latest = len(migrations)
    version = conn.schema_version()
    if version > latest:
        raise _newer(conn, version, latest)
    if version == 0:
        _refuse_foreign(conn)
    while version < latest:
        conn.begin()
        try:
            conn.hold_schema()  # before reading the version: two processes, one step each
            version = conn.schema_version()
            if version < latest:
                _apply(conn, migrations[version])
                conn.set_schema_version(version + 1)
        except StoreError as err:
            conn.rollback()
            message = f"migration to schema version {version + 1} failed: {err.message}"
            raise MigrationError(conn.where, message) from err
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        version = conn.schema_version()


def create_schema(conn: Connection, migrations: Sequence[Sequence[Step]]) -> None:
    """Every migration at once, in the caller's transaction: a new database, made whole or not."""
    conn.hold_schema()
    for steps in migrations:
        _apply(conn, steps)
    conn.set_schema_version(len(migrations))


def _apply(conn: Connection, steps: Sequence[Step]) -> None:
    for step in steps:
        if isinstance(step, OnBackend):
            statement = step.sqlite if conn.backend == "sqlite" else step.postgresql
            if statement is not None:
                conn.execute(conn.ddl(statement))
        elif isinstance(step, str):
            conn.execute(conn.ddl(step))
        else:
            step(conn)


def _newer(conn: Connection, version: int, latest: int) -> MigrationError:
    message = (
        f"schema version {version} is newer than this publisher understands "
        f"({latest}); upgrade publisher"
    )
    return MigrationError(conn.where, message)


def _refuse_foreign(conn: Connection) -> None:
    """A database with tables but no schema version of ours belongs to someone else."""
    tables = conn.foreign_tables()
    # Tables with a version now: another process migrated it since the version was read.
    if tables and conn.schema_version() == 0:
        shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
        message = (
            f"holds tables that are not publisher's ({shown}); give publisher a database of its own"
        )
        raise StoreError(conn.where, message)
