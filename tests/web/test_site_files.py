"""web.files.SiteFiles: the site's pages served beside the service's own routes.

Types, caching and the page policy; folder addresses, the 404 page for every address the site
has no file for (dot-files and paths out of the folder among them); a site not built yet; a
base_url with a path and one at the root; and sign-up, confirmation and unsubscribe answering
beside the pages, or without them.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from support.service import append_config
from support.web import (
    CHECK_INBOX,
    FORM,
    ONE_CLICK,
    SUBSCRIBED,
    UNSUBSCRIBED,
    base_path,
    confirmation_link,
    confirmations_sent,
    digest_links,
    feeds_path,
    local_path,
    mail_digest,
    press,
    sign_up,
    subscriber_statuses,
    unsubscribe_form,
)
from support.web_server import WebServer

from publisher.config import SiteConfig, load_config
from publisher.content.markup import TABLE_ALIGNMENTS
from publisher.pipelines import build

HTML = "text/html; charset=utf-8"
PAGE_CACHING = "public, max-age=300"
NOT_FOUND_TITLE = "<title>Page not found · Test Gazette</title>"

# Each kind of file the site has (under base_url's path), and the type it is served with.
PAGES = {
    "": HTML,  # the home page
    "index.html": HTML,
    "2021/03/observers/": HTML,  # an article
    "2021/03/observers/index.html": HTML,
    "tags/": HTML,
    "tags/elections/": HTML,
    "archive/": HTML,
    "archive/2021/": HTML,
    "digests/": HTML,
    "digests/1/": HTML,  # a digest's web copy
    "style.css": "text/css; charset=utf-8",
    "sitemap.xml": "application/xml; charset=utf-8",
}
MISSING = ["nope/", "2021/03/missing/", "tags/none/", "nope", "2031/01/year-ahead/", "feeds"]


def _site_file(site: SiteConfig, page: str) -> Path:
    return site.site_dir / (page + "index.html" if page == "" or page.endswith("/") else page)


def _policy(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy as directive -> sources."""
    directives = [part.split() for part in response.headers["content-security-policy"].split(";")]
    return {words[0]: words[1:] for words in directives if words}


