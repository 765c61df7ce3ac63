"""Digests end to end: selection over time, the outbox, a real SMTP server and its faults."""

from __future__ import annotations

import email
import email.policy
import os
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from support.smtp_server import Faults, SmtpServer

from publisher import tokens
from publisher.config import load_config
from publisher.errors import TransientDeliveryError
from publisher.mail import subscribers
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.store import open_store

ADDRESSES = [f"reader{n}@example.org" for n in range(1, 6)]


class Clock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


def _add(site, addresses, now):
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store, store.transaction():
        for address in addresses:
            subscribers.add_subscriber(store, secret, address, "", now=now)


def _smtp_site(site_dir: Path, port: int, extra: str = ""):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f"""
[delivery]
method = "smtp"
backoff = 0.01
max_attempts = 3
bounce_after = 1
{extra}
[delivery.smtp]
host = "127.0.0.1"
port = {port}
timeout = 5
""",
        encoding="utf-8",
    )
    return load_config(config)


def _eml_files(site):
    return sorted(site.delivery.outbox_dir.rglob("*.eml"))


def _parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def _token_of(message) -> str:
    link = message["List-Unsubscribe"].split(",")[0].strip("<> ")
    return parse_qs(urlsplit(link).query)["token"][0]


def test_outbox_one_message_per_subscriber_then_nothing_then_only_the_new_article(site, now):
    _add(site, ADDRESSES, now)
    clock = Clock(now)
    report = digests.send_digests(site, now=clock)
    assert (report.made, report.articles, report.sent) == (1, 3, 5)
    files = _eml_files(site)
    assert [f.name for f in files] == [f"{n:08d}.eml" for n in range(1, 6)]
    first = _parse(files[0].read_bytes())
    assert first["To"] == "reader1@example.org"
    assert "Observers find an orderly vote" in first.get_body(("plain",)).get_content()
    assert (site.output_dir / "digests" / "1" / "index.html").is_file()

    clock.now = now + timedelta(hours=1)
    again = digests.send_digests(site, now=clock)
    assert (again.made, again.sent, again.note) == (None, 0, "nothing new since the last digest")
    assert len(_eml_files(site)) == 5

    (site.content_dir / "2026-11-27-new.md").write_text(
        '---\ntitle: "Talks resume in Geneva"\ndate: "2026-11-27T13:30:00+01:00"\n---\n\nBody.\n',
        encoding="utf-8",
    )
    clock.now = now + timedelta(hours=2)
    third = digests.send_digests(site, now=clock)
    assert (third.made, third.articles, third.sent) == (2, 1, 5)
    newest = _parse(sorted(site.delivery.outbox_dir.glob("digest-0002/*.eml"))[0].read_bytes())
    body = newest.get_body(("plain",)).get_content()
    assert "Talks resume in Geneva" in body
    assert "Observers find an orderly vote" not in body


def _article(site, name: str, title: str, date: str, body: str = "Body.") -> Path:
    path = site.content_dir / name
    path.write_text(f'---\ntitle: "{title}"\ndate: "{date}"\n---\n\n{body}\n', encoding="utf-8")
    return path


def _digest_titles(site, digest_id: int) -> list[str]:
    with open_store(site.state_db) as store:
        digest = store.get_digest(digest_id)
    assert digest is not None
    return [a.title for a in digest.articles]


def test_an_article_published_in_the_same_second_as_a_digest_goes_in_the_next(site, now):
    """Times cannot say which articles a digest covered: publication numbers can."""
    _add(site, ADDRESSES[:1], now)
    sent_at = now.replace(microsecond=500_000)
    assert digests.send_digests(site, now=Clock(sent_at)).made == 1
    _article(site, "2026-11-27-same-second.md", "Same second", "2026-11-27T12:00:00+00:00")
    build(site, now=sent_at + timedelta(milliseconds=100))
    report = digests.send_digests(site, now=Clock(sent_at + timedelta(milliseconds=200)))
    assert (report.made, report.articles) == (2, 1)
    assert _digest_titles(site, 2) == ["Same second"]


def test_an_article_published_while_the_clock_is_behind_still_goes_out(site, now):
    _add(site, ADDRESSES[:1], now)
    assert digests.send_digests(site, now=Clock(now)).made == 1
    earlier = now - timedelta(hours=3)  # the clock stepped back (NTP, a VM restored)
    _article(site, "2026-11-27-behind.md", "Published while behind", "2026-11-27T08:00:00+00:00")
    build(site, now=earlier)
    report = digests.send_digests(site, now=Clock(now + timedelta(hours=1)))
    assert report.made == 2
    assert _digest_titles(site, 2) == ["Published while behind"]


