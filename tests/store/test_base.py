"""store.base: the connection, the one transaction API, and a database only its owner reads."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import stat
import subprocess
import sys

import pytest
from support.paths import SITES
from support.processes import ENV

from publisher.errors import StoreError
from publisher.store import open_store
from publisher.store.sqlite import MANY_WRITES_CACHE_KIB


def test_not_a_database(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as raised:
        open_store(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert "not a database" in str(raised.value)


def test_transaction_rolls_back_on_error(tmp_path):
    def write_then_fail(store) -> None:
        with store.transaction():
            store.set_setting("y", "2")
            raise RuntimeError

    with open_store(tmp_path / "state.db") as store:
        with pytest.raises(RuntimeError):
            write_then_fail(store)
        assert store.get_setting("y") is None


def test_a_bulk_transaction_commits_or_rolls_back_like_any(store):
    def write_then_fail() -> None:
        with store.bulk_transaction():
            store.set_setting("y", "2")
            raise RuntimeError

    with store.bulk_transaction():
        store.set_setting("x", "1")
    assert store.get_setting("x") == "1"
    with pytest.raises(RuntimeError):
        write_then_fail()
    assert store.get_setting("y") is None


def test_sqlite_holds_more_of_the_database_in_memory_for_a_bulk_transaction(tmp_path):
    def cache_kib(store) -> int:
        return -int(store.conn.execute("PRAGMA cache_size").fetchone()[0])

    seen = []

    def look_then_fail(store) -> None:
        with store.bulk_transaction():
            seen.append(cache_kib(store))
            raise RuntimeError

    with open_store(tmp_path / "state.db") as store:
        own = cache_kib(store)
        with pytest.raises(RuntimeError):
            look_then_fail(store)
        assert cache_kib(store) == own
    assert seen == [MANY_WRITES_CACHE_KIB]
    assert own < MANY_WRITES_CACHE_KIB


def test_a_trial_is_always_rolled_back(tmp_path):
    with open_store(tmp_path / "state.db") as store:
        with store.trial():
            store.set_setting("y", "2")
            assert store.get_setting("y") == "2"  # seen inside the trial
        assert store.get_setting("y") is None


def test_state_files_are_readable_by_the_owner_alone(tmp_path):
    """They hold every subscriber's address: 0600, the -wal and -shm files too."""
    path = tmp_path / "state" / "state.db"
    with open_store(path) as store, store.transaction():
        store.set_setting("x", "1")
        names = sorted(p.name for p in path.parent.iterdir())
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    assert names == ["state.db", "state.db-shm", "state.db-wal"]
    assert modes == dict.fromkeys(names, 0o600)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_state_folder_is_private_whichever_command_makes_it(runner, site_dir):
    from publisher.cli import cli

    result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), "build"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((site_dir / ".publisher").stat().st_mode) == 0o700


def test_a_state_database_readable_by_others_is_made_private(tmp_path, caplog):
    path = tmp_path / "state.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING), open_store(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"{path}: was readable by others (mode 0644); changed it to 0600" in caplog.messages


# A build and a digest on a SQLite site, in a fresh interpreter: which drivers got imported.
DRIVERS_IMPORTED = """
import sys
from publisher.cli import cli
for args in (["build"], ["digest", "send"], ["status"]):
    try:
        cli(["--config", sys.argv[1], *args], standalone_mode=False)
    except SystemExit as stop:
        assert not stop.code, (args, stop.code)
print(sorted(name for name in ("psycopg", "psycopg_binary") if name in sys.modules))
"""


def test_a_sqlite_site_never_imports_the_postgresql_driver(tmp_path):
    site_dir = shutil.copytree(SITES / "basic", tmp_path / "basic")
    result = subprocess.run(
        [sys.executable, "-c", DRIVERS_IMPORTED, str(site_dir / "publisher.toml")],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    assert (site_dir / "feeds" / "feed.json").exists()
