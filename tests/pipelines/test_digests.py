"""pipelines.digests: what each digest carries as time goes by, and where it goes.

The outbox, the ledger's Message-IDs, test messages and the web copy.
"""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from support.clock import Clock
from support.dkimcheck import dkim_table, dkimpy_verifies, make_key
from support.mailing import ADDRESSES, add_subscribers, eml_files, parse_message, token_of

from publisher import tokens
from publisher.config import load_config
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.store import open_store


def test_outbox_one_message_per_subscriber_then_nothing_then_only_the_new_article(site, now):
    add_subscribers(site, ADDRESSES, now)
    clock = Clock(now)
    report = digests.send_digests(site, now=clock)
    assert (report.made, report.articles, report.sent) == ([1], 3, 5)
    files = eml_files(site)
    assert [f.name for f in files] == [f"{n:08d}.eml" for n in range(1, 6)]
    first = parse_message(files[0].read_bytes())
    assert first["To"] == "reader1@example.org"
    assert "Observers find an orderly vote" in first.get_body(("plain",)).get_content()
    assert (site.site_dir / "digests" / "1" / "index.html").is_file()

    clock.now = now + timedelta(hours=1)
    again = digests.send_digests(site, now=clock)
    assert (again.made, again.sent, again.note) == ([], 0, "nothing new since the last digest")
    assert len(eml_files(site)) == 5

    (site.content_dir / "2026-11-27-new.md").write_text(
        '---\ntitle: "Talks resume in Geneva"\ndate: "2026-11-27T13:30:00+01:00"\n---\n\nBody.\n',
        encoding="utf-8",
    )
    clock.now = now + timedelta(hours=2)
    third = digests.send_digests(site, now=clock)
    assert (third.made, third.articles, third.sent) == ([2], 1, 5)
    newest = parse_message(
        sorted(site.delivery.outbox_dir.glob("digest-0002/*.eml"))[0].read_bytes()
    )
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
    add_subscribers(site, ADDRESSES[:1], now)
    sent_at = now.replace(microsecond=500_000)
    assert digests.send_digests(site, now=Clock(sent_at)).made == [1]
    _article(site, "2026-11-27-same-second.md", "Same second", "2026-11-27T12:00:00+00:00")
    build(site, now=sent_at + timedelta(milliseconds=100))
    report = digests.send_digests(site, now=Clock(sent_at + timedelta(milliseconds=200)))
    assert (report.made, report.articles) == ([2], 1)
    assert _digest_titles(site, 2) == ["Same second"]


def test_an_article_published_while_the_clock_is_behind_still_goes_out(site, now):
    add_subscribers(site, ADDRESSES[:1], now)
    assert digests.send_digests(site, now=Clock(now)).made == [1]
    earlier = now - timedelta(hours=3)  # the clock stepped back (NTP, a VM restored)
    _article(site, "2026-11-27-behind.md", "Published while behind", "2026-11-27T08:00:00+00:00")
    build(site, now=earlier)
    report = digests.send_digests(site, now=Clock(now + timedelta(hours=1)))
    assert report.made == [2]
    assert _digest_titles(site, 2) == ["Published while behind"]


def test_a_renamed_and_retitled_article_is_not_sent_again(site, now):
    add_subscribers(site, ADDRESSES[:1], now)
    assert digests.send_digests(site, now=Clock(now)).made == [1]
    source = site.content_dir / "2021-03-04-observers.md"
    text = source.read_text(encoding="utf-8")
    source.unlink()
    (site.content_dir / "2021-03-04-vote-observers.md").write_text(
        text.replace("Observers find an orderly vote", "Observers find a calm, orderly vote"),
        encoding="utf-8",
    )
    build(site, now=now + timedelta(hours=1))
    report = digests.send_digests(site, now=Clock(now + timedelta(hours=2)))
    assert (report.made, report.note) == ([], "nothing new since the last digest")


def test_a_backdated_article_added_after_a_digest_goes_in_the_next(site, now):
    add_subscribers(site, ADDRESSES[:1], now)
    assert digests.send_digests(site, now=Clock(now)).made == [1]
    _article(site, "2019-01-01-archive.md", "From the archive", "2019-01-01")
    report = digests.send_digests(site, now=Clock(now + timedelta(hours=1)))
    assert report.made == [2]
    assert _digest_titles(site, 2) == ["From the archive"]


def test_no_subscribers_no_digest(site, now):
    report = digests.send_digests(site, now=Clock(now))
    assert (report.made, report.note) == ([], "no active subscribers; no digest made")


def test_dry_run_records_nothing(site, now):
    add_subscribers(site, ADDRESSES[:2], now)
    report = digests.send_digests(site, now=Clock(now), dry_run=True)
    assert report.note == "would make digest 1 with 3 article(s) for 2 active subscriber(s)"
    assert eml_files(site) == []
    with open_store(site.state_db) as store:
        assert store.delivery_counts() == []