def test_a_renamed_and_retitled_article_is_not_sent_again(site, now):
    _add(site, ADDRESSES[:1], now)
    assert digests.send_digests(site, now=Clock(now)).made == 1
    source = site.content_dir / "2021-03-04-observers.md"
    text = source.read_text(encoding="utf-8")
    source.unlink()
    (site.content_dir / "2021-03-04-vote-observers.md").write_text(
        text.replace("Observers find an orderly vote", "Observers find a calm, orderly vote"),
        encoding="utf-8",
    )
    build(site, now=now + timedelta(hours=1))
    report = digests.send_digests(site, now=Clock(now + timedelta(hours=2)))
    assert (report.made, report.note) == (None, "nothing new since the last digest")


def test_a_backdated_article_added_after_a_digest_goes_in_the_next(site, now):
    _add(site, ADDRESSES[:1], now)
    assert digests.send_digests(site, now=Clock(now)).made == 1
    _article(site, "2019-01-01-archive.md", "From the archive", "2019-01-01")
    report = digests.send_digests(site, now=Clock(now + timedelta(hours=1)))
    assert report.made == 2
    assert _digest_titles(site, 2) == ["From the archive"]


def test_no_subscribers_no_digest(site, now):
    report = digests.send_digests(site, now=Clock(now))
    assert (report.made, report.note) == (None, "no active subscribers; no digest made")


def test_dry_run_records_nothing(site, now):
    _add(site, ADDRESSES[:2], now)
    report = digests.send_digests(site, now=Clock(now), dry_run=True)
    assert report.note == "would make digest 1 with 3 article(s) for 2 active subscriber(s)"
    assert _eml_files(site) == []
    with open_store(site.state_db) as store:
        assert store.delivery_counts() == []


def test_smtp_delivery_headers_and_personal_links(site_dir, now):
    with SmtpServer() as server:
        site = _smtp_site(site_dir, server.port)
        _add(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now))
    assert report.sent == 3
    by_recipient = server.by_recipient()
    assert sorted(by_recipient) == ADDRESSES[:3]
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store:
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
            token = _token_of(message)
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

    site = _smtp_site(site_dir, free_port())
    _add(site, ADDRESSES[:2], now)
    with pytest.raises(TransientDeliveryError) as raised:
        digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
    assert str(raised.value).startswith(f"smtp 127.0.0.1:{site.delivery.smtp.port}: cannot connect")
    with open_store(site.state_db) as store:
        counts = store.delivery_counts()[0]
    assert (counts.pending, counts.sent, counts.sending) == (2, 0, 0)
    # The server comes up: the next run finishes the same digest, once each.
    with SmtpServer(port=site.delivery.smtp.port) as server:
        report = digests.send_digests(site, now=Clock(now + timedelta(minutes=5)))
    assert report.resumed == [1]
    assert report.sent == 2
    assert sorted(server.by_recipient()) == ADDRESSES[:2]


