"""web.files: the output folder over HTTP.

Content types, validators, gzip and HEAD; nothing served from outside the folder, or from its
dot files.
"""

from __future__ import annotations

import gzip

import httpx
import pytest
from support.web import FEED_TYPES, base_path, feeds_path

from publisher.config import SiteConfig


@pytest.mark.parametrize(("name", "content_type"), FEED_TYPES.items())
def test_feeds_have_their_types_validators_and_caching(shared, name, content_type):
    site, client = shared.site, shared.client
    response = client.get(feeds_path(site) + name, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["etag"]
    assert response.headers["last-modified"]
    assert "content-encoding" not in response.headers
    assert response.content == (site.output_dir / name).read_bytes()


def test_conditional_requests_are_answered_304_without_a_body(shared):
    site, client = shared.site, shared.client
    url = feeds_path(site) + "rss.xml"
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
        "GET", feeds_path(site) + "atom.xml", headers={"Accept-Encoding": "gzip"}
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
    feed = client.head(feeds_path(site) + "feed.json", headers={"Accept-Encoding": "identity"})
    assert feed.status_code == 200
    assert feed.headers["content-type"] == FEED_TYPES["feed.json"]
    assert feed.headers["etag"]
    assert int(feed.headers["content-length"]) == (site.output_dir / "feed.json").stat().st_size
    assert feed.content == b""
    home = client.head(base_path(site))
    assert home.status_code == 200
    assert home.headers["content-type"] == "text/html; charset=utf-8"
    assert home.content == b""


def _served_files(site: SiteConfig) -> list[str]:
    """Paths of a feed of each type, the home page (also spelt out), a digest's web copy, an
    article's page, a tag's, a year's, the stylesheet and the sitemap."""
    pages = [
        "",
        "index.html",
        "digests/1/",
        "2021/03/observers/",
        "tags/elections/",
        "archive/2021/",
        "style.css",
        "sitemap.xml",
    ]
    return [
        *(feeds_path(site) + name for name in FEED_TYPES),
        *(base_path(site) + page for page in pages),
    ]


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


def _head_and_get(
    client: httpx.Client, path: str, headers: dict[str, str], status: int = 200
) -> tuple[dict, dict]:
    head = client.head(path, headers=headers)
    assert head.content == b""
    with client.stream("GET", path, headers=headers) as get:
        raw = b"".join(get.iter_raw())
    assert int(get.headers["content-length"]) == len(raw)
    assert head.status_code == get.status_code == status, path
    drop = {"date"}
    return (
        {k: v for k, v in head.headers.items() if k not in drop},
        {k: v for k, v in get.headers.items() if k not in drop},
    )


def test_head_answers_with_the_headers_get_would(shared):
    site, client = shared.site, shared.client
    pages = [base_path(site), base_path(site) + "digests/"]
    for path in [*_served_files(site), *pages]:
        for encoding in (IDENTITY, GZIP):
            head, get = _head_and_get(client, path, encoding)
            assert head == get, (path, encoding)
            assert ("content-encoding" in get) is (encoding is GZIP), (path, encoding)
    # A missing address (the site's 404 page) and a folder without its slash (a redirect).
    for path, status in ((base_path(site) + "nope/", 404), (base_path(site) + "tags", 301)):
        for encoding in (IDENTITY, GZIP):
            head, get = _head_and_get(client, path, encoding, status)
            assert head == get, (path, encoding)


def test_tag_feeds_are_served_under_tags(shared):
    site, client = shared.site, shared.client
    tags = sorted(path.name for path in (site.output_dir / "tags").iterdir())
    assert "elections" in tags
    for tag in tags:
        for name, content_type in FEED_TYPES.items():
            response = client.get(f"{feeds_path(site)}tags/{tag}/{name}")
            assert response.status_code == 200, (tag, name)
            assert response.headers["content-type"] == content_type
            assert response.content == (site.output_dir / "tags" / tag / name).read_bytes()
    assert client.get(f"{feeds_path(site)}tags/no-such-tag/rss.xml").status_code == 404


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
    path = feeds_path(site) + tail
    status, _headers, body = server.raw(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    assert status in (400, 404), path
    assert b"[site]" not in body  # publisher.toml
    assert b"root:" not in body  # /etc/passwd


def test_the_raw_request_reaches_the_feeds(shared):
    # The control for the test above: the same raw request for a real file.
    status, headers, body = shared.server.raw(
        f"GET {feeds_path(shared.site)}rss.xml HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    assert (status, headers["content-type"]) == (200, FEED_TYPES["rss.xml"])
    assert body == (shared.site.output_dir / "rss.xml").read_bytes()


def test_symlinks_leading_out_of_the_output_folder_are_not_followed(built, site_dir, client):
    (built.output_dir / "leak.xml").symlink_to(site_dir / "publisher.toml")
    (built.output_dir / "up").symlink_to(site_dir, target_is_directory=True)
    for path in ("leak.xml", "up/publisher.toml"):
        response = client.get(feeds_path(built) + path)
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
    feeds = feeds_path(built)
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
