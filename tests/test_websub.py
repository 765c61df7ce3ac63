"""WebSub: feeds advertise the hub, and a build pings it for the feeds that changed."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import feedparser
import pytest
from feedcheck import atom_problems, rss_problems

from publisher.config import load_config
from publisher.pipeline import build


class Hub:
    """A WebSub hub on 127.0.0.1 that records publish pings and answers `status`."""

    def __init__(self) -> None:
        self.pings: list[dict[str, list[str]]] = []
        self.status = 204
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hub.pings.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(hub.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def urls(self) -> list[str]:
        return sorted(url for ping in self.pings for url in ping["hub.url"])


@pytest.fixture
def hub():
    with Hub() as running:
        yield running


def _site_with_hub(site_dir, hub_url):
    config = site_dir / "publisher.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + f'\n[feeds]\nwebsub_hub = "{hub_url}"\n', encoding="utf-8")
    return load_config(config)


def _edit(site):
    path = site.content_dir / "2022-08-09-fisheries.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("nine", "ten"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_feeds_advertise_the_hub(site_dir, hub, now):
    site = _site_with_hub(site_dir, hub.url)
    build(site, now=now)
    rss = (site.output_dir / "rss.xml").read_bytes()
    atom = (site.output_dir / "atom.xml").read_bytes()
    document = json.loads((site.output_dir / "feed.json").read_text(encoding="utf-8"))
    assert document["hubs"] == [{"type": "WebSub", "url": hub.url}]
    for data in (rss, atom):
        parsed = feedparser.parse(data)
        assert not parsed.bozo
        assert {"rel": "hub", "href": hub.url} in [
            {"rel": link.get("rel"), "href": link.get("href")} for link in parsed.feed.links
        ]
        assert parsed.feed.link == "https://gazette.example/news/"  # the site, not the hub
    assert rss_problems(rss) == []
    assert atom_problems(atom) == []


def test_a_build_pings_for_changed_feeds_only(site_dir, hub, now):
    site = _site_with_hub(site_dir, hub.url)
    build(site, now=now)
    assert len(hub.urls()) == 18
    assert all(ping["hub.mode"] == ["publish"] for ping in hub.pings)
    hub.pings.clear()
    build(site, now=now)
    assert hub.pings == []
    _edit(site)
    build(site, now=now)
    feeds_url = "https://gazette.example/news/feeds/"
    assert hub.urls() == sorted(
        f"{feeds_url}{folder}{name}"
        for folder in ("", "tags/asia-pacific/")
        for name in ("atom.xml", "feed.json", "rss.xml")
    )


def test_a_failing_hub_never_fails_the_build_and_is_retried_after_the_next_change(
    site_dir, hub, now, caplog
):
    site = _site_with_hub(site_dir, hub.url)
    hub.status = 503
    report = build(site, now=now)
    assert len(report.written) == 18
    assert "answered 503" in caplog.text
    hub.status = 204
    hub.pings.clear()
    build(site, now=now)
    assert hub.pings == []  # nothing changed: no retry yet
    _edit(site)
    build(site, now=now)
    assert len(hub.urls()) == 18  # the 18 that failed, the 6 changed among them


def test_an_unreachable_hub_is_logged(site_dir, now, caplog):
    from smtp_server import free_port

    site = _site_with_hub(site_dir, f"http://127.0.0.1:{free_port()}/")
    report = build(site, now=now)
    assert len(report.written) == 18
    assert "cannot reach the hub" in caplog.text