def _raw(server: WebServer, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """A request line sent as it is: a client would resolve the dots before sending."""
    return server.raw(
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )


def _assert_not_found_page(site: SiteConfig, status: int, headers: dict[str, str], body: bytes):
    """The site's 404.html with status 404, under the page policy, with nothing to revalidate."""
    assert status == 404
    assert body == (site.site_dir / "404.html").read_bytes()
    assert NOT_FOUND_TITLE.encode() in body
    assert headers["content-type"] == HTML
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-cache"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "etag" not in headers
    assert "last-modified" not in headers


# -- what each file goes out with ------------------------------------------------------


@pytest.mark.parametrize(("page", "content_type"), PAGES.items())
def test_pages_have_their_types_and_caching(shared, page, content_type):
    site, client = shared.site, shared.client
    response = client.get(base_path(site) + page, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == PAGE_CACHING
    assert response.headers["etag"]
    assert response.headers["last-modified"]
    assert response.content == _site_file(site, page).read_bytes()


def test_html_pages_may_load_their_stylesheet_and_run_no_script(shared):
    site, client = shared.site, shared.client
    for page, content_type in PAGES.items():
        response = client.get(base_path(site) + page)
        if content_type != HTML:
            # A stylesheet or a sitemap runs nothing a policy could stop.
            assert "content-security-policy" not in response.headers, page
            continue
        policy = _policy(response)
        assert policy["default-src"] == ["'none'"], page
        # style.css, and no inline style but a table cell's alignment, by its hash.
        style_src = policy["style-src"]
        assert style_src[:2] == ["'self'", "'unsafe-hashes'"], page
        alignments = [
            "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"
            for style in TABLE_ALIGNMENTS
        ]
        assert style_src[2:] == alignments, page
        assert policy["form-action"] == ["'self'"], page  # the sign-up form
        assert policy["frame-ancestors"] == ["'none'"], page
        assert policy["base-uri"] == ["'none'"], page
        assert not {"script-src", "script-src-elem", "script-src-attr"} & policy.keys(), page
        sources = {source for values in policy.values() for source in values}
        assert not sources & {"'unsafe-inline'", "'unsafe-eval'", "*"}, page
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


# -- addresses -------------------------------------------------------------------------


def test_a_folder_without_its_slash_moves_to_the_folder(shared):
    site, client, base = shared.site, shared.client, base_path(shared.site)
    moves = {
        base + "2021/03/observers": base + "2021/03/observers/",
        base + "tags/elections?from=mail": base + "tags/elections/?from=mail",
        base.rstrip("/"): base,  # the home page's folder
    }
    for asked, location in moves.items():
        for method in ("GET", "HEAD"):
            response = client.request(method, asked)
            assert response.status_code == 301, (method, asked)
            # Path-absolute: the client keeps the scheme and host it asked with (the proxy's).
            assert response.headers["location"] == location, (method, asked)
            assert response.headers["cache-control"] == PAGE_CACHING
        followed = client.get(asked, follow_redirects=True)
        assert followed.status_code == 200
        assert (
            followed.content == _site_file(site, urlsplit(location).path[len(base) :]).read_bytes()
        )


def test_a_folder_asked_with_doubled_slashes_moves_inside_the_site(shared):
    # "//host/" in a Location would send the browser to another host.
    base = base_path(shared.site)
    for asked in (base + "/2021/03/observers", base + "2021//03/observers"):
        status, headers, _body = _raw(shared.server, "GET", asked)
        assert status == 301, asked
        assert headers["location"] == base + "2021/03/observers/", asked


def test_a_folder_with_letters_beyond_ascii_moves_to_its_quoted_address(built, server):
    # Tag slugs keep Cyrillic and CJK letters: the folder's name is quoted in the Location.
    folder = built.site_dir / "tags" / "україна"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>Україна</title>", encoding="utf-8")
    asked = base_path(built) + "tags/" + quote("україна")
    status, headers, _body = _raw(server, "GET", asked)
    assert (status, headers["location"]) == (301, asked + "/")
    status, _headers, body = _raw(server, "GET", asked + "/")
    assert (status, body) == (200, (folder / "index.html").read_bytes())


@pytest.mark.parametrize("page", MISSING)
def test_an_address_without_a_page_gets_the_404_page(shared, page):
    site, client = shared.site, shared.client
    path = base_path(site) + page
    response = client.get(path, headers={"Accept-Encoding": "identity"})
    _assert_not_found_page(site, response.status_code, dict(response.headers), response.content)
    head = client.head(path, headers={"Accept-Encoding": "identity"})
    assert head.status_code == 404
    assert head.content == b""
    assert {k: v for k, v in head.headers.items() if k != "date"} == {
        k: v for k, v in response.headers.items() if k != "date"
    }
    # A validator of the 404 page itself makes no 304 of a missing address.
    etag = client.get(base_path(site) + "404.html").headers["etag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 404
    assert NOT_FOUND_TITLE in again.text


def test_dot_files_in_the_site_are_never_served(built, server, client):
    # The temp files a build stages beside the pages it writes, and what a killed one left.
    site, base = built.site_dir, base_path(built)
    staged = {
        "2021/03/observers/.index.html.4242-0a1b2c3d.tmp": b"<!doctype html>STAGED article",
        ".index.html.4242-9f8e7d6c.tmp": b"<!doctype html>STAGED home page",
        ".sitemap.xml.77-ab12.tmp": b"<?xml STAGED",
        ".hidden/index.html": b"<!doctype html>STAGED hidden folder",
    }
    for name, data in staged.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    paths = [
        *(base + name for name in staged),
        base + ".hidden/",
        base + ".hidden",
        base + "%2eindex.html.4242-9f8e7d6c.tmp",
        base + "2021/03/observers/%2Eindex.html.4242-0a1b2c3d.tmp",
        base + "tags/../.index.html.4242-9f8e7d6c.tmp",
    ]
    for path in paths:
        status, headers, body = _raw(server, "GET", path)
        _assert_not_found_page(built, status, headers, body)
        assert b"STAGED" not in body
        status, _headers, body = _raw(server, "HEAD", path)
        assert (status, body) == (404, b""), path
    # The pages beside them are served as ever.
    assert (
        client.get(base + "2021/03/observers/").content
        == (site / "2021/03/observers/index.html").read_bytes()
    )


def test_paths_out_of_the_site_folder_get_the_404_page(built, site_dir, server):
    (site_dir / "secret").write_text("SECRET: not a page\n", encoding="utf-8")
    base = base_path(built)
    tails = [
        "..%2F..%2Fpublisher.toml",
        "..%2fpublisher.toml",
        "%2e%2e/secret",
        "%2E%2E/secret",
        "../secret",
        "..%5csecret",
        "2021/../../secret",
        "2021/%2e%2e/%2e%2e/publisher.toml",
        "%2e%2e%2f%2e%2e%2fetc/passwd",
        "../../../../../../../../etc/passwd",
        "%2fetc/passwd",
        "..",
        "%00",
    ]
    for tail in tails:
        for method in ("GET", "HEAD"):
            status, headers, body = _raw(server, method, base + tail)
            assert b"SECRET" not in body, tail
            assert b"[site]" not in body, tail  # publisher.toml
            assert b"root:" not in body, tail  # /etc/passwd
            if method == "GET":
                _assert_not_found_page(built, status, headers, body)
            else:
                assert (status, body) == (404, b""), tail


def test_the_feeds_mount_wins_over_a_page_path(built, client):
    # A folder of the site that shares the feeds' path is never reached.
    decoy = built.site_dir / "feeds"
    decoy.mkdir()
    (decoy / "rss.xml").write_bytes(b"<rss>decoy</rss>")
    (decoy / "index.html").write_bytes(b"<!doctype html>decoy")
    feed = client.get(feeds_path(built) + "rss.xml")
    assert feed.status_code == 200
    assert feed.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert feed.content == (built.output_dir / "rss.xml").read_bytes()
    missing = client.get(feeds_path(built) + "index.html")
    assert missing.status_code == 404
    assert "decoy" not in missing.text


# -- a site not built yet --------------------------------------------------------------


def test_a_site_not_built_yet_answers_404_until_a_build_writes_its_pages(site, clock, now):
    assert not site.site_dir.exists()
    with (
        WebServer(site, now=clock) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        for path in (base_path(site), base_path(site) + "2021/03/observers/"):
            for method in ("GET", "HEAD"):
                response = client.request(method, path)
                assert response.status_code == 404, (method, path)
                assert response.headers["content-type"] == "text/plain; charset=utf-8"
                assert response.content == (b"Not Found" if method == "GET" else b"")
        assert client.get(feeds_path(site) + "rss.xml").status_code == 404

        build.build(site, now=now)  # the same server, not restarted
        home = client.get(base_path(site))
        assert home.status_code == 200
        assert home.content == (site.site_dir / "index.html").read_bytes()
        article = client.get(base_path(site) + "2021/03/observers/")
        assert article.content == (site.site_dir / "2021/03/observers/index.html").read_bytes()
        assert client.get(feeds_path(site) + "rss.xml").status_code == 200
        missing = client.get(base_path(site) + "nope/")
        _assert_not_found_page(site, missing.status_code, dict(missing.headers), missing.content)


# -- the service's own routes ----------------------------------------------------------


def _sign_up_confirm_and_leave(client: httpx.Client, site: SiteConfig, mailed: dict[str, str]):
    """POST /subscribe, GET and POST /confirm, GET and POST /unsubscribe, as readers do."""
    signed = sign_up(client, site, "dee@example.org")
    assert (signed.status_code, CHECK_INBOX in signed.text) == (200, True)
    link = confirmation_link(confirmations_sent(site)[-1])
    confirmed = press(client, link)  # GET shows the button, POST presses it
    assert (confirmed.status_code, SUBSCRIBED in confirmed.text) == (200, True)

    leave = mailed["ada@example.org"]
    shown = client.get(local_path(leave))
    assert shown.status_code == 200
    action = unsubscribe_form(shown.text, leave).get("action") or leave
    done = client.post(local_path(action), content=ONE_CLICK, headers={"Content-Type": FORM})
    assert (done.status_code, UNSUBSCRIBED in done.text) == (200, True)
    assert subscriber_statuses(site) == {
        "ada@example.org": "unsubscribed",
        "bo@example.org": "active",
        "cy@example.org": "active",
        "dee@example.org": "active",
    }


def _assert_own_methods(client: httpx.Client, site: SiteConfig) -> None:
    """Each route of the service answers its path for every method: 405 with its own Allow."""
    base = base_path(site)
    allowed = {
        ("GET", "subscribe"): {"POST"},
        ("DELETE", "subscribe"): {"POST"},
        ("PUT", "confirm"): {"GET", "HEAD", "POST"},
        ("PATCH", "unsubscribe"): {"GET", "HEAD", "POST"},
    }
    for (method, route), methods in allowed.items():
        response = client.request(method, base + route)
        assert response.status_code == 405, (method, route)
        assert set(response.headers["allow"].split(", ")) == methods, (method, route)


def test_the_service_answers_its_routes_beside_the_pages(built, client, mailed):
    _sign_up_confirm_and_leave(client, built, mailed)
    _assert_own_methods(client, built)
    home = client.get(base_path(built))
    assert home.content == (built.site_dir / "index.html").read_bytes()  # a file, not a handler


def test_without_pages_the_service_makes_its_home_and_digest_archive(make_site, clock, now):
    site_dir = make_site("basic")
    append_config(site_dir, "\n[pages]\nenabled = false\n")
    site = load_config(site_dir / "publisher.toml")
    build.build(site, now=now)
    mailed = mail_digest(site, clock)
    assert not site.site_dir.exists()
    with (
        WebServer(site, now=clock) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        base = base_path(site)
        home = client.get(base)
        assert home.status_code == 200
        assert home.headers["cache-control"] == "no-store"  # made per request by the service
        assert "Latest articles" in home.text
        assert "Observers find an orderly vote" in home.text
        assert f'action="{base}subscribe"' in home.text

        archive = client.get(base + "digests/")
        assert archive.status_code == 200
        assert "Past digests" in archive.text
        (link,) = digest_links(archive.text)
        assert link == site.feeds.url + "digests/1/"
        copy = client.get(local_path(link))
        assert copy.status_code == 200
        assert copy.headers["content-type"] == HTML
        assert copy.content == (site.output_dir / "digests" / "1" / "index.html").read_bytes()

        assert client.get(base + "2021/03/observers/").status_code == 404
        _sign_up_confirm_and_leave(client, site, mailed)
        _assert_own_methods(client, site)


# -- base_url at the root --------------------------------------------------------------


def test_a_site_at_the_root_of_its_host(make_site, clock, now):
    site_dir = make_site("basic")
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "https://gazette.example/news/", "https://meridian.example/"
        ),
        encoding="utf-8",
    )
    site = load_config(config)
    assert (base_path(site), feeds_path(site)) == ("/", "/feeds/")
    build.build(site, now=now)
    mailed = mail_digest(site, clock)
    (site.site_dir / ".index.html.4242-0a1b2c3d.tmp").write_bytes(b"<!doctype html>half")
    (site.site_dir / "feeds").mkdir()
    (site.site_dir / "feeds" / "rss.xml").write_bytes(b"<rss>decoy</rss>")
    with (
        WebServer(site, now=clock) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        for page in ("", "2021/03/observers/", "tags/elections/", "digests/1/", "style.css"):
            response = client.get("/" + page)
            assert response.status_code == 200, page
            assert response.content == _site_file(site, page).read_bytes(), page
        feed = client.get("/feeds/rss.xml")
        assert feed.content == (site.output_dir / "rss.xml").read_bytes()

        moved = client.get("/2021/03/observers?from=mail")
        assert (moved.status_code, moved.headers["location"]) == (
            301,
            "/2021/03/observers/?from=mail",
        )
        status, headers, _body = _raw(server, "GET", "//tags")
        assert (status, headers["location"]) == (301, "/tags/")

        for path in ("/nope/", "/.index.html.4242-0a1b2c3d.tmp", "/%2e%2e/publisher.toml"):
            status, headers, body = _raw(server, "GET", path)
            _assert_not_found_page(site, status, headers, body)

        _sign_up_confirm_and_leave(client, site, mailed)
        _assert_own_methods(client, site)
