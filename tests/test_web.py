"""`publisher serve` over real HTTP: uvicorn on 127.0.0.1, httpx (or a raw socket) as the client.

The test site's base_url is https://gazette.example/news/, so pages live under
/news/, feeds under /news/feeds/ and unsubscribe at /news/unsubscribe; links in
messages are rewritten to the local server by keeping their path and query.
Assertions stay on status codes, headers, page titles, database rows and
outbox files, not on the pages' markup.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import logging
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from support.clock import NOW
from support.fetches import foreign_fetches
from support.paths import SITES
from support.web_server import WebServer

from publisher import tokens
from publisher.config import SiteConfig, load_config
from publisher.mail import subscribers
from publisher.pipelines import build, digests
from publisher.store import Store, open_store

FORM = "application/x-www-form-urlencoded"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FEED_TYPES = {
    "rss.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
READERS = ["ada@example.org", "bo@example.org", "cy@example.org"]
# Page titles (stable; the markup around them is not).
CHECK_INBOX = "Check your inbox"
SUBSCRIBED = "You are subscribed"
UNSUBSCRIBED = "You are unsubscribed"
BAD_UNSUBSCRIBE = "That unsubscribe link is not valid"
BAD_LINK = "That link did not work"
TOO_MANY = "Too many sign-ups"
UNREADABLE = "That form could not be read"
BAD_ADDRESS = "That address will not work"


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


# -- fixtures and helpers ------------------------------------------------------------


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def built(site: SiteConfig, now: datetime) -> SiteConfig:
    build.build(site, now=now)
    return site


@pytest.fixture
def server(built: SiteConfig, clock: Clock) -> Iterator[WebServer]:
    with WebServer(built, now=clock) as running:
        yield running


@pytest.fixture
def client(server: WebServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.origin, timeout=10) as http:
        yield http


@dataclass(frozen=True)
class Shared:
    """One built and mailed site and its server, for tests that change nothing."""

    site: SiteConfig
    server: WebServer
    client: httpx.Client
    links: dict[str, str]  # address -> the List-Unsubscribe link of digest 1


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    # Starting and stopping uvicorn costs ~0.2 s; read-only tests share one server.
    folder = shutil.copytree(SITES / "basic", tmp_path_factory.mktemp("shared") / "basic")
    site = load_config(folder / "publisher.toml")
    build.build(site, now=NOW)
    links = _mail(site, Clock(NOW))
    with (
        WebServer(site, now=Clock(NOW)) as server,
        httpx.Client(base_url=server.origin, timeout=10) as http,
    ):
        yield Shared(site, server, http, links)
    assert set(_statuses(site).values()) == {"active"}
    assert _rows(site, "SELECT * FROM signups") == []
    assert not (site.delivery.outbox_dir / "confirmations").exists()


def _base(site: SiteConfig) -> str:
    return urlsplit(site.base_url).path


def _feeds(site: SiteConfig) -> str:
    return urlsplit(site.feeds.url).path


def _unsubscribe_path(site: SiteConfig) -> str:
    return urlsplit(site.digest.unsubscribe_url).path


def _local(url: str) -> str:
    """The path and query of a public link, to ask the local server for."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _rows(site: SiteConfig, sql: str) -> list[tuple[object, ...]]:
    with open_store(site.state_db) as store:
        return [tuple(row) for row in store.conn.execute(sql).fetchall()]


def _statuses(site: SiteConfig) -> dict[str, str]:
    return dict(_rows(site, "SELECT email, status FROM subscribers"))  # type: ignore[arg-type]


def _add(site: SiteConfig, addresses: list[str], now: datetime) -> None:
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store, store.transaction():
        for address in addresses:
            subscribers.add_subscriber(store, secret, address, "", now=now)


