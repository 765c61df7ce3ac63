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
from publisher.store.base import connect, migrate
from publisher.store.deliveries import DeliveryQueries, FailedDelivery, PendingDelivery
from publisher.store.digests import DigestQueries
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
    "decode",
    "encode",
    "from_row",
    "open_store",
    "restamp",
]


class Store(
    ArticleQueries,
    DeliveryQueries,  # before SubscriberQueries, which it builds on
    SubscriberQueries,
    SignupQueries,
    DigestQueries,
    PingQueries,
):
    """One open state database, with every group of queries."""


def open_store(path: Path) -> Store:
    """Open (creating if needed) and migrate the state database at *path*.

    :raises StoreError: when it cannot be opened; MigrationError when its schema
        is newer than this program or a migration fails.
    """
    store = Store(connect(path), path)
    try:
        migrate(store, MIGRATIONS)
    except BaseException:
        store.close()
        raise
    return store
