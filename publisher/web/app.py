"""`publisher serve`: feeds over HTTP, sign-up with double opt-in, one-click
unsubscribe and the digest archive, as one Starlette application.

Links in messages change state only on POST: a GET (or HEAD) of a
confirmation or unsubscribe link shows a page with one button, so a mail
provider's link scanner changes nothing.

Routes follow the site's URLs: the home page at base_url's path, feeds at
[feeds] url's path, unsubscribe at [digest] unsubscribe_url's path. The state
database is shared with `publisher run` (WAL; each request opens its own
connection and waits on a busy lock instead of failing).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from publisher import templating
from publisher.config import SiteConfig
from publisher.delivery.senders import Sender
from publisher.errors import PublisherError, StoreError, SubscriberError
from publisher.mail import signups, subscribers
from publisher.model import Subscriber
from publisher.store import Store, open_store
from publisher.web.confirmation import Confirmations
from publisher.web.files import GZIP_MINIMUM_SIZE, FeedFiles, GzipValidators, HeadAsGet
from publisher.web.forms import read_form
from publisher.web.middleware import (
    CLIENT_LIMIT,
    CLIENT_WINDOW,
    AccessLog,
    BodyLimit,
    ClientLimiter,
)

logger = logging.getLogger("publisher.web")

HONEYPOT_FIELD = "website"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' "
    "https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(
    site: SiteConfig,
    *,
    now: Callable[[], datetime] = _now,
    sender: Sender | None = None,
    client_limit: int = CLIENT_LIMIT,
    client_window: float = CLIENT_WINDOW,
) -> Starlette:
    """The application for *site*. *sender* defaults to the site's [delivery]."""
    environment = templating.make_environment(site.templates_dir)
    confirmations = Confirmations(site, environment, sender)
    limiter = ClientLimiter(client_limit, client_window)
    base = urlsplit(site.base_url).path or "/"
    feeds_path = urlsplit(site.feeds.url).path.rstrip("/") or "/feeds"
    unsubscribe_path = urlsplit(site.digest.unsubscribe_url).path or "/unsubscribe"
    confirm_path = base + "confirm"
    secret_holder: list[bytes] = []

    def secret() -> bytes:
        if not secret_holder:
            secret_holder.append(subscribers.load_secret(site.state_dir))
        return secret_holder[0]

    def store() -> Store:
        return open_store(site.state_db)

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templating.render_template(
            environment,
            f"web/{template}",
            site=site,
            base=base,
            feeds_url=site.feeds.url,
            subscribe_url=base + "subscribe",
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def home(_request: Request) -> Response:
        # Keys for all, full records for the ten shown: a page view on a site of
        # 10,000 articles should not build 10,000 articles.
        moment = now()
        with store() as db:
            keys = [k for k in db.article_keys() if k.is_published(moment)]
            keys.sort(key=lambda k: (k.date, k.id), reverse=True)
            latest = db.articles(k.id for k in keys[:10])
        articles = [latest[k.id] for k in keys[:10] if k.id in latest]
        return page("home.html.j2", articles=articles, honeypot=HONEYPOT_FIELD)

    async def subscribe(request: Request) -> Response:
        form = await read_form(request)
        client = request.client.host if request.client else "unknown"
        # SQLite (which may wait on `publisher run`'s lock) and SMTP block:
        # off the event loop, so one slow sign-up cannot stall every request.
        return await run_in_threadpool(answer_signup, form, client)

    def answer_signup(form: dict[str, str] | None, client: str) -> Response:
        if form is None:
            return page(
                "message.html.j2",
                400,
                title="That form could not be read",
                message="Please go back and submit the sign-up form again.",
            )
        if not limiter.allow(client):
            response = page(
                "message.html.j2",
                429,
                title="Too many sign-ups",
                message="Too many sign-ups from your network; please try again in a few minutes.",
            )
            response.headers["Retry-After"] = str(int(client_window))
            return response
        if form.get(HONEYPOT_FIELD, "").strip():
            logger.info("sign-up from %s ignored: the honeypot field was filled", client)
            return _check_inbox(page)
        address, name = form.get("email", ""), form.get("name", "")
        key = secret()  # outside the try: a bad secret is the operator's error, not the visitor's
        try:
            with store() as db, db.transaction():
                request_ = signups.request_signup(db, key, address, name, client=client, now=now())
        except SubscriberError as err:
            return page(
                "message.html.j2",
                400,
                title="That address will not work",
                message=f"{err.message}. Please check it and try again.",
                link=base,
                link_text="Back to the sign-up form",
            )
        if request_.token is not None:
            try:
                confirmations.send(request_.email, request_.token, now())
            except PublisherError as err:
                logger.error("confirmation to %s not sent: %s", request_.email, err)
                return page(
                    "message.html.j2",
                    503,
                    title="Please try again later",
                    message="We could not send the confirmation message just now.",
                )
        return _check_inbox(page)

    async def confirm(request: Request) -> Response:
        # GET and HEAD (a person, or a mail provider's link scanner) only show
        # the page; its one button POSTs back here, and only that subscribes.
        token = request.query_params.get("token", "")
        if request.method == "POST":
            if await read_form(request) is None:
                return page(
                    "message.html.j2",
                    400,
                    title="That form could not be read",
                    message="Please open the link in the email again and press the button.",
                )
            return await run_in_threadpool(do_confirm, token)
        return await run_in_threadpool(confirm_page, token)

    def bad_link(err: SubscriberError) -> Response:
        return page(
            "message.html.j2",
            400,
            title="That link did not work",
            message=f"{err.message[0].upper()}{err.message[1:]}.",
            link=base,
            link_text="Sign up again",
        )

    def subscribed(subscriber: Subscriber) -> Response:
        return page(
            "message.html.j2",
            title="You are subscribed",
            message=f"{subscriber.email} will receive the next {site.title} digest.",
        )

    def confirm_page(token: str) -> Response:
        key = secret()
        try:
            with store() as db:
                checked = signups.check_confirmation(db, key, token, now=now())
        except SubscriberError as err:
            return bad_link(err)
        if checked.subscriber is not None:  # already confirmed: nothing left to press
            return subscribed(checked.subscriber)
        return page("confirm.html.j2", email=checked.email, token=token, action=confirm_path)

    def do_confirm(token: str) -> Response:
        key = secret()
        try:
            with store() as db, db.transaction():
                subscriber = signups.confirm(db, key, token, now=now())
        except SubscriberError as err:
            return bad_link(err)
        return subscribed(subscriber)

    async def unsubscribe(request: Request) -> Response:
        token = request.query_params.get("token", "")
        if request.method == "POST":
            await request.body()  # RFC 8058: "List-Unsubscribe=One-Click"; the token is the key
            return await run_in_threadpool(do_unsubscribe, token)
        return await run_in_threadpool(unsubscribe_page, token)

    def do_unsubscribe(token: str) -> Response:
        key = secret()
        try:
            with store() as db, db.transaction():
                subscriber = subscribers.unsubscribe(db, key, token, now=now())
        except SubscriberError:
            return _bad_unsubscribe(page)
        return page(
            "message.html.j2",
            title="You are unsubscribed",
            message=f"{subscriber.email} will receive no more digests from {site.title}.",
        )

    def unsubscribe_page(token: str) -> Response:
        try:
            with store() as db:
                subscriber = subscribers.token_owner(db, secret(), token)
        except SubscriberError:
            return _bad_unsubscribe(page)
        return page(
            "unsubscribe.html.j2", email=subscriber.email, token=token, action=unsubscribe_path
        )

    def digests(_request: Request) -> Response:
        with store() as db:
            rows = db.delivery_counts()
        items = [
            {
                "number": row.digest_id,
                "date": row.created_at.astimezone(site.timezone),
                "articles": row.articles,
                "url": f"{site.feeds.url}digests/{row.digest_id}/",
            }
            for row in rows
            if (site.output_dir / "digests" / str(row.digest_id) / "index.html").is_file()
        ]
        return page("digests.html.j2", digests=items)

    def busy(_request: Request, exc: Exception) -> Response:
        # The state database stayed locked past its busy timeout, or could not be opened.
        logger.error("%s", exc)
        response = page(
            "message.html.j2",
            503,
            title="Please try again later",
            message="The service is busy just now; please try again in a minute.",
        )
        response.headers["Retry-After"] = "60"
        return response

    routes = [
        Route(base, home, methods=["GET"]),
        Route(base + "subscribe", subscribe, methods=["POST"]),
        Route(confirm_path, confirm, methods=["GET", "POST"]),
        Route(unsubscribe_path, unsubscribe, methods=["GET", "POST"]),
        Route(base + "digests/", digests, methods=["GET"]),
        Mount(feeds_path, app=FeedFiles(directory=site.output_dir, html=True, check_dir=False)),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={StoreError: busy},
        middleware=[
            Middleware(AccessLog),
            Middleware(BodyLimit),
            Middleware(HeadAsGet),
            Middleware(GzipValidators),
            Middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_SIZE),
        ],
    )


def _check_inbox(page: Callable[..., HTMLResponse]) -> HTMLResponse:
    # The same answer whether or not the address was known: the form reveals nothing.
    return page(
        "message.html.j2",
        title="Check your inbox",
        message="If that address is not subscribed yet, a message with a confirmation "
        "link is on its way. The link works for 48 hours.",
    )


def _bad_unsubscribe(page: Callable[..., HTMLResponse]) -> HTMLResponse:
    return page(
        "message.html.j2",
        400,
        title="That unsubscribe link is not valid",
        message="It may be incomplete: copy the whole link from the email, or use the "
        "unsubscribe link in the latest digest you received.",
    )


def run_server(site: SiteConfig, *, host: str, port: int) -> None:
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
                path = urlsplit(site.base_url).path or "/"
                logger.info("serving %s on http://%s:%d%s", site.title, shown, port, path)

    config = uvicorn.Config(
        create_app(site),
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
