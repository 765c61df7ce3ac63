"""cli.state: `publisher state migrate --to URL`, as an operator moving a site runs it.

Its report, table by table; what the site does on PostgreSQL afterwards (the
same as it would have done on SQLite, command for command and byte for byte);
the secret the site signed its links with staying the one every machine must
sign with; and each bad input, one line and nothing written.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.cli import invoke
from support.clock import NOW, Clock
from support.full_state import (
    RUNTIME_TABLES,
    TABLES,
    make_full_site,
    use_smtp_port,
)
from support.paths import SITES
from support.service import append_config
from support.smtp_server import SmtpServer, free_port

from publisher import tokens
from publisher.config import load_config
from publisher.service.lock import site_lock
from publisher.store import open_store, settings

# Every test here needs the server: where none can run, the fixture skips them all.
pytestmark = pytest.mark.usefixtures("postgres_server")

NEXT = "next: set [state] url (or PUBLISHER_DATABASE_URL) to this database on every machine, and {}"
DIFFERS = (
    "error: PUBLISHER_SECRET: differs from the secret the other machines sharing this state "
    "sign links with; set PUBLISHER_SECRET to the same value on every machine, or copy the "
    "same secret file to each\n"
)
REMOVED_HAL = (
    "error: EMAIL: hal@example.org asked not to receive the digest; skipped "
    "(only a sign-up they confirm themselves lifts this)\n"
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The command line's clock, a day after the full site was made; the secret from its file."""
    moment = Clock(NOW + timedelta(days=1))
    monkeypatch.setattr("publisher.cli._common.now", moment)
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)
    return moment


def _migrate(runner, folder: Path, url: str):
    return invoke(runner, folder, "state", "migrate", "--to", url)


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _server_tables(postgres_server, url: str) -> list[tuple[str, int]]:
    """Each table of the database at *url* with its number of rows (all of it, whoever's)."""
    database = _database(url)
    names = postgres_server.admin(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database
    )
    return [
        (str(name), int(postgres_server.admin(f"SELECT COUNT(*) FROM {name}", database)[0][0]))
        for (name,) in names
    ]


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# -- the report --------------------------------------------------------------------------


@pytest.mark.usefixtures("no_env_secret")
def test_migrate_reports_each_table_it_copied_then_the_totals(full_site, target, runner):
    counts = _counts(full_site.site.state_db)
    order = ["articles", "bounce_events", "digests", "feed_entries", "files", "outputs"]
    order += ["pages", "settings", "signup_requests", "signups", "subscriber_events"]
    order += ["subscribers", "suppressions", "webhook_nonces", "websub_pings"]
    order += ["deliveries", "digest_articles"]

    result = _migrate(runner, full_site.folder, target)

    assert (result.exit_code, result.stderr) == (0, "")
    lines = [f"{t}: {counts[t]} row{'' if counts[t] == 1 else 's'}" for t in order]
    total = sum(counts[t] for t in order)
    assert result.stdout.splitlines() == [
        *lines,
        f"copied {len(order)} tables ({total} rows) from .publisher/state.db; the counts match",
        NEXT.format("copy .publisher/secret to the same place on each (mode 0600)"),
    ]
    assert "digests: 1 row" in lines  # one row: no "s"
    assert set(order) == set(TABLES) - set(RUNTIME_TABLES)
    with open_store(target) as store:
        for table in order:
            found = store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            # And the copy's own setting: the fingerprint of the secret the site signs with.
            assert found == counts[table] + (table == "settings"), table
        secret = tokens.load_secret(full_site.site.state_dir, create=False)
        assert store.get_setting(settings.SECRET_FINGERPRINT) == tokens.fingerprint(secret)
    # Once filled, the database is refused as any other that is not empty.
    again = _migrate(runner, full_site.folder, target)
    assert again.exit_code == 1
    assert again.stderr.startswith(f"error: state: {target} is not empty (it holds articles, ")


@pytest.mark.parametrize(
    ("secret", "how"),
    [
        ("a-secret-in-the-environment", "PUBLISHER_SECRET to the value it has here"),
        (None, "PUBLISHER_SECRET to one value on all of them"),
    ],
    ids=["environment", "none-yet"],
)
def test_migrate_says_how_to_carry_the_secret_it_signs_with(
    tmp_path, target, runner, monkeypatch, secret, how
):
    # A site that built once and has no subscriber has made no secret of its own.
    folder = shutil.copytree(SITES / "basic", tmp_path / "basic")
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)
    assert invoke(runner, folder, "build").exit_code == 0
    if secret is not None:
        monkeypatch.setenv("PUBLISHER_SECRET", secret)
    result = _migrate(runner, folder, target)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == NEXT.format(how)
    assert not (folder / ".publisher" / "secret").exists()
    with open_store(target) as store:
        recorded = store.get_setting(settings.SECRET_FINGERPRINT)
    assert recorded == (None if secret is None else tokens.fingerprint(secret.encode()))


