"""A SQLite site whose state holds every kind of row, made by the commands an operator runs.

For `publisher state migrate`: a copy is only proved by a state with something in
every table and every column that can be set, in every status a row can have. The
commands make it (build, subscribers add/import/remove, digest send to an SMTP
server with faults, unsubscribe, sign-up and confirmation over HTTP); the one thing
no command makes yet (a complaint's suppression entry) is a store call.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from publisher import tokens
from publisher.config import SiteConfig, load_config
from publisher.store import open_store
from support.bounces import corpus_message, make_maildir
from support.cli import invoke
from support.clock import NOW, Clock
from support.mailing import smtp_site, token_of
from support.paths import SITES
from support.service import append_config
from support.smtp_server import Faults, SmtpServer, free_port
from support.web import confirmation_link, press, sign_up
from support.web_server import WebServer

# Subscribed by `subscribers add`, ids 1-6 in this order; gus (7, unsubscribed) and hal
# (removed) come from the import, jo (8, hal's id again) from a confirmed sign-up.
SUBSCRIBED = [f"{name}@example.org" for name in ("ada", "bo", "cy", "di", "eve", "fay")]
IMPORTED = (
    "email,name,status\ngus@example.org,Gus,unsubscribed\nhal@example.org,,active\n"
    "ADA@example.org,,\n"  # already present: left as it is
)
# Every table of the state, and the ones of them that say who runs now (not copied).
TABLES = (
    "articles",
    "bounce_events",
    "deliveries",
    "digest_articles",
    "digests",
    "feed_entries",
    "files",
    "outputs",
    "pages",
    "senders",
    "settings",
    "signup_requests",
    "signups",
    "site_locks",
    "subscriber_events",
    "subscribers",
    "suppressions",
    "webhook_nonces",
    "websub_pings",
)
RUNTIME_TABLES = ("senders", "site_locks")


@dataclass(frozen=True)
class FullSite:
    folder: Path
    site: SiteConfig


def faults() -> Faults:
    """Digest 1, one DATA command a message in id order: ada's is the 1st; bo is refused
    at RCPT (550: failed, then bounced); cy's, the 2nd, is stored but its reply never
    comes (uncertain); di's are answered 451 at each of its 3 attempts (3rd to 5th: left
    pending); eve's and fay's arrive."""
    return Faults(
        reject_recipients={"bo@example.org": "550 5.1.1 <bo@example.org>: no such user"},
        drop_after_store_at={2},
        temporary_from=3,
        temporary_until=5,
    )


def make_full_site(folder: Path) -> FullSite:
    """tests/sites/basic copied to *folder* and taken through every state a row can be in.

    On its own clock (from NOW, a minute a step) and SMTP server (with FAULTS),
    with the secret in the state folder (`.publisher/secret`, made by the first
    command that needs it), as a site that never set PUBLISHER_SECRET has it.
    Its [delivery.smtp] port is the stopped server's: `use_smtp_port` moves it.
    """
    runner = CliRunner()
    clock = Clock(NOW)
    with (
        pytest.MonkeyPatch.context() as patch,
        SmtpServer(faults()) as server,
    ):
        patch.delenv(tokens.SECRET_ENV, raising=False)
        patch.setattr("publisher.cli._common.now", clock)
        site = _every_step(folder, runner, clock, server)
    return FullSite(folder, site)


def copy_full_site(full: FullSite, folder: Path) -> FullSite:
    """A copy of *full* at *folder*, its files' times kept (the manifest still matches them)."""
    shutil.copytree(full.folder, folder)
    return FullSite(folder, load_config(folder / "publisher.toml"))


def use_smtp_port(folder: Path, port: int) -> None:
    """Point the site's [delivery.smtp] at another server (the config only: nothing else moves)."""
    config = folder / "publisher.toml"
    text, count = re.subn(r"(?m)^port = \d+$", f"port = {port}", config.read_text("utf-8"))
    assert count == 1
    config.write_text(text, encoding="utf-8")


