"""store.postgres: the server backend, and each way a server or a database can be wrong.

Every case is one `StoreError` line that names "state" (never a password),
raised before anything is written.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.postgres import LOCKED_PASSWORD, LOCKED_ROLE
from support.processes import ENV
from support.smtp_server import free_port

from publisher.errors import MigrationError, StoreError
from publisher.store import SCHEMA_VERSION, open_store
from publisher.store.postgres import SCHEMA_TABLE, display_url


def _tables(server, database: str) -> list[str]:
    rows = server.admin(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database
    )
    return [str(row[0]) for row in rows]


@pytest.fixture
def empty(postgres_server):
    name = postgres_server.create_database(empty=True)
    yield name
    postgres_server.drop_database(name)


def test_a_new_database_is_migrated_to_the_current_schema(postgres_server, empty):
    with open_store(postgres_server.url(empty)) as store:
        assert store.conn.backend == "postgresql"
        assert store.conn.schema_version() == SCHEMA_VERSION
    assert {"articles", "subscribers", "deliveries", SCHEMA_TABLE} <= set(
        _tables(postgres_server, empty)
    )
    with open_store(postgres_server.url(empty)) as again:  # opening again changes nothing
        assert again.conn.schema_version() == SCHEMA_VERSION


def test_identity_ids_and_64_bit_integers(postgres_server, empty):
    with open_store(postgres_server.url(empty)) as store:
        rows = store.conn.execute(
            "SELECT column_name, data_type, is_identity FROM information_schema.columns "
            "WHERE table_name = 'subscribers' AND column_name = 'id'"
        ).fetchall()
    assert [tuple(row) for row in rows] == [("id", "bigint", "YES")]


def test_an_unreachable_server():
    port = free_port()  # nothing listens there
    url = f"postgresql://publisher@127.0.0.1:{port}/meridian"
    with pytest.raises(StoreError) as raised:
        open_store(url)
    error = raised.value
    assert error.where == "state"
    assert error.message.startswith(f"cannot connect to {url} (")
    assert "\n" not in error.message


def test_a_missing_database(postgres_server):
    url = postgres_server.url("no_such_database")
    with pytest.raises(StoreError) as raised:
        open_store(url)
    assert raised.value.message.startswith(f"cannot connect to {url} (")
    assert 'database "no_such_database" does not exist' in raised.value.message


def test_wrong_credentials_name_the_server_never_the_password(postgres_server, monkeypatch, empty):
    monkeypatch.setenv("PGPASSWORD", "wrong-password")
    url = postgres_server.url(empty, user=LOCKED_ROLE)
    with pytest.raises(StoreError) as raised:
        open_store(url)
    assert raised.value.message.startswith(f"cannot connect to {url} (")
    assert "password authentication failed" in raised.value.message
    assert "wrong-password" not in str(raised.value)
    assert _tables(postgres_server, empty) == []

    monkeypatch.setenv("PGPASSWORD", LOCKED_PASSWORD)
    postgres_server.admin(f"GRANT ALL ON SCHEMA public TO {LOCKED_ROLE}", empty)
    with open_store(url) as store:  # the right password, from the environment alone
        assert store.conn.schema_version() == SCHEMA_VERSION


def test_a_password_that_slipped_into_a_url_is_never_shown():
    assert display_url("postgresql://p:hunter2@db.example/m") == "postgresql://p:…@db.example/m"
    assert display_url("postgresql://p@db.example/m") == "postgresql://p@db.example/m"


def test_a_database_of_another_application_is_refused_and_left_alone(postgres_server, empty):
    postgres_server.admin("CREATE TABLE users (id serial PRIMARY KEY, name text)", empty)
    postgres_server.admin("CREATE TABLE orders (id serial PRIMARY KEY)", empty)
    with pytest.raises(StoreError) as raised:
        open_store(postgres_server.url(empty))
    assert (raised.value.where, raised.value.message) == (
        "state",
        "holds tables that are not publisher's (orders, users); "
        "give publisher a database of its own",
    )
    assert _tables(postgres_server, empty) == ["orders", "users"]


def test_a_schema_newer_than_the_code(postgres_server, empty):
    url = postgres_server.url(empty)
    with open_store(url):
        pass
    postgres_server.admin(f"UPDATE {SCHEMA_TABLE} SET version = {SCHEMA_VERSION + 1}", empty)
    with pytest.raises(MigrationError) as raised:
        open_store(url)
    assert raised.value.message == (
        f"schema version {SCHEMA_VERSION + 1} is newer than this publisher understands "
        f"({SCHEMA_VERSION}); upgrade publisher"
    )


def test_two_processes_opening_a_new_database_at_once_migrate_it_once(postgres_server, empty):
    url = postgres_server.url(empty)
    script = f"from publisher.store import open_store\nopen_store({url!r}).close()\n"
    processes = [
        subprocess.Popen([sys.executable, "-c", script], env=ENV, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    rows = postgres_server.admin(f"SELECT version FROM {SCHEMA_TABLE}", empty)
    assert rows == [(SCHEMA_VERSION,)]


def test_a_connection_killed_mid_transaction_rolls_back_and_says_so(postgres_server, empty):
    store = open_store(postgres_server.url(empty))
    database = empty
    with store.transaction():
        store.conn.execute("INSERT INTO settings (key, value) VALUES ('before', '1')")

    def across_a_drop() -> None:
        with store.transaction():
            store.conn.execute("INSERT INTO settings (key, value) VALUES ('during', '1')")
            assert postgres_server.terminate(database) == 1
            store.conn.execute("INSERT INTO settings (key, value) VALUES ('after', '1')")

    with pytest.raises(StoreError) as raised:
        across_a_drop()
    assert raised.value.where == "state"
    assert raised.value.message.startswith("the connection to the database was lost (")
    assert "\n" not in raised.value.message
    store.close()
    keys = postgres_server.admin("SELECT key FROM settings ORDER BY key", database)
    assert ("before",) in keys
    assert ("during",) not in keys
