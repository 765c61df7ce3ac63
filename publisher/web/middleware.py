"""What stands between the network and the handlers: a cap on request
bodies, an access log that leaves query strings (and so tokens) out, the
per-client limit on sign-ups, and the same-origin check of the forms that
change a subscriber's choices.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

# The package's one logger: the access log is named "publisher.web" in every line.
logger = logging.getLogger("publisher.web")

MAX_BODY_BYTES = 8 * 1024
WEBHOOK_BODY_BYTES = 256 * 1024  # SNS's largest message
CLIENT_LIMIT = 5  # sign-ups per client ...
CLIENT_WINDOW = 600.0  # ... per this many seconds


class ClientLimiter:
    """At most `limit` events per client in `window` seconds (sliding, in memory)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.events: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self.lock:
            events = self.events.setdefault(client, deque())
            while events and now - events[0] > self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            if len(self.events) > 10_000:  # forget idle clients
                for key in [k for k, v in self.events.items() if not v]:
                    del self.events[key]
            return True


# Sec-Fetch-Site values of a request a page of this origin sent, or the person made.
_OWN_FETCHES = frozenset({"same-origin", "none"})


def origin_of(url: str) -> str:
    """The origin (RFC 6454) of an absolute URL, as a browser writes it in Origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_same_origin(request: Request, public: Iterable[str]) -> bool:
    """Whether a browser says the POST came from a page of this site.

    Its Origin must be the origin the request was sent to (scheme and Host),
    or one of *public* (the site's own origins, for a proxy that rewrites
    Host); "null" (a sandboxed or privacy-stripped page) is refused. Without
    Origin, Sec-Fetch-Site must not name another site. A client that sends
    neither (curl, a script) is let through: it still needs the subscriber's
    token, which is what a page elsewhere lacks.
    """
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        own = {f"{request.url.scheme}://{host}".lower(), *(o.lower() for o in public)}
        return origin.strip().lower() in own
    fetch = request.headers.get("sec-fetch-site")
    return fetch is None or fetch.strip().lower() in _OWN_FETCHES


class BodyLimit:
    """Refuse request bodies over MAX_BODY_BYTES with 413, declared or streamed.

    Paths under *large_prefix* (the providers' webhooks, whose notifications
    carry the original's headers) may send up to WEBHOOK_BODY_BYTES.
    """

    def __init__(self, app: ASGIApp, large_prefix: str | None = None) -> None:
        self.app = app
        self.large_prefix = large_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        large = self.large_prefix is not None and path.startswith(self.large_prefix)
        limit = WEBHOOK_BODY_BYTES if large else MAX_BODY_BYTES
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _too_large()(scope, receive, send)
                return
        received = 0

        async def limited() -> AsgiMessage:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLargeError:
            await _too_large()(scope, receive, send)


class _TooLargeError(Exception):
    pass


def _too_large() -> Response:
    return Response(
        "request body too large\n", status_code=413, media_type="text/plain; charset=utf-8"
    )


class AccessLog:
    """One line per request, without query strings: tokens stay out of the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def record(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            client = scope.get("client") or ("-", 0)
            logger.info(
                "%s %s %s %d %.1fms",
                client[0],
                scope["method"],
                scope["path"],
                status[0],
                (time.perf_counter() - started) * 1000,
            )