def test_451_is_retried_550_fails_and_bounces(site_dir, now):
    faults = Faults(
        reject_recipients={"reader2@example.org": "550 5.1.1 No such user here"},
        temporary_from=2,
        temporary_until=3,
    )
    with SmtpServer(faults) as server:
        site = _smtp_site(site_dir, server.port)
        _add(site, ADDRESSES, now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
    assert (report.sent, report.failed, report.deferred) == (4, 1, 0)
    assert report.bounced == ["reader2@example.org"]
    by_recipient = server.by_recipient()
    assert sorted(by_recipient) == [a for a in ADDRESSES if a != "reader2@example.org"]
    assert all(len(v) == 1 for v in by_recipient.values())
    with open_store(site.state_db) as store:
        failed = store.conn.execute(
            "SELECT d.status, d.last_error, s.status FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = 'reader2@example.org'"
        ).fetchone()
    assert failed == ("failed", "550 5.1.1 No such user here", "bounced")


def test_a_bounce_outlives_the_removal_of_the_subscriber(site_dir, now, runner, tmp_path):
    from publisher.cli import cli

    faults = Faults(reject_recipients={"reader2@example.org": "550 5.1.1 No such user here"})
    with SmtpServer(faults) as server:
        site = _smtp_site(site_dir, server.port)
        _add(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
    assert report.bounced == ["reader2@example.org"]
    with open_store(site.state_db) as store:
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
    with open_store(site.state_db) as store:
        assert store.find_subscriber("reader2@example.org") is None


def test_connection_dropped_mid_session_is_retried(site_dir, now):
    with SmtpServer(Faults(drop_at_rcpt={2})) as server:
        site = _smtp_site(site_dir, server.port)
        _add(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
    assert (report.sent, report.uncertain) == (3, 0)
    assert all(len(v) == 1 for v in server.by_recipient().values())
    assert sorted(server.by_recipient()) == ADDRESSES[:3]


def test_connection_dropped_after_the_body_is_uncertain_even_if_not_stored(site_dir, now):
    # From the client's side this looks exactly like the stored-then-dropped case.
    with SmtpServer(Faults(drop_before_store_at={2})) as server:
        site = _smtp_site(site_dir, server.port)
        _add(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
        assert (report.sent, report.uncertain) == (2, 1)
        forced = digests.send_digests(site, now=Clock(now), resend_uncertain=True)
        assert forced.sent == 1
    assert sorted(server.by_recipient()) == ADDRESSES[:3]
    assert all(len(v) == 1 for v in server.by_recipient().values())


def test_stored_then_dropped_is_uncertain_and_not_resent_unless_asked(site_dir, now):
    with SmtpServer(Faults(drop_after_store_at={2})) as server:
        site = _smtp_site(site_dir, server.port)
        _add(site, ADDRESSES[:3], now)
        report = digests.send_digests(site, now=Clock(now), sleep=lambda _s: None)
        assert (report.sent, report.uncertain) == (2, 1)
        again = digests.send_digests(site, now=Clock(now + timedelta(minutes=1)))
        assert (again.sent, again.uncertain) == (0, 1)
        with open_store(site.state_db) as store:
            counts = store.delivery_counts()[0]
        assert (counts.sent, counts.sending, counts.pending) == (2, 1, 0)
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
    _add(site, ADDRESSES, now)
    sender = CountingOutbox(OutboxSender(site.delivery.outbox_dir, display="outbox"))
    report = digests.send_digests(site, now=Clock(now), sender=sender, should_stop=should_stop)
    assert report.stopped
    assert report.sent == 2
    rest = digests.send_digests(site, now=Clock(now + timedelta(minutes=1)))
    assert rest.resumed == [1]
    assert rest.sent == 3
    assert len(_eml_files(site)) == 5


def test_missing_smtp_password(site_dir, now, monkeypatch):
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    site = _smtp_site(site_dir, 2525)
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + 'username = "mailer"\n', encoding="utf-8"
    )
    site = load_config(config)
    _add(site, ADDRESSES[:1], now)
    from publisher.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        digests.send_digests(site, now=Clock(now))
    assert str(raised.value) == (
        "PUBLISHER_SMTP_PASSWORD: not set; [delivery.smtp] username 'mailer' needs the "
        "password in this environment variable"
    )
    assert os.environ.get("PUBLISHER_SMTP_PASSWORD") is None


def test_ledger_and_message_agree_on_the_message_id_for_a_sender_with_a_comment(site_dir, now):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[digest]\nfrom = "briefing@gazette.example (Desk)"\n',
        encoding="utf-8",
    )
    site = load_config(config)
    _add(site, ADDRESSES[:3], now)
    assert digests.send_digests(site, now=Clock(now)).sent == 3
    with open_store(site.state_db) as store:
        ledger_ids = dict(
            store.conn.execute(
                "SELECT s.email, d.message_id FROM deliveries d "
                "JOIN subscribers s ON s.id = d.subscriber_id"
            ).fetchall()
        )
    sent = [_parse(path.read_bytes()) for path in _eml_files(site)]
    assert {str(m["To"]): str(m["Message-ID"]) for m in sent} == ledger_ids
    assert sorted(ledger_ids) == ADDRESSES[:3]
    assert all(mid.endswith("@gazette.example>") for mid in ledger_ids.values())


def test_a_test_message_has_a_marked_subject_still_encoded_for_non_ascii(site_dir, now):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[digest]\nsubject = "Grüße aus Wien: {{ count }} neue Artikel"\n',
        encoding="utf-8",
    )
    site = load_config(config)
    digests.send_test(site, "editor@example.org", now=now)
    (path,) = (site.delivery.outbox_dir / "tests").glob("*.eml")
    data = path.read_bytes()
    data.decode("ascii")  # the subject travels as RFC 2047 encoded words
    assert b"\r\nSubject: =?utf-8?" in data
    message = _parse(data)
    assert message["Subject"] == "[Test] Grüße aus Wien: 3 neue Artikel"
    assert message["Message-ID"].endswith("@gazette.example>")
    with open_store(site.state_db) as store:
        assert store.delivery_counts() == []


class _Links(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self.links.append((self._href, ""))

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None

    def handle_data(self, data):
        if self._href is not None:
            href, text = self.links[-1]
            self.links[-1] = (href, " ".join((text + data).split()))


def test_the_email_unsubscribes_its_recipient_and_the_web_copy_offers_the_signup(site, now):
    _add(site, ADDRESSES[:2], now)
    assert digests.send_digests(site, now=Clock(now)).sent == 2
    unsubscribe = site.digest.unsubscribe_url
    for path in _eml_files(site):
        message = _parse(path.read_bytes())
        link = f"{unsubscribe}?token={_token_of(message)}"
        html = message.get_body(("html",)).get_content()
        assert (link, "Unsubscribe") in _Links(html).links
        assert f"Unsubscribe: {link}" in message.get_body(("plain",)).get_content().splitlines()
    web_copy = (site.output_dir / "digests" / "1" / "index.html").read_text(encoding="utf-8")
    links = _Links(web_copy).links
    assert ("https://gazette.example/news/", "Subscribe") in links
    assert [href for href, _ in links if urlsplit(href).path == urlsplit(unsubscribe).path] == []
    assert "Unsubscribe" not in web_copy
