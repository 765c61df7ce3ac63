"""delivery.senders: SMTP against a real aiosmtpd on 127.0.0.1, and its faults.

Refused, dropped and uncertain connections, and what the sender needs from the environment.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from support.clock import Clock
from support.dkimcheck import dkim_table, dkimpy_verifies, make_key, signed_tags
from support.mailing import ADDRESSES, add_subscribers, smtp_site, token_of
from support.smtp_server import Faults, SmtpServer

from publisher import tokens
from publisher.config import load_config
from publisher.errors import TransientDeliveryError
from publisher.pipelines import digests
from publisher.store import open_store


def test_smtp_delivery_headers_and_personal_links(site_dir, now):
    with SmtpServer() as server:
        site = smtp_site(site_dir, server.port)
        add_subscribers(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now))
    assert report.sent == 3
    by_recipient = server.by_recipient()
    assert sorted(by_recipient) == ADDRESSES[:3]
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state) as store:
        for address, received in by_recipient.items():
            assert len(received) == 1
            message = received[0].message
            assert received[0].sender == "desk@gazette.example"
            assert message["To"] == address
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert message["List-Id"] == "Test Gazette <digest.gazette.example>"
            assert message["Subject"] == "Test Gazette: 3 new articles"
            plain = message.get_body(("plain",)).get_content()
            html = message.get_body(("html",)).get_content()
            token = token_of(message)
            assert f"token={token}" in plain
            assert f"token={token}" in html
            subscriber = store.find_subscriber(address)
            assert subscriber is not None
            assert tokens.check_token(secret, token, subscriber)
            for other in ADDRESSES[:3]:
                if other != address:
                    other_subscriber = store.find_subscriber(other)
                    assert not tokens.check_token(secret, token, other_subscriber)
        rows = store.conn.execute("SELECT status, reply FROM deliveries").fetchall()
    assert all(status == "sent" and reply.startswith("250 2.0.0 Ok") for status, reply in rows)


def test_refused_connection_keeps_everything_pending(site_dir, now):
    from support.smtp_server import free_port

    site = smtp_site(site_dir, free_port())
    add_subscribers(site, ADDRESSES[:2], now)
    with pytest.raises(TransientDeliveryError) as raised:
        digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
    assert str(raised.value).startswith(f"smtp 127.0.0.1:{site.delivery.smtp.port}: cannot connect")
    with open_store(site.state) as store:
        counts = store.delivery_counts()[0]
    assert (counts.pending, counts.sent, counts.sending) == (2, 0, 0)
    # The server comes up: the next run finishes the same digest, once each.
    with SmtpServer(port=site.delivery.smtp.port) as server:
        report = digests.send_digests(site, now=Clock(now + timedelta(minutes=5)))
    assert report.resumed == [1]
    assert report.sent == 2
    assert sorted(server.by_recipient()) == ADDRESSES[:2]


def test_connection_dropped_mid_session_is_retried(site_dir, now):
    with SmtpServer(Faults(drop_at_rcpt={2})) as server:
        site = smtp_site(site_dir, server.port)
        add_subscribers(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
    assert (report.sent, report.uncertain) == (3, 0)
    assert all(len(v) == 1 for v in server.by_recipient().values())
    assert sorted(server.by_recipient()) == ADDRESSES[:3]


def test_connection_dropped_after_the_body_is_uncertain_even_if_not_stored(site_dir, now):
    # From the client's side this looks exactly like the stored-then-dropped case.
    with SmtpServer(Faults(drop_before_store_at={2})) as server:
        site = smtp_site(site_dir, server.port)
        add_subscribers(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
        assert (report.sent, report.uncertain) == (2, 1)
        forced = digests.send_digests(site, now=Clock(now), resend_uncertain=True)
        assert forced.sent == 1
    assert sorted(server.by_recipient()) == ADDRESSES[:3]
    assert all(len(v) == 1 for v in server.by_recipient().values())


def test_missing_smtp_password(site_dir, now, monkeypatch):
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    site = smtp_site(site_dir, 2525)
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + 'username = "mailer"\n', encoding="utf-8"
    )
    site = load_config(config)
    add_subscribers(site, ADDRESSES[:1], now)
    from publisher.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        digests.send_digests(site, now=Clock(now))
    assert str(raised.value) == (
        "PUBLISHER_SMTP_PASSWORD: not set; [delivery.smtp] username 'mailer' needs the "
        "password in this environment variable"
    )
    assert os.environ.get("PUBLISHER_SMTP_PASSWORD") is None


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_signed_verp_messages_as_the_smtp_server_receives_them(site_dir, now, algorithm):
    """Each message: MAIL FROM names its delivery, its header too, and its signature verifies."""
    key, record = make_key(site_dir, algorithm)
    with SmtpServer() as server:
        site = smtp_site(
            site_dir,
            server.port,
            extra=dkim_table(key.name, algorithm)
            + '\n[bounces]\naddress = "bounces@gazette.example"\n',
        )
        add_subscribers(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now))
    assert report.sent == 3
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state) as store:
        ids = {s.email: s.id for s in (store.find_subscriber(a) for a in ADDRESSES[:3]) if s}
    for address, (received,) in server.by_recipient().items():
        token = received.message["X-Publisher-Delivery"]
        assert tokens.read_bounce_token(secret, token) == (1, ids[address])
        assert received.sender == f"bounces+{token}@gazette.example"
        assert tokens.token_in_address("bounces@gazette.example", received.sender) == token
        assert dkimpy_verifies(received.data, record)
        h = signed_tags(received.data)["h"].split(":")
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(h)


def test_without_a_bounce_address_the_envelope_sender_is_the_from_address(site_dir, now):
    with SmtpServer() as server:
        site = smtp_site(site_dir, server.port)
        add_subscribers(site, ADDRESSES[:1], now)
        digests.send_digests(site, now=Clock(now))
    ((received,),) = server.by_recipient().values()
    assert received.sender == "desk@gazette.example"
    assert received.message["X-Publisher-Delivery"] is None
    assert received.message["DKIM-Signature"] is None


def test_the_outbox_file_starts_with_the_return_path(site_dir, now):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[bounces]\naddress = "bounces@gazette.example"\n',
        encoding="utf-8",
    )
    site = load_config(config)
    add_subscribers(site, ADDRESSES[:2], now)
    assert digests.send_digests(site, now=Clock(now)).sent == 2
    secret = tokens.load_secret(site.state_dir)
    for path in sorted(site.delivery.outbox_dir.rglob("*.eml")):
        data = path.read_bytes()
        first, rest = data.split(b"\r\n", 1)
        token = tokens.bounce_token(secret, 1, int(path.stem))
        assert first == f"Return-Path: <bounces+{token}@gazette.example>".encode()
        assert rest.startswith(b"To: ")
        assert f"\r\nX-Publisher-Delivery: {token}\r\n".encode() in rest