# -- the site afterwards -------------------------------------------------------------------

NEW_ARTICLE = """---
title: "Talks resume in Geneva"
date: "2026-11-28T09:00:00+01:00"
tags: [europe]
---

The delegations met again on Friday.
"""
NEW_ARTICLE_MTIME = 1_795_000_000_000_000_000  # ns, 2026-11-18: long before any scan here


def _what_the_site_does_next(runner, site_dir: Path, clock: Clock, server: SmtpServer):
    """A day's work after the move: build, edit, subscribe, send; everything it shows and keeps."""
    site = load_config(site_dir / "publisher.toml")
    seen: dict[str, Any] = {}
    received = len(server.received)

    def run(name: str, *args: str) -> None:
        result = invoke(runner, site_dir, *args)
        seen[name] = (result.exit_code, result.stdout, result.stderr)
        clock.now += timedelta(minutes=1)

    run("build with nothing new", "build")
    article = site.content_dir / "2026-11-28-geneva.md"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    os.utime(article, ns=(NEW_ARTICLE_MTIME, NEW_ARTICLE_MTIME))
    run("build", "build")
    run("add a removed address", "subscribers", "add", "hal@example.org")
    run("add", "subscribers", "add", "kai@example.org")
    run("send", "digest", "send")
    run("send again", "digest", "send")
    run("status", "digest", "status")
    run("failures", "digest", "failures")
    seen["mail"] = [(r.recipients, r.data) for r in server.received[received:]]
    seen["output"] = _folder_files(site.output_dir)
    seen["pages"] = _folder_files(site.site_dir)
    with open_store(site.state) as store:
        seen["rows"] = {table: _comparable_rows(store, table) for table in TABLES}
    return seen


def _comparable_rows(store, table: str) -> list[dict[str, object]]:
    """The rows of *table* without what the wall clock decides (the runs are a minute apart).

    The clock of the commands is the test's; the wall clock still gives the
    files written their mtimes (outputs.mtime_ns, pages.mtime_ns), a scan its start (the
    `indexed_at_ns` setting) and a sender its id (deliveries.worker).
    """
    rows = [dict(zip(_names(store, table), row, strict=True)) for row in _select_all(store, table)]
    if table == "settings":  # the shared state's own: which secret its machines sign with
        rows = [row for row in rows if row["key"] != "secret_fingerprint"]
    for row in rows:
        if table in ("outputs", "pages"):
            row.pop("mtime_ns")
        if table == "deliveries":
            row.pop("worker")
        if table == "settings" and row["key"] == "indexed_at_ns":
            row["value"] = "(wall clock)"
    return sorted(rows, key=lambda row: repr(tuple(row.items())))


def _names(store, table: str) -> list[str]:
    cursor = store.conn.execute(f"SELECT * FROM {table} WHERE 1 = 0")
    return [column[0] for column in cursor.description]


def _select_all(store, table: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in store.conn.execute(f"SELECT * FROM {table}").fetchall()]


