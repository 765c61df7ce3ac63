"""A built site served by uvicorn on 127.0.0.1, and httpx clients for it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from support.clock import NOW, Clock
from support.paths import SITES
from support.web import (
    Shared,
    choosing_site,
    mail_digest,
    query_rows,
    subscriber_statuses,
)
from support.web_server import WebServer

from publisher.config import SiteConfig, load_config
from publisher.pipelines import build


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


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    # Starting and stopping uvicorn costs ~0.2 s; read-only tests share one server.
    folder = shutil.copytree(SITES / "basic", tmp_path_factory.mktemp("shared") / "basic")
    site = load_config(folder / "publisher.toml")
    build.build(site, now=NOW)
    links = mail_digest(site, Clock(NOW))
    with (
        WebServer(site, now=Clock(NOW)) as server,
        httpx.Client(base_url=server.origin, timeout=10) as http,
    ):
        yield Shared(site, server, http, links)
    assert set(subscriber_statuses(site).values()) == {"active"}
    assert query_rows(site, "SELECT * FROM signups") == []
    assert not (site.delivery.outbox_dir / "confirmations").exists()


@pytest.fixture
def choosing(make_site, now: datetime) -> SiteConfig:
    """tests/sites/basic with topics and cadences to choose, built, READERS subscribed."""
    return choosing_site(make_site("basic"), now)


@pytest.fixture
def choosing_client(choosing: SiteConfig, clock: Clock) -> Iterator[httpx.Client]:
    with (
        WebServer(choosing, now=clock) as running,
        httpx.Client(base_url=running.origin, timeout=10) as http,
    ):
        yield http


@pytest.fixture
def mailed(built: SiteConfig, clock: Clock) -> dict[str, str]:
    return mail_digest(built, clock)