def _every_step(folder: Path, runner: CliRunner, clock: Clock, server: SmtpServer) -> SiteConfig:
    shutil.copytree(SITES / "basic", folder)
    smtp_site(folder, server.port)
    # Nothing listens at the hub: each ping fails, and its row stays for the next run.
    append_config(folder, f'\n[feeds]\nwebsub_hub = "http://127.0.0.1:{free_port()}/hub"\n')
    site = load_config(folder / "publisher.toml")

    def run(*args: str) -> str:
        result = invoke(runner, folder, *args)
        assert result.exit_code == 0, result.output
        clock.now += timedelta(minutes=1)
        return str(result.stdout)

    # Articles (published, a draft, one scheduled), the manifest, the outputs, failed pings.
    run("build")
    for address in SUBSCRIBED:
        run("subscribers", "add", address, *(["--name", "Ada L"] if address[0] == "a" else []))
    (folder / "people.csv").write_text(IMPORTED, encoding="utf-8")
    imported = run("subscribers", "import", str(folder / "people.csv"))
    assert imported.startswith("imported 1 subscriber: 1 already present, 1 unsubscribed")
    run("subscribers", "remove", "hal@example.org")  # a suppression entry, "removed"
    sent = run("digest", "send")  # digest 1, left unfinished
    assert sent.splitlines()[-1] == "sent 3, failed 1, deferred 1, uncertain 1"
    eve = next(r.message for r in server.received if r.recipients == ["eve@example.org"])
    run("unsubscribe", token_of(eve))
    _sign_ups(site, clock, server)
    secret = tokens.load_secret(site.state_dir, create=False)
    # A soft bounce for ada's digest (a bounce event, her history, the ledger's bounce column).
    soft = corpus_message("gmail-soft.eml", secret).replace(
        tokens.bounce_token(secret, 1, 3).encode(), tokens.bounce_token(secret, 1, 1).encode()
    )
    maildir = make_maildir(folder / "Maildir", {"soft": soft})
    assert "soft bounce (ada@example.org)" in run("bounces", "process", str(maildir))
    # A complaint about an address no longer subscribed: the entry intake leaves for it,
    # and a webhook's nonce, as a signed request leaves it.
    with open_store(site.state_db) as store, store.transaction():
        key = tokens.suppression_key(secret, "kim@example.org")
        store.insert_suppression(key, "complained", now=clock())
        store.claim_nonce("mailgun 0f1e2d3c4b5a", now=clock(), forget_before=clock())
    return site


def _sign_ups(site: SiteConfig, clock: Clock, server: SmtpServer) -> None:
    """ivy signs up and never confirms; jo signs up and confirms (mailed through SMTP)."""
    with (
        WebServer(site, now=clock) as web,
        httpx.Client(base_url=web.origin, timeout=10) as client,
    ):
        for address in ("ivy@example.org", "jo@example.org"):
            assert sign_up(client, site, address).status_code == 200
        clock.now += timedelta(minutes=1)
        (jo,) = [r.message for r in server.received if r.recipients == ["jo@example.org"]]
        assert press(client, confirmation_link(jo)).status_code == 200
    clock.now += timedelta(minutes=1)


# Fixtures of the tests of `state migrate` (registered in tests/conftest.py).


@pytest.fixture(scope="module")
def full_template(tmp_path_factory: pytest.TempPathFactory) -> FullSite:
    """Made once a module (it runs a dozen commands); each test copies it."""
    return make_full_site(tmp_path_factory.mktemp("full") / "site")


@pytest.fixture
def full_site(full_template: FullSite, tmp_path: Path) -> FullSite:
    return copy_full_site(full_template, tmp_path / "site")


@pytest.fixture
def target(postgres_server) -> Iterator[str]:
    """An empty database (no table at all), as `createdb` leaves it."""
    name = postgres_server.create_database(empty=True)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)
