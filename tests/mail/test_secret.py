"""mail.secret: the one secret every machine sharing a state signs links with.

On PostgreSQL no secret is ever made: a machine without one stops, and one
whose secret differs from the state's fingerprint stops before it signs or
sends anything, whichever command it runs (`subscribers add`, `digest send`,
a sign-up on `serve`). On SQLite nothing changed: the secret is made once
in the state folder, 0600, and no fingerprint is kept.
"""

from __future__ import annotations

import logging
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support.cli import invoke
from support.clock import NOW, Clock
from support.mailing import add_subscribers
from support.paths import SITES
from support.postgres import append_state_url
from support.web import FORM, ONE_CLICK, query_rows, sign_up, unsubscribe_path, visible_text
from support.web_server import WebServer

from publisher import tokens
from publisher.config import SiteConfig, load_config
from publisher.errors import SubscriberError
from publisher.mail.secret import site_secret
from publisher.store import open_store, settings

SECRET = "5e" * 32  # the file's text: 32 bytes in hex
OTHER = "6f" * 32
DIFFERS = (
    "differs from the secret the other machines sharing this state sign links with; set "
    "PUBLISHER_SECRET to the same value on every machine, or copy the same secret file to each"
)


def _missing(path: Path) -> str:
    return (
        f"not set, and there is no secret file at {path}: machines sharing a PostgreSQL state "
        "must sign links with one secret; set PUBLISHER_SECRET to the same value on each, or "
        "copy the same secret file to each (after `publisher state migrate`, the SQLite site's)"
    )


@pytest.fixture
def database(postgres_server) -> Iterator[str]:
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def machine(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., SiteConfig]:
    """A machine's folder on the shared database: its secret file, or none (`secret=None`)."""
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)  # the files' secrets, nothing else

    def make(name: str, secret: str | None = SECRET) -> SiteConfig:
        folder = shutil.copytree(SITES / "basic", tmp_path / name)
        append_state_url(folder, database, secret=secret or SECRET)
        if secret is None:
            shutil.rmtree(folder / ".publisher")
        return load_config(folder / "publisher.toml")

    return make


def _fingerprint(site: SiteConfig) -> str | None:
    with open_store(site.state) as store:
        return store.get_setting(settings.SECRET_FINGERPRINT)


# -- PostgreSQL ---------------------------------------------------------------------------


def test_on_postgresql_the_secret_comes_from_the_environment_and_no_file_is_made(
    machine, monkeypatch
):
    site = machine("a", secret=None)
    monkeypatch.setenv("PUBLISHER_SECRET", "a-test-secret-of-enough-length")
    with open_store(site.state) as store:
        assert site_secret(site, store) == b"a-test-secret-of-enough-length"
    assert not site.state_dir.exists()
    assert _fingerprint(site) == tokens.fingerprint(b"a-test-secret-of-enough-length")


def test_on_postgresql_a_machine_without_a_secret_stops_and_makes_none(machine, runner):
    site = machine("a", secret=None)
    with open_store(site.state) as store, pytest.raises(SubscriberError) as raised:
        site_secret(site, store)
    assert (raised.value.where, raised.value.message) == (
        "PUBLISHER_SECRET",
        _missing(site.state_dir / "secret"),
    )
    for args in (["subscribers", "add", "ada@example.org"], ["digest", "send"]):
        result = invoke(runner, site.root, *args)
        expected = f"error: PUBLISHER_SECRET: {_missing(site.state_dir / 'secret')}\n"
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", expected), args
    assert not site.state_dir.exists()  # no secret made, nor its folder
    assert _fingerprint(site) is None
    assert query_rows(site, "SELECT * FROM subscribers") == []


