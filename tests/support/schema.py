"""State databases as an older version left them, to migrate forward."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from publisher.store import MIGRATIONS, sqlite
from publisher.store.base import migrate


def database_before(path: Path, table: str) -> sqlite3.Connection:
    """A state database migrated up to the step that creates *table*, not including it.

    Found by what a step creates rather than by its number, as numbers change
    when work from several branches lands.
    """
    (step,) = [
        number
        for number, steps in enumerate(MIGRATIONS)
        if any(isinstance(s, str) and f"CREATE TABLE {table} " in s for s in steps)
    ]
    migrate(sqlite.connect(path), MIGRATIONS[:step])
    return sqlite3.connect(path, isolation_level=None)