def test_ledger_and_message_agree_on_the_message_id_for_a_sender_with_a_comment(site_dir, now):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[digest]\nfrom = "briefing@gazette.example (Desk)"\n',
        encoding="utf-8",
    )
    site = load_config(config)
    add_subscribers(site, ADDRESSES[:3], now)
    assert digests.send_digests(site, now=Clock(now)).sent == 3
    with open_store(site.state_db) as store:
        ledger_ids = dict(
            store.conn.execute(
                "SELECT s.email, d.message_id FROM deliveries d "
                "JOIN subscribers s ON s.id = d.subscriber_id"
            ).fetchall()
        )
    sent = [parse_message(path.read_bytes()) for path in eml_files(site)]
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
    message = parse_message(data)
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
    add_subscribers(site, ADDRESSES[:2], now)
    assert digests.send_digests(site, now=Clock(now)).sent == 2
    unsubscribe = site.digest.unsubscribe_url
    for path in eml_files(site):
        message = parse_message(path.read_bytes())
        link = f"{unsubscribe}?token={token_of(message)}"
        html = message.get_body(("html",)).get_content()
        assert (link, "Unsubscribe") in _Links(html).links
        assert f"Unsubscribe: {link}" in message.get_body(("plain",)).get_content().splitlines()
    # The web copy is the digest's page on the site: no one's, so no unsubscribe link;
    # the site runs `publisher serve` ([web]), so its sign-up form instead.
    web_copy = (site.site_dir / "digests" / "1" / "index.html").read_text(encoding="utf-8")
    links = _Links(web_copy).links
    assert '<form class="signup" method="post" action="/news/subscribe"' in web_copy
    assert [href for href, _ in links if urlsplit(href).path == urlsplit(unsubscribe).path] == []
    assert "Unsubscribe" not in web_copy
    for message in map(parse_message, (p.read_bytes() for p in eml_files(site))):
        html = message.get_body(("html",)).get_content()
        assert ("https://gazette.example/news/digests/1/", "View in your browser") in _Links(
            html
        ).links


def test_a_page_template_that_fails_stops_no_digest(site, now, caplog):
    add_subscribers(site, ADDRESSES[:2], now)
    broken = site.templates_dir / "pages" / "digest.html.j2"
    broken.parent.mkdir(parents=True)
    broken.write_text("{% extends 'pages/base.html.j2' %}{% block main %}{{ nope }}{% endblock %}")
    report = digests.send_digests(site, now=Clock(now))
    assert (report.made, report.sent) == ([1], 2)
    assert not (site.site_dir / "digests" / "1" / "index.html").exists()
    assert "the digest's page was not written (" in caplog.text
    assert "undefined variable" in caplog.text
    broken.unlink()
    build(site, now=now + timedelta(minutes=5))  # the next build writes it
    assert (site.site_dir / "digests" / "1" / "index.html").is_file()


def _signed_verp_site(site_dir, algorithm="ed25519-sha256"):
    key, record = make_key(site_dir, algorithm)
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + dkim_table(key.name, algorithm)
        + '\n[bounces]\naddress = "bounces@gazette.example"\n',
        encoding="utf-8",
    )
    return load_config(config), record


def test_a_test_message_is_signed_and_bounces_to_the_subscriber_it_went_to(site_dir, now):
    site, record = _signed_verp_site(site_dir, "rsa-sha256")
    add_subscribers(site, ADDRESSES[:2], now)
    digests.send_test(site, "READER2@example.org", now=now)
    digests.send_test(site, "editor@example.org", now=now)
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state) as store:
        reader = store.find_subscriber(ADDRESSES[1])
    assert reader is not None
    by_address = {}
    for path in (site.delivery.outbox_dir / "tests").glob("*.eml"):
        data = path.read_bytes()
        by_address[parse_message(data)["To"]] = data
        assert dkimpy_verifies(data, record)
    known, unknown = by_address["READER2@example.org"], by_address["editor@example.org"]
    token = parse_message(known)["X-Publisher-Delivery"]
    assert tokens.read_bounce_token(secret, token) == (0, reader.id)  # digest 0: no digest's
    assert known.startswith(f"Return-Path: <bounces+{token}@gazette.example>\r\n".encode())
    assert unknown.startswith(b"Return-Path: <bounces@gazette.example>\r\n")
    assert parse_message(unknown)["X-Publisher-Delivery"] is None


def test_a_signed_verp_send_resumes_and_recovers_as_an_unsigned_one(site_dir, now):
    """Stopped, then a row left `sending` whose file is in the outbox: found delivered."""
    site, record = _signed_verp_site(site_dir)
    add_subscribers(site, ADDRESSES, now)
    seen = []

    def should_stop():
        seen.append(1)
        return len(seen) > 2

    first = digests.send_digests(site, now=Clock(now), should_stop=should_stop)
    assert first.stopped
    with open_store(site.state) as store, store.transaction():
        store.conn.execute(
            "UPDATE deliveries SET status = 'sending' WHERE subscriber_id = ("
            "SELECT MIN(subscriber_id) FROM deliveries WHERE status = 'sent')"
        )
    rest = digests.send_digests(site, now=Clock(now + timedelta(minutes=1)))
    assert (rest.resumed, rest.recovered, rest.uncertain) == ([1], 1, 0)
    assert first.sent + rest.sent == 5
    files = eml_files(site)
    assert len(files) == 5
    with open_store(site.state) as store:
        ledger = dict(
            store.conn.execute(
                "SELECT s.email, d.message_id FROM deliveries d "
                "JOIN subscribers s ON s.id = d.subscriber_id WHERE d.status = 'sent'"
            ).fetchall()
        )
    secret = tokens.load_secret(site.state_dir)
    for path in files:
        data = path.read_bytes()
        message = parse_message(data)
        assert ledger[message["To"]] == message["Message-ID"]
        assert tokens.read_bounce_token(secret, message["X-Publisher-Delivery"]) == (
            1,
            int(path.stem),
        )
        assert dkimpy_verifies(data, record)