def _messages(folder: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def _confirmations(site: SiteConfig) -> list[EmailMessage]:
    return _messages(site.delivery.outbox_dir / "confirmations")


def _recipients(messages: list[EmailMessage]) -> list[str]:
    return sorted(message["To"].addresses[0].addr_spec for message in messages)


def _confirmation_link(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (link,) = re.findall(r"https://\S+/confirm\?token=\S+", text)
    return str(link)


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def _unsubscribe_link(message: EmailMessage) -> str:
    return str(message["List-Unsubscribe"]).split(",")[0].strip("<> ")


def _mail(site: SiteConfig, clock: Clock) -> dict[str, str]:
    """READERS subscribed and sent digest 1: address -> their List-Unsubscribe link."""
    _add(site, READERS, clock())
    report = digests.send_digests(site, now=clock)
    assert report.sent == len(READERS)
    messages = _messages(site.delivery.outbox_dir / "digest-0001")
    return {m["To"].addresses[0].addr_spec: _unsubscribe_link(m) for m in messages}


def _signup(client: httpx.Client, site: SiteConfig, address: str, **headers: str) -> httpx.Response:
    return client.post(
        _base(site) + "subscribe", data={"email": address, "name": ""}, headers=headers
    )


def _nothing_stored(site: SiteConfig) -> None:
    assert _rows(site, "SELECT * FROM signups") == []
    assert _rows(site, "SELECT * FROM signup_requests") == []
    assert _rows(site, "SELECT * FROM subscribers") == []
    assert list(site.delivery.outbox_dir.rglob("*.eml")) == []


class _Page(HTMLParser):
    """The forms, buttons and links of a page, however it is laid out."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.buttons = 0
        self.links: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and dict(attrs).get("href"):
            self.links.append(str(dict(attrs)["href"]))
        elif tag == "form":
            self.forms.append(dict(attrs))
        elif tag == "button" or (tag == "input" and dict(attrs).get("type") == "submit"):
            self.buttons += 1


def _digest_links(html: str) -> list[str]:
    """The links to digests' web copies (`…/digests/<n>/`), not to the archive itself."""
    return [link for link in _Page(html).links if re.search(r"/digests/\d+/$", link)]


def _visible_text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]*>", " ", html).split())


# -- feeds -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content_type"), FEED_TYPES.items())
def test_feeds_have_their_types_validators_and_caching(shared, name, content_type):
    site, client = shared.site, shared.client
    response = client.get(_feeds(site) + name, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["etag"]
    assert response.headers["last-modified"]
    assert "content-encoding" not in response.headers
    assert response.content == (site.output_dir / name).read_bytes()


def test_conditional_requests_are_answered_304_without_a_body(shared):
    site, client = shared.site, shared.client
    url = _feeds(site) + "rss.xml"
    first = client.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = client.get(url, headers=headers)
        assert again.status_code == 304, headers
        assert again.content == b""
        assert again.headers["etag"] == etag
    changed = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200
    assert changed.content == (site.output_dir / "rss.xml").read_bytes()


def test_feeds_are_gzipped_when_asked(shared):
    site, client = shared.site, shared.client
    with client.stream(
        "GET", _feeds(site) + "atom.xml", headers={"Accept-Encoding": "gzip"}
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == FEED_TYPES["atom.xml"]
    assert "accept-encoding" in response.headers["vary"].lower()
    assert int(response.headers["content-length"]) == len(raw)
    assert gzip.decompress(raw) == (site.output_dir / "atom.xml").read_bytes()


def test_head_gives_the_headers_without_a_body(shared):
    site, client = shared.site, shared.client
    feed = client.head(_feeds(site) + "feed.json", headers={"Accept-Encoding": "identity"})
    assert feed.status_code == 200
    assert feed.headers["content-type"] == FEED_TYPES["feed.json"]
    assert feed.headers["etag"]
    assert int(feed.headers["content-length"]) == (site.output_dir / "feed.json").stat().st_size
    assert feed.content == b""
    home = client.head(_base(site))
    assert home.status_code == 200
    assert home.headers["content-type"] == "text/html; charset=utf-8"
    assert home.content == b""


def _served_files(site: SiteConfig) -> list[str]:
    """Paths of a feed of each type and of a digest's web copy (an HTML file)."""
    return [*(_feeds(site) + name for name in FEED_TYPES), _feeds(site) + "digests/1/"]


IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


def test_gzip_and_identity_bodies_have_their_own_etags(shared):
    # One strong ETag for two different bodies told caches they were the same bytes.
    client = shared.client
    for path in _served_files(shared.site):
        plain = client.get(path, headers=IDENTITY)
        packed = client.get(path, headers=GZIP)
        assert (plain.status_code, packed.status_code) == (200, 200), path
        assert "content-encoding" not in plain.headers
        assert packed.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in packed.headers["vary"].lower()
        assert packed.content == plain.content  # httpx decodes the gzip body
        plain_tag, packed_tag = plain.headers["etag"], packed.headers["etag"]
        assert plain_tag != packed_tag, path
        assert packed_tag == plain_tag[:-1] + '-gzip"'


def test_either_etag_gets_its_304(shared):
    client = shared.client
    for path in _served_files(shared.site):
        plain_tag = client.get(path, headers=IDENTITY).headers["etag"]
        packed_tag = client.get(path, headers=GZIP).headers["etag"]
        for encoding in (IDENTITY, GZIP):
            for tag in (plain_tag, packed_tag, f"W/{packed_tag}", f'"x", {packed_tag}'):
                again = client.get(path, headers={**encoding, "If-None-Match": tag})
                assert again.status_code == 304, (path, encoding, tag)
                assert again.content == b""
                # The validators a 200 would carry for this client (RFC 9110 §15.4.5).
                assert again.headers["etag"] == (packed_tag if encoding is GZIP else plain_tag)
                assert again.headers["vary"] == "Accept-Encoding"
            other = client.get(path, headers={**encoding, "If-None-Match": '"something-else"'})
            assert other.status_code == 200
            assert other.headers["etag"] == (packed_tag if encoding is GZIP else plain_tag)
            modified = other.headers["last-modified"]
            since = client.get(path, headers={**encoding, "If-Modified-Since": modified})
            assert since.status_code == 304
            assert since.headers["etag"] == other.headers["etag"]


def _head_and_get(client: httpx.Client, path: str, headers: dict[str, str]) -> tuple[dict, dict]:
    head = client.head(path, headers=headers)
    assert head.content == b""
    with client.stream("GET", path, headers=headers) as get:
        raw = b"".join(get.iter_raw())
    assert int(get.headers["content-length"]) == len(raw)
    assert head.status_code == get.status_code == 200, path
    drop = {"date"}
    return (
        {k: v for k, v in head.headers.items() if k not in drop},
        {k: v for k, v in get.headers.items() if k not in drop},
    )


def test_head_answers_with_the_headers_get_would(shared):
    site, client = shared.site, shared.client
    pages = [_base(site), _base(site) + "digests/"]
    for path in [*_served_files(site), *pages]:
        for encoding in (IDENTITY, GZIP):
            head, get = _head_and_get(client, path, encoding)
            assert head == get, (path, encoding)
            assert ("content-encoding" in get) is (encoding is GZIP), (path, encoding)


def test_tag_feeds_are_served_under_tags(shared):
    site, client = shared.site, shared.client
    tags = sorted(path.name for path in (site.output_dir / "tags").iterdir())
    assert "elections" in tags
    for tag in tags:
        for name, content_type in FEED_TYPES.items():
            response = client.get(f"{_feeds(site)}tags/{tag}/{name}")
            assert response.status_code == 200, (tag, name)
            assert response.headers["content-type"] == content_type
            assert response.content == (site.output_dir / "tags" / tag / name).read_bytes()
    assert client.get(f"{_feeds(site)}tags/no-such-tag/rss.xml").status_code == 404


# -- path traversal --------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        "../publisher.toml",
        "%2e%2e/publisher.toml",
        "%2E%2E/publisher.toml",
        "..%2fpublisher.toml",
        "..%5cpublisher.toml",
        "%2e%2e%2f%2e%2e%2fetc/passwd",
        "../../../../../../../../etc/passwd",
        "/etc/passwd",
        "%2fetc/passwd",
        "..",
        "../",
    ],
)
def test_paths_outside_the_output_folder_are_not_served(shared, tail):
    site, server = shared.site, shared.server
    # A raw request line: a client would normalise the dots away before sending.
    path = _feeds(site) + tail
    status, _headers, body = server.raw(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    assert status in (400, 404), path
    assert b"[site]" not in body  # publisher.toml
    assert b"root:" not in body  # /etc/passwd


def test_the_raw_request_reaches_the_feeds(shared):
    # The control for the test above: the same raw request for a real file.
    status, headers, body = shared.server.raw(
        f"GET {_feeds(shared.site)}rss.xml HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    assert (status, headers["content-type"]) == (200, FEED_TYPES["rss.xml"])
    assert body == (shared.site.output_dir / "rss.xml").read_bytes()


def test_symlinks_leading_out_of_the_output_folder_are_not_followed(built, site_dir, client):
    (built.output_dir / "leak.xml").symlink_to(site_dir / "publisher.toml")
    (built.output_dir / "up").symlink_to(site_dir, target_is_directory=True)
    for path in ("leak.xml", "up/publisher.toml"):
        response = client.get(_feeds(built) + path)
        assert response.status_code == 404, path
        assert "[site]" not in response.text


def test_dot_files_are_never_served(built, client, server):
    # A write in flight, or a killed run's leftover, beside the real files.
    out = built.output_dir
    (out / ".rss.xml.4242-0a1b2c3d.tmp").write_bytes(b"<rss>half")
    (out / "tags" / "vienna" / ".feed.json.v0tyavo3.tmp").write_bytes(b"{half")
    (out / ".hidden").mkdir()
    (out / ".hidden" / "rss.xml").write_bytes(b"<rss/>")
    (out / ".htaccess").write_bytes(b"Deny from all")
    feeds = _feeds(built)
    paths = [
        feeds + ".rss.xml.4242-0a1b2c3d.tmp",
        feeds + "tags/vienna/.feed.json.v0tyavo3.tmp",
        feeds + ".hidden/rss.xml",
        feeds + ".htaccess",
        feeds + "%2ehtaccess",
        feeds + "tags/../.htaccess",
    ]
    for path in paths:
        for method in ("GET", "HEAD"):
            status, _headers, body = server.raw(
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            assert status == 404, (method, path)
            assert b"half" not in body
            assert b"Deny" not in body
    # The real files beside them are served as ever.
    assert client.get(feeds + "rss.xml").status_code == 200
    assert client.get(feeds + "tags/vienna/feed.json").status_code == 200


# -- methods ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
@pytest.mark.parametrize("route", ["", "subscribe", "confirm"])
def test_other_methods_get_405(shared, method, route):
    site, client = shared.site, shared.client
    response = client.request(method, _base(site) + route, content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"]


# -- sign-up ---------------------------------------------------------------------------


def test_signup_confirm_and_the_next_digest_reaches_the_new_subscriber(built, client, clock):
    response = client.post(
        _base(built) + "subscribe", data={"email": "ada@example.org", "name": "Ada"}
    )
    assert response.status_code == 200
    assert CHECK_INBOX in response.text
    assert _statuses(built) == {}  # pending until confirmed
    (message,) = _confirmations(built)
    assert _recipients([message]) == ["ada@example.org"]
    link = _confirmation_link(message)
    assert link.startswith(built.base_url + "confirm?token=")
    assert _token(link)

    confirmed = _press(client, link)
    assert confirmed.status_code == 200
    assert SUBSCRIBED in confirmed.text
    assert _statuses(built) == {"ada@example.org": "active"}
    assert _rows(built, "SELECT name FROM subscribers") == [("Ada",)]
    assert _rows(built, "SELECT confirmed_at FROM signups") == [(clock().isoformat(),)]
    # Opening the link again (or a scanner's visit) says so; a second POST changes nothing.
    again = client.get(_local(link))
    assert again.status_code == 200
    assert SUBSCRIBED in again.text
    assert _Page(again.text).buttons == 0
    twice = client.post(_local(link), content=b"", headers={"Content-Type": FORM})
    assert twice.status_code == 200
    assert SUBSCRIBED in twice.text
    assert _statuses(built) == {"ada@example.org": "active"}

    report = digests.send_digests(built, now=clock)
    assert (report.made, report.sent) == (1, 1)
    digest = _messages(built.delivery.outbox_dir / "digest-0001")
    assert _recipients(digest) == ["ada@example.org"]


def test_the_confirmation_fetches_nothing_from_third_parties(built, client):
    assert _signup(client, built, "ada@example.org").status_code == 200
    (message,) = _confirmations(built)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert _confirmation_link(message) in _Page(html).links
    assert foreign_fetches(html, built.base_url) == []
    assert "@import" not in html
    assert "fonts.googleapis" not in html
    assert re.fullmatch(r"<confirm-[0-9a-f]{16}@gazette\.example>", str(message["Message-ID"]))


def test_the_answer_never_reveals_whether_an_address_is_known(built, client, now):
    _add(built, ["bo@example.org"], now)
    new = _signup(client, built, "ada@example.org")
    active = _signup(client, built, "bo@example.org")
    active_in_capitals = _signup(client, built, "BO@example.org")
    pending = _signup(client, built, "ada@example.org")
    for response in (active, active_in_capitals, pending):
        assert response.status_code == new.status_code == 200
        assert _visible_text(response.text) == _visible_text(new.text)
    assert CHECK_INBOX in new.text
    # The active address got nothing; the pending one a second link (up to 3 a day).
    assert _recipients(_confirmations(built)) == ["ada@example.org", "ada@example.org"]
    assert _rows(built, "SELECT email FROM signups") == [("ada@example.org",)]
    assert _statuses(built) == {"bo@example.org": "active"}


def test_an_address_gets_at_most_three_confirmations_a_day(built, client, clock):
    answers = [_signup(client, built, "ada@example.org") for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert all(CHECK_INBOX in a.text for a in answers)
    assert len(_confirmations(built)) == 3
    clock.now += timedelta(hours=25)  # the window has passed
    assert _signup(client, built, "ada@example.org").status_code == 200
    assert len(_confirmations(built)) == 4


def test_a_filled_honeypot_is_answered_politely_and_ignored(built, client):
    response = client.post(
        _base(built) + "subscribe",
        data={"email": "bot@example.org", "name": "", "website": "https://spam.example/"},
    )
    assert response.status_code == 200
    assert CHECK_INBOX in response.text
    _nothing_stored(built)


def test_a_flood_from_one_client_gets_429(built, clock):
    with (
        WebServer(built, now=clock, client_limit=3) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        answers = [_signup(client, built, f"reader{n}@example.org") for n in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert TOO_MANY in answers[3].text
        assert answers[3].headers["retry-after"].isdigit()
        assert int(answers[3].headers["retry-after"]) > 0
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 (a proxy): another reader is not limited.
        other = _signup(client, built, "other@example.org", **{"X-Forwarded-For": "198.51.100.7"})
        assert other.status_code == 200
    recipients = _recipients(_confirmations(built))
    assert recipients == sorted(
        ["reader0@example.org", "reader1@example.org", "reader2@example.org", "other@example.org"]
    )
    assert ("reader3@example.org",) not in _rows(built, "SELECT email FROM signups")


def _padded(size: int) -> bytes:
    return b"email=ada%40example.org&name=" + b"x" * (size - 29)


def test_an_oversized_body_gets_413(built, client):
    declared = client.post(
        _base(built) + "subscribe", content=_padded(20000), headers={"Content-Type": FORM}
    )
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        body = _padded(20000)
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    streamed = client.post(
        _base(built) + "subscribe", content=chunks(), headers={"Content-Type": FORM}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    _nothing_stored(built)


def test_an_oversized_unsubscribe_body_gets_413(built, client, now):
    _add(built, ["ada@example.org"], now)
    token = tokens.make_token(tokens.load_secret(built.state_dir), 1, "ada@example.org")
    response = client.post(
        _unsubscribe_path(built),
        params={"token": token},
        content=b"List-Unsubscribe=One-Click&x=" + b"x" * 20000,
        headers={"Content-Type": FORM},
    )
    assert response.status_code == 413
    assert _statuses(built) == {"ada@example.org": "active"}


@pytest.mark.parametrize(
    ("content_type", "body", "title", "reason"),
    [
        (FORM, b"email=%zz&&=", UNREADABLE, ""),
        (FORM, b"email=ada\xff%40example.org", UNREADABLE, ""),
        (FORM, b"email=ada%ff%40example.org", UNREADABLE, ""),
        (FORM, b"email=ada%40example.org&email=bo%40example.org", UNREADABLE, ""),
        (FORM, b"&".join(b"f%d=1" % n for n in range(11)), UNREADABLE, ""),
        ("application/json", b'{"email": "ada@example.org"}', UNREADABLE, ""),
        (
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
            b"ada@example.org\r\n--xyz--\r\n",
            UNREADABLE,
            "",
        ),
        ("text/plain", b"email=ada%40example.org", UNREADABLE, ""),
        (FORM, b"email=not-an-email", BAD_ADDRESS, "An email address must have an @-sign."),
        (FORM, b"email=", BAD_ADDRESS, "it is empty"),
        (FORM, b"", BAD_ADDRESS, "it is empty"),
        (
            FORM,
            b"email=" + quote("x@example.org\r\nBcc: y@example.org").encode(),
            BAD_ADDRESS,
            "it contains a line break or control character",
        ),
        (
            FORM,
            b"email=" + quote("x@example.org\nBcc: y@example.org").encode(),
            BAD_ADDRESS,
            "it contains a line break or control character",
        ),
        (
            FORM,
            b"email=ada%40example.org&name=" + quote("Ada\x1b[31m").encode(),
            BAD_ADDRESS,
            "contains a control character",
        ),
    ],
)
def test_bad_signups_get_400_and_store_nothing(built, client, content_type, body, title, reason):
    response = client.post(
        _base(built) + "subscribe", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400
    assert title in response.text
    assert reason in response.text
    _nothing_stored(built)


def test_a_signup_without_a_content_type_gets_400(built, server):
    status, _headers, body = server.raw(
        b"POST /news/subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Length: 21\r\n\r\nemail=ada%40example.o"
    )
    assert status == 400
    assert UNREADABLE.encode() in body
    _nothing_stored(built)


def test_a_slow_database_does_not_stall_other_requests(built, client, monkeypatch):
    # `publisher run` holding the write lock: the sign-up waits, feeds do not.
    lock = sqlite3.connect(built.state_db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    # Told when the sign-up begins its transaction: from there it waits on the lock.
    waiting_for_lock = threading.Event()
    transaction = Store.transaction

    def announced(store: Store) -> AbstractContextManager[None]:
        waiting_for_lock.set()
        return transaction(store)

    monkeypatch.setattr(Store, "transaction", announced)
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                str(client.base_url.join(_base(built) + "subscribe")),
                data={"email": "ada@example.org"},
                timeout=20,
            )
        )
    )
    waiting.start()
    try:
        assert waiting_for_lock.wait(10), "the sign-up never reached the database"
        started = time.monotonic()
        feed = client.get(_feeds(built) + "rss.xml", timeout=5)
        assert feed.status_code == 200
        assert time.monotonic() - started < 2
        assert answers == []  # still waiting for the lock
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        waiting.join(20)
    assert [a.status_code for a in answers] == [200]
    assert _recipients(_confirmations(built)) == ["ada@example.org"]


def test_a_confirmation_that_cannot_be_sent_gets_503(built, client, caplog):
    # The outbox cannot take the message: the visitor is asked to come back, the operator told why.
    caplog.set_level(logging.INFO, logger="publisher.web")
    built.delivery.outbox_dir.mkdir(parents=True, exist_ok=True)
    (built.delivery.outbox_dir / "confirmations").write_text("not a folder", encoding="utf-8")
    response = _signup(client, built, "ada@example.org")
    assert response.status_code == 503
    assert "Please try again later" in response.text
    assert "We could not send the confirmation message just now." in response.text
    errors = [
        record.getMessage()
        for record in caplog.records
        if record.name == "publisher.web" and record.levelno == logging.ERROR
    ]
    assert len(errors) == 1, errors
    assert re.fullmatch(
        r"confirmation to ada@example\.org not sent: the outbox \(\S+\): transient: "
        r"cannot write \d{8}-\d{6}-[0-9a-f]{16}\.eml: File exists",
        errors[0],
    ), errors[0]
    assert _statuses(built) == {}
    assert _rows(built, "SELECT email, confirmed_at FROM signups") == [("ada@example.org", None)]


def test_an_unusable_state_database_gets_503(built, client):
    database = built.state_db
    for path in built.state_dir.glob(built.state_db.name + "*"):
        path.unlink()
    database.mkdir()  # cannot be opened as a database
    for response in (client.get(_base(built)), _signup(client, built, "ada@example.org")):
        assert response.status_code == 503
        assert "Please try again later" in response.text
        assert response.headers["retry-after"] == "60"
    assert _confirmations(built) == []


# -- confirmation links ----------------------------------------------------------------


def _pending_link(client: httpx.Client, site: SiteConfig, address: str) -> str:
    assert _signup(client, site, address).status_code == 200
    return _confirmation_link(_confirmations(site)[-1])


def _forged(token: str) -> str:
    flipped = "A" if token[-1] != "A" else "B"
    return token[:-1] + flipped


@pytest.mark.parametrize(
    "spoil",
    [
        _forged,
        lambda token: token[:-5],
        lambda token: token.split(".", 1)[1],
        lambda token: "2." + token.split(".", 1)[1],  # another sign-up's id
        lambda token: token.rsplit(".", 1)[0] + ".",
        lambda _token: "",
        lambda _token: "x" * 5000,
    ],
    ids=["changed-mac", "truncated", "no-id", "other-id", "no-mac", "empty", "long"],
)
def test_spoiled_confirmation_links_get_400_and_activate_nothing(built, client, spoil):
    link = _pending_link(client, built, "ada@example.org")
    bad = spoil(_token(link))
    response = client.get(_base(built) + "confirm", params={"token": bad})
    assert response.status_code == 400
    assert BAD_LINK in response.text
    assert "not valid" in response.text
    assert _statuses(built) == {}
    assert _rows(built, "SELECT email FROM signups") == [("ada@example.org",)]
    assert SUBSCRIBED in _press(client, link).text  # the real link still works
    assert _statuses(built) == {"ada@example.org": "active"}


def _confirm_form(html: str, link: str) -> dict[str, str | None]:
    """The page's one form, posting to the confirmation URL (or, with no action, to itself)."""
    path = urlsplit(link).path
    (form,) = [f for f in _Page(html).forms if urlsplit(f.get("action") or path).path == path]
    return form


def _press(client: httpx.Client, link: str) -> httpx.Response:
    """What a browser does with the confirmation page: GET it, then POST its one form."""
    shown = client.get(_local(link))
    assert shown.status_code == 200
    form = _confirm_form(shown.text, link)
    assert (form.get("method") or "").lower() == "post"
    action = _local(form.get("action") or link)
    return client.post(action, content=b"", headers={"Content-Type": FORM})


def test_following_the_link_changes_nothing_until_the_button_is_pressed(built, client, clock):
    link = _pending_link(client, built, "ada@example.org")
    # A link scanner: GET and HEAD, any number of times.
    for _ in range(2):
        shown = client.get(_local(link))
        assert shown.status_code == 200
        assert "Confirm your subscription" in shown.text
        assert "ada@example.org" in shown.text
        assert _Page(shown.text).buttons == 1
        head = client.head(_local(link))
        assert head.status_code == 200
        assert head.content == b""
    assert _statuses(built) == {}
    assert _rows(built, "SELECT confirmed_at FROM signups") == [(None,)]

    done = _press(client, link)
    assert done.status_code == 200
    assert SUBSCRIBED in done.text
    assert _statuses(built) == {"ada@example.org": "active"}
    assert _rows(built, "SELECT confirmed_at FROM signups") == [(clock().isoformat(),)]


@pytest.mark.parametrize(
    "spoil",
    [_forged, lambda token: token[:-5], lambda _token: "", lambda token: token + "x"],
    ids=["changed-mac", "truncated", "empty", "long"],
)
def test_a_spoiled_token_on_post_gets_400_and_changes_nothing(built, client, spoil):
    link = _pending_link(client, built, "ada@example.org")
    response = client.post(
        _base(built) + "confirm",
        params={"token": spoil(_token(link))},
        content=b"",
        headers={"Content-Type": FORM},
    )
    assert response.status_code == 400
    assert BAD_LINK in response.text
    assert "not valid" in response.text
    assert _statuses(built) == {}
    assert _rows(built, "SELECT confirmed_at FROM signups") == [(None,)]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, b"a=%zz&&="),
        (FORM, b"a=1&a=2"),
        ("application/json", b"{}"),
        ("text/plain", b""),
    ],
)
def test_a_malformed_confirmation_form_gets_400_and_changes_nothing(
    built, client, content_type, body
):
    link = _pending_link(client, built, "ada@example.org")
    response = client.post(_local(link), content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert UNREADABLE in response.text
    assert _statuses(built) == {}
    assert _press(client, link).status_code == 200  # the real link still works
    assert _statuses(built) == {"ada@example.org": "active"}


def test_confirmation_links_expire_after_48_hours(built, client, clock, now):
    link = _pending_link(client, built, "ada@example.org")
    clock.now = now + timedelta(hours=49)
    shown = client.get(_local(link))
    pressed = client.post(_local(link), content=b"", headers={"Content-Type": FORM})
    for response in (shown, pressed):
        assert response.status_code == 400
        assert BAD_LINK in response.text
        assert "expired" in response.text
    assert _statuses(built) == {}


def test_a_link_is_still_good_after_47_hours(built, client, clock, now):
    link = _pending_link(client, built, "ada@example.org")
    clock.now = now + timedelta(hours=47)
    response = _press(client, link)
    assert response.status_code == 200
    assert SUBSCRIBED in response.text


def test_a_confirmation_link_from_another_site_gets_400(built, clock, tmp_path, monkeypatch):
    # Another site: its own copy, its own secret, the same address pending (id 1 too).
    monkeypatch.setenv(tokens.SECRET_ENV, "another-site-secret-" + "a" * 20)
    other = load_config(shutil.copytree(SITES / "basic", tmp_path / "other") / "publisher.toml")
    with WebServer(other, now=clock) as server, httpx.Client(base_url=server.origin) as client:
        foreign = _pending_link(client, other, "ada@example.org")
    monkeypatch.setenv(tokens.SECRET_ENV, "this-site-secret-" + "b" * 20)
    with WebServer(built, now=clock) as server, httpx.Client(base_url=server.origin) as client:
        own = _pending_link(client, built, "ada@example.org")
        assert _token(own).split(".")[0] == _token(foreign).split(".")[0] == "1"
        for response in (
            client.get(_local(foreign)),
            client.post(_local(foreign), content=b"", headers={"Content-Type": FORM}),
        ):
            assert response.status_code == 400
            assert BAD_LINK in response.text
        assert _statuses(built) == {}
        assert SUBSCRIBED in _press(client, own).text
    assert _statuses(built) == {"ada@example.org": "active"}


# -- unsubscribe -----------------------------------------------------------------------


@pytest.fixture
def mailed(built: SiteConfig, clock: Clock) -> dict[str, str]:
    return _mail(built, clock)


def _new_article(site: SiteConfig) -> None:
    (site.content_dir / "2026-11-27-new.md").write_text(
        '---\ntitle: "Talks resume in Geneva"\ndate: "2026-11-27T13:30:00+01:00"\n---\n\nBody.\n',
        encoding="utf-8",
    )


def _unsubscribe_form(html: str, link: str) -> dict[str, str | None]:
    """The page's one form that posts to the unsubscribe URL (or, with no action, to itself)."""
    path = urlsplit(link).path
    (form,) = [f for f in _Page(html).forms if urlsplit(f.get("action") or path).path == path]
    return form


def test_one_click_unsubscribes_exactly_that_subscriber(built, client, mailed, clock, now):
    link = mailed["bo@example.org"]
    assert urlsplit(link).path == _unsubscribe_path(built) == "/news/unsubscribe"

    shown = client.get(_local(link))
    assert shown.status_code == 200
    assert "Unsubscribe" in shown.text
    form = _unsubscribe_form(shown.text, link)
    assert (form.get("method") or "").lower() == "post"
    assert _Page(shown.text).buttons >= 1
    assert _statuses(built)["bo@example.org"] == "active"  # showing the page changes nothing

    for _ in range(2):  # a second POST (a retrying provider) is still fine
        done = client.post(_local(link), content=ONE_CLICK, headers={"Content-Type": FORM})
        assert done.status_code == 200
        assert UNSUBSCRIBED in done.text
    assert _statuses(built) == {
        "ada@example.org": "active",
        "bo@example.org": "unsubscribed",
        "cy@example.org": "active",
    }

    _new_article(built)
    clock.now = now + timedelta(hours=2)
    report = digests.send_digests(built, now=clock)
    assert (report.made, report.sent) == (2, 2)
    second = _messages(built.delivery.outbox_dir / "digest-0002")
    assert _recipients(second) == ["ada@example.org", "cy@example.org"]


def test_the_unsubscribe_button_works(built, client, mailed):
    shown = client.get(_local(mailed["cy@example.org"]))
    form = _unsubscribe_form(shown.text, mailed["cy@example.org"])
    action = form.get("action") or _local(mailed["cy@example.org"])  # none: this same URL
    # What a browser sends for a form with only a button: an empty urlencoded body.
    done = client.post(action, content=b"", headers={"Content-Type": FORM})
    assert done.status_code == 200
    assert UNSUBSCRIBED in done.text
    assert _statuses(built)["cy@example.org"] == "unsubscribed"
    assert _statuses(built)["ada@example.org"] == "active"


def test_an_unsubscribe_on_the_web_outlives_remove_and_an_old_list(
    built, client, mailed, runner, tmp_path
):
    from publisher.cli import cli

    done = client.post(
        _local(mailed["bo@example.org"]), content=ONE_CLICK, headers={"Content-Type": FORM}
    )
    assert UNSUBSCRIBED in done.text
    config = ["--config", str(built.config_path)]
    removed = runner.invoke(cli, [*config, "subscribers", "remove", "bo@example.org"])
    assert (removed.exit_code, removed.stdout) == (0, "removed bo@example.org\n")
    old_list = tmp_path / "last-year.csv"
    old_list.write_text("email\n" + "\n".join(READERS) + "\n", encoding="utf-8")
    imported = runner.invoke(cli, [*config, "subscribers", "import", str(old_list)])
    assert (imported.exit_code, imported.stderr) == (
        0,
        f"warning: {old_list}:3: bo@example.org asked not to receive the digest; skipped\n",
    )
    assert _statuses(built) == {"ada@example.org": "active", "cy@example.org": "active"}
    (reason,) = _rows(built, "SELECT reason FROM suppressions")
    assert reason == ("unsubscribed",)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "spoil",
    [
        _forged,
        lambda token: token[:-5],
        lambda token: token.split(".", 1)[0],
        lambda token: "2." + token.split(".", 1)[1],  # another subscriber's id
        lambda token: "99." + token.split(".", 1)[1],  # nobody's id
        lambda _token: tokens.make_token(b"another site's secret!!", 1, "ada@example.org"),
        lambda _token: "",
        lambda token: token + "x",
    ],
    ids=[
        "changed-mac",
        "truncated",
        "id-only",
        "other-id",
        "unknown-id",
        "foreign",
        "empty",
        "long",
    ],
)
def test_spoiled_unsubscribe_links_get_400_and_change_nothing(shared, method, spoil):
    site, client = shared.site, shared.client
    mailed = shared.links
    token = _token(mailed["ada@example.org"])
    assert token.startswith("1.")
    bad = spoil(token)
    response = client.request(
        method,
        _unsubscribe_path(site),
        params={"token": bad},
        content=ONE_CLICK if method == "POST" else None,
        headers={"Content-Type": FORM} if method == "POST" else None,
    )
    assert response.status_code == 400
    assert BAD_UNSUBSCRIBE in response.text
    assert set(_statuses(site).values()) == {"active"}


def test_an_unsubscribe_without_a_token_gets_400(shared):
    site, client = shared.site, shared.client
    for method in ("GET", "POST"):
        response = client.request(method, _unsubscribe_path(site))
        assert response.status_code == 400
        assert BAD_UNSUBSCRIBE in response.text
    assert set(_statuses(site).values()) == {"active"}


# -- digest archive ----------------------------------------------------------------------


def test_the_archive_lists_digests_and_their_web_copies_hold_no_subscriber_data(
    built, client, mailed, clock, now
):
    tokens = {_token(link) for link in mailed.values()}
    _new_article(built)
    clock.now = now + timedelta(hours=2)
    assert digests.send_digests(built, now=clock).made == 2

    archive = client.get(_base(built) + "digests/")
    assert archive.status_code == 200
    assert "Past digests" in archive.text
    links = _digest_links(archive.text)
    assert links == [built.feeds.url + "digests/2/", built.feeds.url + "digests/1/"]

    for number, link in ((1, links[1]), (2, links[0])):
        copy = client.get(_local(link))
        assert copy.status_code == 200
        assert copy.headers["content-type"] == "text/html; charset=utf-8"
        assert (
            copy.content == (built.output_dir / "digests" / str(number) / "index.html").read_bytes()
        )
        for address in READERS:
            assert address not in copy.text
        for token in tokens:
            assert token not in copy.text
        assert "token=" not in copy.text


def test_an_empty_archive_says_so(built, client):
    archive = client.get(_base(built) + "digests/")
    assert archive.status_code == 200
    assert "Past digests" in archive.text
    assert _digest_links(archive.text) == []


# -- pages: headers and logs -------------------------------------------------------------


def test_pages_carry_a_csp_and_the_log_carries_no_tokens(built, client, mailed, caplog):
    caplog.set_level(logging.INFO, logger="publisher.web")
    link = _pending_link(client, built, "dee@example.org")
    unsubscribe = mailed["ada@example.org"]
    pages = [
        client.get(_base(built)),
        client.get(_base(built) + "digests/"),
        client.get(_local(link)),
        client.get(_local(unsubscribe)),
        client.post(_local(unsubscribe), content=ONE_CLICK, headers={"Content-Type": FORM}),
        client.get(_base(built) + "confirm", params={"token": "1.2.nonsense"}),
    ]
    assert [p.status_code for p in pages] == [200, 200, 200, 200, 200, 400]
    for response in pages:
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
    lines = [record.getMessage() for record in caplog.records if record.name == "publisher.web"]
    assert any(f"GET {_base(built)}confirm 200" in line for line in lines), lines
    assert any(f"POST {_unsubscribe_path(built)} 200" in line for line in lines), lines
    secrets_ = [_token(link), _token(unsubscribe), "nonsense"]
    for line in lines:
        assert "?" not in line
        for secret in secrets_:
            assert secret not in line
