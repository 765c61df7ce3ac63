"""The state database: all SQL lives in this package, and nothing outside it knows the dialect.

One `Store` is one open database. Its queries come in groups, one module
each (`articles`, `subscribers`, `signups`, `digests`, `deliveries`,
`pings`, `settings`), over the connection and the one transaction API in
`base`; `schema` holds the migrations.
"""

from __future__ import annotations

from pathlib import Path

from publisher.store.articles import (
    ArticleKey,
    ArticleQueries,
    ArticleRow,
    FileRow,
    OutputRow,
    decode,
    encode,
    from_row,
    restamp,
)
from publisher.store.base import Connection, migrate
from publisher.store.claims import ClaimQueries
from publisher.store.deliveries import DeliveryQueries, FailedDelivery, PendingDelivery
from publisher.store.digests import DigestQueries
from publisher.store.events import EventQueries, SubscriberEvent
from publisher.store.pings import PendingPing, PingQueries
from publisher.store.schema import MIGRATIONS, SCHEMA_VERSION
from publisher.store.signups import Signup, SignupQueries
from publisher.store.subscribers import SubscriberQueries

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ArticleKey",
    "ArticleRow",
    "FailedDelivery",
    "FileRow",
    "OutputRow",
    "PendingDelivery",
    "PendingPing",
    "Signup",
    "Store",
    "SubscriberEvent",
    "decode",
    "encode",
    "from_row",
    "open_store",
    "restamp",
    "state_exists",
]


class Store(
    ArticleQueries,
    ClaimQueries,  # before DeliveryQueries and SubscriberQueries, which it builds on
    DeliveryQueries,
    SubscriberQueries,
    SignupQueries,
    DigestQueries,
    PingQueries,
    EventQueries,
):
    """One open state database, with every group of queries."""


def open_store(location: Path | str) -> Store:
    """Open (creating if needed) and migrate the state database at *location*.

    A path is a SQLite file; a `postgresql://` URL a PostgreSQL database (psycopg
    is imported only then, so a SQLite site pays nothing for it).

    :raises StoreError: when it cannot be opened; MigrationError when its schema
        is newer than this program or a migration fails.
    """
    conn = _connect(location)
    try:
        migrate(conn, MIGRATIONS)
    except BaseException:
        conn.close()
        raise
    return Store(conn)


def state_exists(location: Path | str) -> bool:
    """Whether a state was ever made at *location*, without making one (`status` creates none)."""
    if isinstance(location, Path) or not is_server_url(location):
        return Path(location).exists()
    conn = _connect(location)
    try:
        return conn.schema_version() > 0
    finally:
        conn.close()


def _connect(location: Path | str) -> Connection:
    if isinstance(location, str) and is_server_url(location):
        from publisher.store import postgres

        return postgres.connect(location)
    from publisher.store import sqlite

    return sqlite.connect(Path(location))


def is_server_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))
