"""delivery.send: the send loop, its ledger committed around every message.

Bounces, an uncertain send, a stop request and a kill, each resumed without a message sent
twice.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from datetime import timedelta
from typing import Any

import pytest
from support.clock import Clock
from support.mailing import (
    ADDRESSES,
    STATUS_HEADER,
    TEN_READERS,
    add_subscribers,
    eml_files,
    smtp_site,
)
from support.processes import run_publisher, start_publisher
from support.smtp_server import Faults, SmtpServer

from publisher import tokens
from publisher.config import load_config
from publisher.mail import subscribers
from publisher.pipelines import digests
from publisher.store import open_store


def test_451_is_retried_550_fails_and_bounces(site_dir, now):
    faults = Faults(
        reject_recipients={"reader2@example.org": "550 5.1.1 No such user here"},
        temporary_from=2,
        temporary_until=3,
    )
    with SmtpServer(faults) as server:
        site = smtp_site(site_dir, server.port)
        add_subscribers(site, ADDRESSES, now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
    assert (report.sent, report.failed, report.deferred) == (4, 1, 0)
    assert report.bounced == ["reader2@example.org"]
    by_recipient = server.by_recipient()
    assert sorted(by_recipient) == [a for a in ADDRESSES if a != "reader2@example.org"]
    assert all(len(v) == 1 for v in by_recipient.values())
    with open_store(site.state) as store:
        failed = store.conn.execute(
            "SELECT d.status, d.last_error, s.status FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = 'reader2@example.org'"
        ).fetchone()
    assert failed == ("failed", "550 5.1.1 No such user here", "bounced")


def test_a_bounce_outlives_the_removal_of_the_subscriber(site_dir, now, runner, tmp_path):
    from publisher.cli import cli

    faults = Faults(reject_recipients={"reader2@example.org": "550 5.1.1 No such user here"})
    with SmtpServer(faults) as server:
        site = smtp_site(site_dir, server.port)
        add_subscribers(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
    assert report.bounced == ["reader2@example.org"]
    with open_store(site.state) as store:
        rows = store.conn.execute("SELECT key, reason FROM suppressions").fetchall()
    secret = tokens.load_secret(site.state_dir)
    assert rows == [(tokens.suppression_key(secret, "reader2@example.org"), "bounced")]

    config = ["--config", str(site_dir / "publisher.toml")]
    removed = runner.invoke(cli, [*config, "subscribers", "remove", "reader2@example.org"])
    assert (removed.exit_code, removed.stdout) == (0, "removed reader2@example.org\n")
    (tmp_path / "old.csv").write_text("email\nreader2@example.org\n", encoding="utf-8")
    imported = runner.invoke(cli, [*config, "subscribers", "import", str(tmp_path / "old.csv")])
    assert (imported.exit_code, imported.stderr) == (
        0,
        f"warning: {tmp_path / 'old.csv'}:2: reader2@example.org bounced earlier; skipped\n",
    )
    added = runner.invoke(cli, [*config, "subscribers", "add", "reader2@example.org"])
    assert (added.exit_code, added.stderr) == (
        1,
        "error: EMAIL: reader2@example.org bounced earlier; skipped "
        "(only a sign-up they confirm themselves lifts this)\n",
    )
    with open_store(site.state) as store:
        assert store.find_subscriber("reader2@example.org") is None


def test_stored_then_dropped_is_uncertain_and_not_resent_unless_asked(site_dir, now):
    with SmtpServer(Faults(drop_after_store_at={2})) as server:
        site = smtp_site(site_dir, server.port)
        add_subscribers(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
        assert (report.sent, report.uncertain) == (2, 1)
        again = digests.send_digests(site, now=Clock(now + timedelta(minutes=1)))
        assert (again.sent, again.uncertain) == (0, 1)
        with open_store(site.state) as store:
            counts = store.delivery_counts()[0]
        assert (counts.sent, counts.uncertain, counts.pending) == (2, 1, 0)
        # Every subscriber has exactly one message, the uncertain one included.
        assert sorted(server.by_recipient()) == ADDRESSES[:3]
        assert all(len(v) == 1 for v in server.by_recipient().values())
        forced = digests.send_digests(
            site, now=Clock(now + timedelta(minutes=2)), resend_uncertain=True
        )
        assert forced.sent == 1
    assert len(server.by_recipient()["reader2@example.org"]) == 2


def test_stop_request_finishes_the_message_in_flight(site_dir, now):
    sent_before_stop = []

    def should_stop() -> bool:
        return len(sent_before_stop) >= 2

    class CountingOutbox:
        def __init__(self, inner):
            self.inner = inner
            self.description = inner.description

        def send(self, message):
            result = self.inner.send(message)
            sent_before_stop.append(message.recipient)
            return result

        def is_delivered(self, message):
            return self.inner.is_delivered(message)

        def close(self):
            self.inner.close()

    from publisher.delivery.senders import OutboxSender

    site = load_config(site_dir / "publisher.toml")
    add_subscribers(site, ADDRESSES, now)
    sender = CountingOutbox(OutboxSender(site.delivery.outbox_dir, display="outbox"))
    report = digests.send_digests(site, now=Clock(now), sender=sender, should_stop=should_stop)
    assert report.stopped
    assert report.sent == 2
    rest = digests.send_digests(site, now=Clock(now + timedelta(minutes=1)))
    assert rest.resumed == [1]
    assert rest.sent == 3
    assert len(eml_files(site)) == 5


# -- killed mid-send ---------------------------------------------------------------


class HeldReply:
    """The test server, but its answer to the Nth DATA command never comes.

    `held` is set once the server has that message (stored first, or not),
    `settled` once the client's connection is gone and the server has let the
    message go: events to wait for, rather than guessed sleeps.
    """

    def __init__(self, server: SmtpServer, number: int, *, store: bool) -> None:
        self.inner = server.handler
        self.number = number
        self.store = store
        self.data_commands = 0  # counted on the server's one event loop
        self.held = threading.Event()
        self.settled = threading.Event()
        server.controller.handler = self  # the handler of every connection from now on

    async def handle_RCPT(self, *args: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        return await self.inner.handle_RCPT(*args)

    async def handle_DATA(self, *args: Any) -> str:  # noqa: N802
        self.data_commands += 1
        if self.data_commands != self.number:
            return await self.inner.handle_DATA(*args)
        try:
            if self.store:
                await self.inner.handle_DATA(*args)  # stored; its 250 is never sent
            self.held.set()
            await asyncio.Event().wait()  # aiosmtpd cancels this when the client goes
        finally:
            self.settled.set()
        raise AssertionError("unreachable: the wait above ends only by cancellation")


@pytest.mark.parametrize("was_stored", [True, False], ids=["stored", "not-stored"])
def test_sigkill_mid_send_then_resume(site_dir, now, was_stored):
    # The kill lands while the server holds the 4th message's reply back: a
    # server that had queued it (stored) or one that drops it with the link.
    with SmtpServer() as server:
        held = HeldReply(server, 4, store=was_stored)
        config = site_dir / "publisher.toml"
        config.write_text(
            config.read_text(encoding="utf-8")
            + f'\n[delivery]\nmethod = "smtp"\n\n[delivery.smtp]\nport = {server.port}\n',
            encoding="utf-8",
        )
        site = load_config(config)
        secret = tokens.load_secret(site.state_dir)
        with open_store(site.state) as store, store.transaction():
            for address in TEN_READERS:
                subscribers.add_subscriber(store, secret, address, "", now=now)

        process = start_publisher(site_dir, "digest", "send")
        if not held.held.wait(timeout=60):  # the 4th message's body is out, its reply held
            process.kill()
            pytest.fail(f"the server never held a message: {process.communicate(timeout=10)}")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
        assert process.returncode == -signal.SIGKILL

        assert held.settled.wait(timeout=10)  # the server is done with the held message
        assert len(server.received) == (4 if was_stored else 3)
        status = run_publisher(site_dir, "digest", "status")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].split() == STATUS_HEADER
        cells = lines[1].split()
        digest, _day, _time, articles, sent, pending, sending, uncertain, failed = cells[:9]
        assert (digest, articles, sending, failed) == ("1", "3", "0", "0")
        assert int(sent) == 3  # message 3's outcome is committed as message 4 goes out
        assert int(uncertain) == 1
        assert int(sent) + int(pending) + int(uncertain) == 10

        resumed = run_publisher(site_dir, "digest", "send")
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.splitlines()[0] == "resumed digest 1"
        assert "1 message may or may not have been delivered" in resumed.stderr

        final = run_publisher(site_dir, "digest", "status")
        counts = final.stdout.splitlines()[1].split()
        assert counts[4:10] == ["9", "0", "0", "1", "0", "0"]
        # The operator checks the one uncertain address; if it never arrived,
        # they send it again, and only it.
        with open_store(site.state) as store:
            (held,) = store.conn.execute(
                "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
                "WHERE d.status = 'sending'"
            ).fetchone()
        assert (held in server.by_recipient()) is was_stored
        if not was_stored:
            forced = run_publisher(site_dir, "digest", "send", "--resend-uncertain")
            assert forced.returncode == 0, forced.stderr
            assert forced.stdout.splitlines()[-1] == "sent 1, failed 0, deferred 0, uncertain 0"

    by_recipient = server.by_recipient()
    assert sorted(by_recipient) == TEN_READERS
    assert all(len(messages) == 1 for messages in by_recipient.values())
    ids = [m.message["Message-ID"] for messages in by_recipient.values() for m in messages]
    assert len(set(ids)) == 10
