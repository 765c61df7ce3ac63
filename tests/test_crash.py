"""A send killed with SIGKILL mid-way and started again: nothing lost, nothing sent twice."""

from __future__ import annotations

import signal
import time

import pytest
from processes import run_publisher, start_publisher
from smtp_server import Faults, SmtpServer

from publisher import subscribers
from publisher.config import load_config
from publisher.store import open_store

ADDRESSES = [f"reader{n:02d}@example.org" for n in range(1, 11)]


@pytest.mark.parametrize("was_stored", [True, False], ids=["stored", "not-stored"])
def test_sigkill_mid_send_then_resume(site_dir, now, was_stored):
    # The kill lands while the server holds the 4th message's reply back: a
    # server that had queued it (stored) or one that drops it with the link.
    faults = Faults(reply_delay=0.3) if was_stored else Faults(delay=0.3)
    with SmtpServer(faults) as server:
        config = site_dir / "publisher.toml"
        config.write_text(
            config.read_text(encoding="utf-8")
            + f'\n[delivery]\nmethod = "smtp"\n\n[delivery.smtp]\nport = {server.port}\n',
            encoding="utf-8",
        )
        site = load_config(config)
        secret = subscribers.load_secret(site.state_dir)
        with open_store(site.state_dir / "state.db") as store, store.transaction():
            for address in ADDRESSES:
                subscribers.add_subscriber(store, secret, address, "", now=now)

        process = start_publisher(site_dir, "digest", "send")
        deadline = time.monotonic() + 30
        while len(server.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # a message's body is out and its reply is held back
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
        assert process.returncode == -signal.SIGKILL

        time.sleep(0.5)  # let the server finish with the held message
        status = run_publisher(site_dir, "digest", "status")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].split() == [
            "digest",
            "created",
            "articles",
            "sent",
            "pending",
            "uncertain",
            "failed",
        ]
        digest, _day, _time, articles, sent, pending, uncertain, failed = lines[1].split()
        assert (digest, articles, failed) == ("1", "3", "0")
        assert int(sent) >= 2
        assert int(uncertain) == 1
        assert int(sent) + int(pending) + int(uncertain) == 10

        resumed = run_publisher(site_dir, "digest", "send")
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.splitlines()[0] == "resumed digest 1"
        assert "1 message may or may not have been delivered" in resumed.stderr

        final = run_publisher(site_dir, "digest", "status")
        counts = final.stdout.splitlines()[1].split()
        assert counts[4:] == ["9", "0", "1", "0"]
        # The operator checks the one uncertain address; if it never arrived,
        # they send it again, and only it.
        with open_store(site.state_dir / "state.db") as store:
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
    assert sorted(by_recipient) == ADDRESSES
    assert all(len(messages) == 1 for messages in by_recipient.values())
    ids = [m.message["Message-ID"] for messages in by_recipient.values() for m in messages]
    assert len(set(ids)) == 10
