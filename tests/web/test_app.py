"""web.app: the routes a site's service answers, and `publisher serve` as a process.

Its start-up line, its access log without tokens, its clean stop on SIGTERM.
"""

from __future__ import annotations

import re
import signal

import pytest
from support.processes import run_publisher, start_publisher
from support.smtp_server import free_port
from support.web import base_path


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
@pytest.mark.parametrize("route", ["", "subscribe", "confirm"])
def test_other_methods_get_405(shared, method, route):
    site, client = shared.site, shared.client
    response = client.request(method, base_path(site) + route, content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"]


def test_serve_answers_logs_without_tokens_and_stops_on_sigterm(site_dir):
    import httpx

    assert run_publisher(site_dir, "build").returncode == 0
    port = free_port()
    process = start_publisher(site_dir, "serve", "--port", str(port))
    try:
        assert process.stderr is not None
        # Without -v, the one line at start-up, once it listens: where it is.
        address = f"http://127.0.0.1:{port}/news/"
        assert (
            process.stderr.readline() == f"INFO: publisher.web: serving Test Gazette on {address}\n"
        )
        response = httpx.get(address + "?token=secret-value")
        assert response.status_code == 200
        feed = httpx.get(f"http://127.0.0.1:{port}/news/feeds/rss.xml")
        assert feed.headers["content-type"] == "application/rss+xml; charset=utf-8"
    finally:
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert re.search(r"INFO: publisher\.web: 127\.0\.0\.1 GET /news/ 200 ", stderr)
    assert "GET /news/feeds/rss.xml 200" in stderr
    assert "secret-value" not in stderr
