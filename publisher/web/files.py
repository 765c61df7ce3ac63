"""The output folders over HTTP: the feeds, and the site's pages.

FeedFiles serves the feeds' folder with each feed's registered type,
validators (ETag, Last-Modified, 304) and caching; SiteFiles serves the pages
the same way, with a policy that lets a page load nothing from elsewhere and
the site's 404 page for any address it does not have, and a folder's address
without its slash moved to the folder (301). HeadAsGet and
GzipValidators sit around them in the middleware stack so HEAD and gzip
answers keep the headers and validators GET and identity answers have.
"""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from publisher.content.markup import TABLE_ALIGNMENTS
from publisher.model import FEED_FILES, FEED_MEDIA_TYPES
from publisher.pages.plan import NOT_FOUND

FEED_TYPES = {FEED_FILES[f]: f"{FEED_MEDIA_TYPES[f]}; charset=utf-8" for f in FEED_FILES}
FILE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
}
FEED_CACHE_CONTROL = "public, max-age=300"
# A missing address may be the next build's page (a scheduled article): asked again each time.
MISSING_CACHE_CONTROL = "no-cache"


def _style_hashes(styles: tuple[str, ...]) -> str:
    """CSP hash sources for the style attributes whose value is exactly one of *styles*."""
    digests = (base64.b64encode(hashlib.sha256(style.encode()).digest()) for style in styles)
    return " ".join(f"'sha256-{digest.decode()}'" for digest in digests)


# A static page needs its own stylesheet and images, and posts only its sign-up form. Its
# one kind of inline style is a table cell's alignment (content.markup): 'unsafe-hashes'
# lets a style attribute with one of those values apply, and no other (CSP Level 3,
# https://www.w3.org/TR/CSP3/#unsafe-hashes-usage).
PAGE_POLICY = (
    f"default-src 'none'; style-src 'self' 'unsafe-hashes' {_style_hashes(TABLE_ALIGNMENTS)}; "
    "img-src 'self' https: data:; media-src 'self' https:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
GZIP_MINIMUM_SIZE = 500  # bytes; smaller bodies go out as they are
GZIP_TAG = "-gzip"  # "etag" of a body becomes "etag-gzip" once compressed


class FeedFiles(StaticFiles):
    """The output folder: feeds with their registered types, validators and caching.

    StaticFiles already answers ETag / If-None-Match and Last-Modified /
    If-Modified-Since with 304, refuses paths that leave the folder, and
    handles HEAD. Dot-files are never served: the temp file of a write in
    flight, or one a killed run left behind, is not part of the site.
    """

    async def check_config(self) -> None:
        """A folder not made yet (no build has run on this machine) answers 404, not 500."""
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        # *path* is normalised ("a/../.x" is ".x"); "." alone is the folder itself.
        if any(part.startswith(".") for part in Path(path).parts if part != "."):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)

    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Response:
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result)
        self.describe(response, Path(str(full_path)).name)
        if not self.is_not_modified(response.headers, Headers(scope=scope)):
            return response
        # A 304 carries the validators the 200 would (RFC 9110 §15.4.5): the
        # gzip body's ETag when that is the body this client would get.
        if _is_compressible(response.headers):
            response.headers["vary"] = "Accept-Encoding"
            if "gzip" in Headers(scope=scope).get("accept-encoding", ""):
                response.headers["etag"] = _gzip_tag(response.headers["etag"])
        return NotModifiedResponse(response.headers)

    def describe(self, response: Response, name: str) -> None:
        """The type, caching and policy headers the file *name* goes out with."""
        if name in FEED_TYPES:
            response.headers["content-type"] = FEED_TYPES[name]
        elif Path(name).suffix in FILE_TYPES:
            response.headers["content-type"] = FILE_TYPES[Path(name).suffix]
        response.headers["cache-control"] = FEED_CACHE_CONTROL
        response.headers["x-content-type-options"] = "nosniff"
        self.add_headers(response)

    def add_headers(self, response: Response) -> None:
        """What a kind of file adds to the common headers."""