def test_after_migrate_the_site_does_on_postgresql_what_it_would_have_done_on_sqlite(
    tmp_path, target, runner, clock
):
    folder = tmp_path / "site"
    make_full_site(folder)
    snapshot = shutil.copytree(folder, tmp_path / "snapshot")  # mtimes kept
    assert _migrate(runner, folder, target).exit_code == 0
    append_config(folder, f'\n[state]\nurl = "{target}"\n')
    start = clock.now
    with SmtpServer() as server:
        use_smtp_port(folder, server.port)
        on_postgresql = _what_the_site_does_next(runner, folder, clock, server)

    # The same day again, from the same folder as it was, on SQLite.
    shutil.rmtree(folder)
    shutil.copytree(snapshot, folder)
    clock.now = start
    with SmtpServer() as server:  # a server of its own: its replies count from 1 again
        use_smtp_port(folder, server.port)
        on_sqlite = _what_the_site_does_next(runner, folder, clock, server)

    for key in on_sqlite:
        assert on_postgresql[key] == on_sqlite[key], key
    assert on_postgresql.keys() == on_sqlite.keys()
    # And what it did: a build with nothing new wrote nothing; the pending message of digest
    # 1 went out, its uncertain one did not; digest 2 holds the new article alone; new ids
    # follow the copied ones; the suppression list still knows the removed address.
    done = on_postgresql
    assert done["build with nothing new"][:2] == (0, _BUILT.format(5, 3, 0, 18, 0, 19))
    assert done["build"][:2] == (0, _BUILT.format(6, 4, 6, 12, 8, 13))
    assert done["add a removed address"] == (1, "", REMOVED_HAL)
    assert done["add"] == (0, "added kai@example.org\n", "")
    assert done["send"][:2] == (
        0,
        "resumed digest 1\nmade digest 2 with 1 article\nsent 7, failed 0, deferred 0, "
        "uncertain 1\n",
    )
    assert _sent(done["mail"]) == [
        (1, 4, "di@example.org"),
        *((2, n, f"{name}@example.org") for n, name in _ACTIVE),
    ]
    rows = done["rows"]
    (geneva,) = [r for r in rows["articles"] if str(r["path"]).endswith("geneva.md")]
    assert geneva["published_seq"] == 4
    assert [r["article_id"] for r in rows["digest_articles"] if r["digest_id"] == 2] == [
        geneva["id"]
    ]
    assert [r["id"] for r in rows["subscribers"] if r["email"] == "kai@example.org"] == [9]


_BUILT = (
    "{} articles loaded ({} published, 1 draft, 1 scheduled), 0 skipped with errors, "
    "{} files written, {} unchanged; {} pages written, {} unchanged\n"
)
_ACTIVE = [(1, "ada"), (3, "cy"), (4, "di"), (6, "fay"), (8, "jo"), (9, "kai")]


def _sent(mail: list[tuple[list[str], bytes]]) -> list[tuple[int, int, str]]:
    """(digest, subscriber id, recipient) of each message, from its Message-ID."""
    sent = []
    for (recipient,), data in mail:
        message = email.message_from_bytes(data, policy=email.policy.default)
        match = re.fullmatch(r"<digest-(\d+)\.(\d+)\.\w+@gazette\.example>", message["Message-ID"])
        assert match is not None, message["Message-ID"]
        sent.append((int(match.group(1)), int(match.group(2)), recipient))
    return sent


# -- the secret ------------------------------------------------------------------------------


def test_after_migrate_a_machine_signing_with_another_secret_stops(
    full_site, target, runner, monkeypatch, tmp_path
):
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)
    assert _migrate(runner, full_site.folder, target).exit_code == 0
    # Another machine: the config and the content, no state folder of its own yet.
    machine = tmp_path / "machine"
    machine.mkdir()
    config = (full_site.folder / "publisher.toml").read_text(encoding="utf-8")
    (machine / "publisher.toml").write_text(config + f'\n[state]\nurl = "{target}"\n', "utf-8")
    shutil.copytree(full_site.folder / "content", machine / "content")
    secret_file = full_site.folder / ".publisher" / "secret"

    # A secret made up for it, or the file's text as PUBLISHER_SECRET (another secret: the
    # file holds the bytes in hex): refused before anything, though no machine has used
    # the database yet. Every link sent so far was signed with the SQLite site's secret,
    # and its suppression list is keyed with it (hal would have been subscribed again).
    for made_up in ("a-new-secret-of-enough-length", secret_file.read_text("ascii").strip()):
        monkeypatch.setenv("PUBLISHER_SECRET", made_up)
        for args in (["subscribers", "add", "hal@example.org"], ["digest", "send"]):
            result = invoke(runner, machine, *args)
            assert (result.exit_code, result.stdout, result.stderr) == (1, "", DIFFERS), args
    with open_store(target) as store:
        assert store.find_subscriber("hal@example.org") is None
        assert store.latest_digest().id == 1
    assert not (machine / ".publisher").exists()

    # The site's secret file, copied as the report says: the removed address is still
    # refused, a new one goes in.
    monkeypatch.delenv("PUBLISHER_SECRET")
    (machine / ".publisher").mkdir(mode=0o700)
    shutil.copy2(secret_file, machine / ".publisher" / "secret")
    refused = invoke(runner, machine, "subscribers", "add", "hal@example.org")
    assert (refused.exit_code, refused.stderr) == (1, REMOVED_HAL)
    added = invoke(runner, machine, "subscribers", "add", "kai@example.org")
    assert (added.exit_code, added.stdout) == (0, "added kai@example.org\n")


# -- bad input -------------------------------------------------------------------------------


