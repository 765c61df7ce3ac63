"""`publisher serve`: feeds over HTTP, sign-up with double opt-in, the
subscribers' preferences page, one-click unsubscribe and the digest archive,
as one Starlette application.

create_app puts the parts together: the routes (paths.py) to the handlers
(handlers.py) and the output folder (files.py), inside the middleware stack
(middleware.py, files.py). run_server serves it with uvicorn. The state
database is shared with `publisher run` (WAL; each request opens its own
connection and waits on a busy lock instead of failing).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from datetime import datetime

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from publisher import templating
from publisher.config import SiteConfig
from publisher.delivery.senders import Sender
from publisher.errors import PublisherError
from publisher.web.confirmation import Confirmations
from publisher.web.files import (
    GZIP_MINIMUM_SIZE,
    FeedFiles,
    GzipValidators,
    HeadAsGet,
    SiteFiles,
    folder_redirect,
)
from publisher.web.handlers import Handlers
from publisher.web.middleware import (
    CLIENT_LIMIT,
    CLIENT_WINDOW,
    AccessLog,
    BodyLimit,
    ClientLimiter,
)
from publisher.web.pages import Pages
from publisher.web.paths import SitePaths
from publisher.web.webhooks import Webhooks

# The package's one logger: its lines are named "publisher.web", as the service's always were.
logger = logging.getLogger("publisher.web")


def create_app(
    site: SiteConfig,
    *,
    now: Callable[[], datetime],
    sender: Sender | None = None,
    client_limit: int = CLIENT_LIMIT,
    client_window: float = CLIENT_WINDOW,
    webhooks: Webhooks | None = None,
) -> Starlette:
    """The application for *site*. *sender* defaults to the site's [delivery].

    *webhooks* defaults to the providers [bounces] enables, their keys read
    from the environment.

    :raises ConfigError: when an enabled webhook's keys are not in the environment.
    """
    environment = templating.make_environment(site.templates_dir)
    paths = SitePaths.of(site)
    if webhooks is None and site.bounces.has_webhooks:
        webhooks = Webhooks(site, now=now)
    hooks = [] if webhooks is None else webhooks.routes(paths.webhooks)
    handlers = Handlers(
        site,
        pages=Pages(site, environment, paths),
        confirmations=Confirmations(site, environment, sender),
        limiter=ClientLimiter(client_limit, client_window),
        now=now,
    )
    return Starlette(
        routes=[*hooks, *_routes(site, paths, handlers)],
        exception_handlers={PublisherError: handlers.busy},
        middleware=[
            Middleware(AccessLog),
            Middleware(BodyLimit, large_prefix=paths.webhooks if hooks else None),
            Middleware(HeadAsGet),
            Middleware(GzipValidators),
            Middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_SIZE),
        ],
    )


def _routes(site: SiteConfig, paths: SitePaths, handlers: Handlers) -> list[BaseRoute]:
    """Every route the service answers; GET routes answer HEAD too.

    With pages, the site folder answers everything the routes before it do
    not (its home, articles, lists, digests and its 404 page); without, the
    service makes its own home page and digest archive.
    """
    routes: list[BaseRoute] = [
        _OwnRoute(paths.subscribe, handlers.subscribe, methods=["POST"]),
        _OwnRoute(paths.confirm, handlers.confirm, methods=["GET", "POST"]),
        _OwnRoute(paths.unsubscribe, handlers.unsubscribe, methods=["GET", "POST"]),
        _OwnRoute(paths.preferences, handlers.preferences, methods=["GET", "POST"]),
        Mount(paths.feeds, app=FeedFiles(directory=site.output_dir, html=True, check_dir=False)),
    ]
    if site.pages.enabled:
        pages = SiteFiles(directory=site.site_dir, html=True, check_dir=False)
        mount = paths.home.rstrip("/")  # "" at the root: the folder answers every path
        if mount:  # "/news", as a folder's address without its slash
            routes.append(Route(mount, _to_home(paths.home), methods=["GET"]))
        return [*routes, Mount(mount, app=pages)]
    return [
        Route(paths.home, handlers.home, methods=["GET"]),
        Route(paths.digests, handlers.digests, methods=["GET"]),
        *routes,
    ]


class _OwnRoute(Route):
    """A route of the service that answers its path whatever the method.

    Starlette tries a later route when the method does not match; the site
    folder mounted after these would then take a GET of /subscribe or a
    DELETE of /confirm and answer for it (a 404 page, or "Allow: GET, HEAD").
    Route itself answers 405 with the methods it allows.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        return (Match.FULL if match is Match.PARTIAL else match), child_scope


def _to_home(home: str) -> Callable[[Request], Response]:
    """The endpoint that moves base_url's path without its slash to the home page."""

    def endpoint(request: Request) -> Response:
        return folder_redirect(home, request.scope)

    return endpoint


def run_server(site: SiteConfig, *, host: str, port: int, now: Callable[[], datetime]) -> None:
    """Serve until SIGTERM or SIGINT (uvicorn finishes the requests in flight)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the signal after its graceful shutdown, so the
            # process would end "killed by SIGTERM"; a requested stop is a
            # clean exit (status 0), as for `publisher run`.
            previous = {
                sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                # The one start-up line at the default level: where to point the proxy.
                port = self.servers[0].sockets[0].getsockname()[1]
                shown = f"[{host}]" if ":" in host else host
                path = SitePaths.of(site).home
                logger.info("serving %s on http://%s:%d%s", site.title, shown, port, path)

    config = uvicorn.Config(
        create_app(site, now=now),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    Server(config).run()