def test_machines_with_one_secret_share_links_and_one_with_another_stops(machine, runner):
    a, b, c = machine("a"), machine("b"), machine("c", secret=OTHER)
    added = invoke(runner, a.root, "subscribers", "add", "ada@example.org")
    assert (added.exit_code, added.stdout) == (0, "added ada@example.org\n")
    assert _fingerprint(a) == tokens.fingerprint(bytes.fromhex(SECRET))
    # B signs with the same secret: its links are A's, and the other way round.
    assert invoke(runner, b.root, "subscribers", "add", "bo@example.org").exit_code == 0
    sent = invoke(runner, b.root, "digest", "send")
    assert sent.stdout.endswith("sent 2, failed 0, deferred 0, uncertain 0\n"), sent.output
    with open_store(a.state) as store:
        ada = store.find_subscriber("ada@example.org")
    token = tokens.make_token(bytes.fromhex(SECRET), ada.id, ada.email)
    left = invoke(runner, a.root, "unsubscribe", token)
    assert (left.exit_code, left.stdout) == (0, "unsubscribed ada@example.org\n")

    # C signs with another: every command that would sign or key anything stops first.
    before = query_rows(c, "SELECT * FROM subscribers ORDER BY id")
    for args in (
        ["subscribers", "add", "cy@example.org"],
        ["subscribers", "remove", "bo@example.org"],
        ["unsubscribe", tokens.make_token(bytes.fromhex(OTHER), ada.id, ada.email)],
        ["digest", "send"],
    ):
        result = invoke(runner, c.root, *args)
        assert (result.exit_code, result.stdout) == (1, ""), args
        assert result.stderr == f"error: PUBLISHER_SECRET: {DIFFERS}\n", args
    assert query_rows(c, "SELECT * FROM subscribers ORDER BY id") == before
    assert query_rows(c, "SELECT id FROM digests") == [(1,)]
    assert not c.delivery.outbox_dir.exists()
    assert _fingerprint(c) == tokens.fingerprint(bytes.fromhex(SECRET))  # still A's and B's


def test_a_replica_with_another_secret_refuses_sign_ups_and_unsubscribes_and_logs_why(
    machine, caplog
):
    b = machine("b")
    with open_store(b.state) as store:  # B's secret is the state's from now on
        site_secret(b, store)
    add_subscribers(b, ["bo@example.org"], NOW)  # not the CLI: it would take the log's handlers
    with open_store(b.state) as store:
        bo = store.find_subscriber("bo@example.org")
    c = machine("c", secret=OTHER)
    token = tokens.make_token(bytes.fromhex(SECRET), bo.id, bo.email)
    leave = f"{unsubscribe_path(c)}?token={token}"
    caplog.set_level(logging.INFO, logger="publisher.web")
    with (
        WebServer(c, now=Clock(NOW)) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        answers = [
            sign_up(client, c, "ada@example.org"),
            client.get(leave),
            client.post(leave, content=ONE_CLICK, headers={"Content-Type": FORM}),
        ]
    # Not the visitor's fault, and not a link that is wrong: the service is unavailable.
    for answer in answers:
        assert answer.status_code == 503, visible_text(answer.text)
        assert "Please try again later" in answer.text
        assert answer.headers["retry-after"] == "60"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"PUBLISHER_SECRET: {DIFFERS}"] * 3
    assert all(r.exc_info is None for r in errors)  # one line each, no traceback
    assert query_rows(c, "SELECT * FROM signups") == []
    assert query_rows(c, "SELECT * FROM signup_requests") == []
    assert query_rows(c, "SELECT email, status FROM subscribers") == [("bo@example.org", "active")]
    assert not c.delivery.outbox_dir.exists()  # no confirmation went out


# -- SQLite, as before -----------------------------------------------------------------------


@pytest.mark.usefixtures("no_env_secret")
def test_on_sqlite_the_secret_is_made_once_0600_and_no_fingerprint_is_kept(tmp_path, runner):
    folder = shutil.copytree(SITES / "basic", tmp_path / "basic")
    site = load_config(folder / "publisher.toml")
    assert invoke(runner, folder, "subscribers", "add", "ada@example.org").exit_code == 0
    path = site.state_dir / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(site.state_dir.stat().st_mode) == 0o700
    made = path.read_bytes()
    assert invoke(runner, folder, "subscribers", "add", "bo@example.org").exit_code == 0
    with open_store(site.state) as store:
        assert site_secret(site, store) == bytes.fromhex(made.decode().strip())
        assert store.get_setting(settings.SECRET_FINGERPRINT) is None
    assert path.read_bytes() == made


def test_on_sqlite_the_environment_wins_and_no_file_is_made(tmp_path, monkeypatch):
    folder = shutil.copytree(SITES / "basic", tmp_path / "basic")
    site = load_config(folder / "publisher.toml")
    monkeypatch.setenv("PUBLISHER_SECRET", "a-test-secret-of-enough-length")
    with open_store(site.state) as store:
        assert site_secret(site, store) == b"a-test-secret-of-enough-length"
        assert store.get_setting(settings.SECRET_FINGERPRINT) is None
    assert not (site.state_dir / "secret").exists()
