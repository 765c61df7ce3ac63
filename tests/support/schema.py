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
    return database_before_step(path, f"CREATE TABLE {table} ")


def database_before_step(path: Path, marker: str) -> sqlite3.Connection:
    """A state database migrated up to the step with SQL holding *marker*, not including it."""
    (step,) = [
        number
        for number, steps in enumerate(MIGRATIONS)
        if any(isinstance(s, str) and marker in s for s in steps)
    ]
    migrate(sqlite.connect(path), MIGRATIONS[:step])
    return sqlite3.connect(path, isolation_level=None)
