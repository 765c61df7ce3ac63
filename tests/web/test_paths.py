"""web.paths: the routes follow the site's public URLs."""

from __future__ import annotations

from dataclasses import replace

import httpx
from support.web_server import WebServer

from publisher.config import load_config
from publisher.pipelines.build import build
from publisher.web.paths import SitePaths


def test_the_routes_are_the_paths_of_the_site_s_public_urls(site):
    assert SitePaths.of(site) == SitePaths(
        home="/news/",
        subscribe="/news/subscribe",
        confirm="/news/confirm",
        unsubscribe="/news/unsubscribe",
        preferences="/news/preferences",
        digests="/news/digests/",
        feeds="/news/feeds",
        webhooks="/news/webhooks/",
    )


def test_feeds_and_unsubscribe_may_live_apart_from_the_home_page(site):
    moved = replace(
        site,
        base_url="https://gazette.example/",
        feeds=replace(site.feeds, url="https://gazette.example/syndication/"),
        digest=replace(
            site.digest,
            unsubscribe_url="https://gazette.example/mail/leave",
            preferences_url="https://gazette.example/mail/choose",
        ),
    )
    assert SitePaths.of(moved) == SitePaths(
        home="/",
        subscribe="/subscribe",
        confirm="/confirm",
        unsubscribe="/mail/leave",
        preferences="/mail/choose",
        digests="/digests/",
        feeds="/syndication",
        webhooks="/webhooks/",
    )


def test_urls_without_a_path_still_give_routes(site):
    bare = replace(
        site,
        base_url="https://gazette.example",
        feeds=replace(site.feeds, url="https://gazette.example/"),
        digest=replace(
            site.digest,
            unsubscribe_url="https://gazette.example",
            preferences_url="https://gazette.example",
        ),
    )
    paths = SitePaths.of(bare)
    assert (paths.home, paths.subscribe, paths.unsubscribe, paths.preferences, paths.feeds) == (
        "/",
        "/subscribe",
        "/unsubscribe",
        "/preferences",
        "/feeds",
    )


def test_the_service_answers_where_the_configuration_says(site_dir, now):
    config = site_dir / "publisher.toml"
    text = config.read_text(encoding="utf-8").replace(
        'base_url = "https://gazette.example/news/"', 'base_url = "https://gazette.example/"'
    )
    config.write_text(
        text + '\n[feeds]\nurl = "https://gazette.example/syndication/"\n\n'
        '[digest]\nunsubscribe_url = "https://gazette.example/mail/leave"\n'
        'preferences_url = "https://gazette.example/mail/choose"\n',
        encoding="utf-8",
    )
    site = load_config(config)
    build(site, now=now)
    with (
        WebServer(site, now=lambda: now) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        assert client.get("/").status_code == 200
        assert client.get("/digests/").status_code == 200
        feed = client.get("/syndication/rss.xml")
        assert feed.content == (site.output_dir / "rss.xml").read_bytes()
        assert client.get("/mail/leave").status_code == 400  # there, but a token is wanted
        assert client.get("/mail/choose").status_code == 400
        assert client.get("/news/").status_code == 404
        assert client.get("/news/feeds/rss.xml").status_code == 404