def _another_application(postgres_server) -> str:
    name = postgres_server.create_database(empty=True)
    postgres_server.admin("CREATE TABLE users (id serial PRIMARY KEY, name text)", name)
    postgres_server.admin("INSERT INTO users (name) VALUES ('ada')", name)
    postgres_server.admin("CREATE TABLE orders (id serial PRIMARY KEY)", name)
    return name


def _publisher_state(postgres_server) -> str:
    return postgres_server.create_database()  # migrated: another site's state, say


PASSWORD_URL = "postgresql://publisher:hunter2@127.0.0.1:5432/meridian"
NOT_POSTGRES = "mysql://root@127.0.0.1/meridian"


@pytest.mark.parametrize(
    ("database", "code", "message"),
    [
        (
            _publisher_state,
            1,
            "error: state: {url} is not empty (it holds articles, bounce_events, deliveries, "
            "digest_articles, digests, …); state migrate copies only into an empty database\n",
        ),
        (
            _another_application,
            1,
            "error: state: {url} is not empty (it holds orders, users); state migrate copies "
            "only into an empty database\n",
        ),
    ],
    ids=["publisher-state", "another-application"],
)
def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(
    full_site, runner, postgres_server, database, code, message
):
    name = database(postgres_server)
    url = postgres_server.url(name)
    before = _server_tables(postgres_server, url), _folder_files(full_site.folder)
    try:
        result = _migrate(runner, full_site.folder, url)
        assert (result.exit_code, result.stdout) == (code, "")
        assert result.stderr == message.format(url=url)
        assert (_server_tables(postgres_server, url), _folder_files(full_site.folder)) == before
    finally:
        postgres_server.drop_database(name)


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        (
            PASSWORD_URL,
            2,
            "error: --to: must not hold a password: put it in PGPASSWORD or a libpq service file "
            "(~/.pg_service.conf and PGSERVICE), where the config file cannot leak it\n",
        ),
        (
            NOT_POSTGRES,
            2,
            "error: --to: expected a PostgreSQL URL such as "
            f"'postgresql://publisher@db.example:5432/meridian' ('{NOT_POSTGRES}')\n",
        ),
        (
            ".publisher/copy.db",
            2,
            "error: --to: expected a PostgreSQL URL such as "
            "'postgresql://publisher@db.example:5432/meridian' ('.publisher/copy.db')\n",
        ),
        (
            "postgresql://publisher@127.0.0.1:5432",
            2,
            "error: --to: names no database: add it after the host, as in '…:5432/meridian' "
            "('postgresql://publisher@127.0.0.1:5432')\n",
        ),
    ],
    ids=["password", "not-postgresql", "file", "no-database"],
)
def test_a_url_that_is_not_a_usable_postgresql_url_is_refused(
    full_site, runner, url, code, message
):
    before = _folder_files(full_site.folder)
    result = _migrate(runner, full_site.folder, url)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", message)
    assert "hunter2" not in result.output
    assert _folder_files(full_site.folder) == before
    assert not (full_site.folder / ".publisher" / "copy.db").exists()


def test_an_unreachable_server(full_site, runner):
    url = f"postgresql://publisher@127.0.0.1:{free_port()}/meridian"  # nothing listens there
    before = _folder_files(full_site.folder)
    result = _migrate(runner, full_site.folder, url)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"error: state: cannot connect to {url} (")
    assert result.stderr.count("\n") == 1
    assert _folder_files(full_site.folder) == before


def test_a_site_without_a_sqlite_state_yet_has_nothing_to_copy(tmp_path, runner, target):
    folder = shutil.copytree(SITES / "basic", tmp_path / "basic")
    result = _migrate(runner, folder, target)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: .publisher/state.db: no SQLite state here to copy\n"
    assert not (folder / ".publisher").exists()  # no state folder, no lock file: nothing
    assert _folder_files(folder) == _folder_files(SITES / "basic")


def test_a_site_another_run_holds_is_not_copied(full_site, target, runner, postgres_server, now):
    site = full_site.site
    with site_lock(site.state_dir, command="build", now=now, display=".publisher/lock"):
        result = _migrate(runner, full_site.folder, target)
    assert (result.exit_code, result.stdout) == (75, "")
    assert result.stderr == (
        f"error: .publisher/lock: another publisher run holds the lock (pid {os.getpid()}, "
        "`publisher build`, since 2026-11-27 12:00:00 UTC); try again later\n"
    )
    assert _server_tables(postgres_server, target) == []


def test_migrate_without_a_target_is_a_usage_error(full_site, runner):
    result = invoke(runner, full_site.folder, "state", "migrate")
    assert (result.exit_code, result.stdout) == (2, "")
    assert "Missing option '--to'" in result.stderr