class SiteFiles(FeedFiles):
    """The site's pages: as the feeds, and each HTML page under a policy that loads nothing
    from elsewhere (no script can run, whatever an article holds).

    StaticFiles decides what a path is; this gives its two other answers the
    site's shape. Any address without a file (missing, a dot-file, a path
    leaving the folder) gets 404.html, and a folder without its slash moves to it.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as err:
            if err.status_code != 404:
                raise
            return await self.not_found()
        if response.status_code == 404:  # StaticFiles' own answer with 404.html: bare
            return await self.not_found()
        if isinstance(response, RedirectResponse):
            return folder_redirect(scope.get("root_path", "") + "/" + quote(path) + "/", scope)
        return response

    async def not_found(self) -> Response:
        """The site's 404 page, with status 404; before the first build, a plain 404.

        The page stands for no resource here: it carries no validators, so a
        conditional request for a missing address can never be answered 304.
        """
        full_path, stat_result = await anyio.to_thread.run_sync(self.lookup_path, NOT_FOUND)
        if stat_result is None or not stat.S_ISREG(stat_result.st_mode):
            raise HTTPException(status_code=404)
        response = FileResponse(full_path, status_code=404, stat_result=stat_result)
        self.describe(response, NOT_FOUND)
        for name in ("etag", "last-modified", "accept-ranges"):
            del response.headers[name]
        response.headers["cache-control"] = MISSING_CACHE_CONTROL
        return response

    def add_headers(self, response: Response) -> None:
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers["content-security-policy"] = PAGE_POLICY
            response.headers["referrer-policy"] = "strict-origin-when-cross-origin"


def folder_redirect(location: str, scope: Scope) -> Response:
    """A folder's address without its slash moves, for good, to *location*, the folder's.

    As nginx answers a folder: the page's canonical URL is the folder's. The
    location is path-absolute (RFC 9110 §10.2.2), so the client keeps the
    scheme and host it asked the proxy with, and is built from the normalised
    path, so "//host" spelt in a request cannot become another host. The
    query string goes along.
    """
    query = scope.get("query_string", b"").decode("latin-1")
    return RedirectResponse(
        location + (f"?{query}" if query else ""),
        status_code=301,
        headers={"cache-control": FEED_CACHE_CONTROL},
    )


def _is_compressible(headers: MutableHeaders) -> bool:
    """Whether GZipMiddleware compresses this body for a client that accepts gzip."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    kinds = {media_type, media_type.partition("/")[0] + "/*"}
    size = int(headers.get("content-length", "0"))
    return size >= GZIP_MINIMUM_SIZE and kinds.isdisjoint(DEFAULT_EXCLUDED_CONTENT_TYPES)


class HeadAsGet:
    """HEAD is answered as GET would be, without the body (RFC 9110 §9.3.2).

    Static files answer HEAD with the headers alone, and the gzip middleware,
    seeing no body, then leaves out the Content-Encoding, the compressed
    Content-Length and the Vary that GET would carry.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] in ("http.response.body", "http.response.pathsend"):
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class GzipValidators:
    """A compressed body gets its own ETag (`"x"` becomes `"x-gzip"`); either gets its 304.

    A strong ETag promises the same bytes: shared by the gzip and identity
    bodies, a cache could take one for the other. Outside the gzip middleware
    this sees the final headers; the static files inside see the plain tag
    of any gzip tag a client sends back, so either validator matches.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [
            (name, _plain_tags(value) if name == b"if-none-match" else value)
            for name, value in scope["headers"]
        ]

        async def tagged(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                etag = response_headers.get("etag")
                if etag and response_headers.get("content-encoding") == "gzip":
                    response_headers["etag"] = _gzip_tag(etag)
            await send(message)

        await self.app({**scope, "headers": headers}, receive, tagged)


def _gzip_tag(etag: str) -> str:
    return etag[:-1] + GZIP_TAG + '"' if etag.endswith('"') else etag


def _plain_tags(if_none_match: bytes) -> bytes:
    """If-None-Match with each gzip entity tag made plain (`W/` kept)."""
    suffix = GZIP_TAG.encode() + b'"'
    tags = [tag.strip() for tag in if_none_match.split(b",")]
    return b", ".join(tag[: -len(suffix)] + b'"' if tag.endswith(suffix) else tag for tag in tags)
