"""The site lock on PostgreSQL: an advisory lock, held by a connection of its own.

A builder, a service or a digest maker anywhere takes it; the server
releases it when its connection ends, however the holder ends, so a dead
holder never blocks the next run. Who holds it is written beside it, for
the message the next one prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from publisher.errors import LockHeldError
from publisher.store import open_store
from publisher.store.base import lock_key
from publisher.store.postgres import WHERE, connect

SITE_LOCK = "site"


MAKING_LOCK = "making"


@contextmanager
def server_lock(
    url: str, holder: str, *, name: str = SITE_LOCK, since: str, wait: bool = False
) -> Iterator[None]:
    """Hold the advisory lock *name* of the database at *url* for the block.

    With *wait*, wait for it while another holds it, instead of failing.

    :raises LockHeldError: when another process, on any machine, holds it.
    :raises StoreError: when the server cannot be reached.
    """
    store = open_store(url)  # migrated first: the holders' table is part of the schema
    key = lock_key(name)
    try:
        if wait:
            store.conn.execute("SELECT pg_advisory_lock(?, ?)", key).fetchone()
            taken = True
        else:
            taken = store.conn.execute("SELECT pg_try_advisory_lock(?, ?)", key).fetchone()[0]
        if not taken:
            row = store.conn.execute(
                "SELECT holder FROM site_locks WHERE name = ?", (name,)
            ).fetchone()
            raise LockHeldError(WHERE, row[0] if row else "unknown")
        store.conn.execute(
            "INSERT INTO site_locks (name, holder, since) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, since = excluded.since",
            (name, holder, since),
        )
        try:
            yield
        finally:
            store.conn.execute("DELETE FROM site_locks WHERE name = ?", (name,))
            store.conn.execute("SELECT pg_advisory_unlock(?, ?)", key)
    finally:
        store.close()


def server_lock_holder(url: str, *, name: str = SITE_LOCK) -> str | None:
    """Who holds the lock *name* right now (on any machine), or None when nobody does.

    Reads only: a database never used by publisher is left as it is.
    """
    conn = connect(url)
    try:
        if conn.execute("SELECT to_regclass('site_locks')").fetchone()[0] is None:
            return None
        key = lock_key(name)
        row = conn.execute(
            "SELECT l.holder FROM site_locks l WHERE l.name = ? AND EXISTS ("
            "SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted "
            "AND p.classid = ? AND p.objid = ? AND p.objsubid = 2)",
            (name, key[0] % 2**32, key[1] % 2**32),
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])
