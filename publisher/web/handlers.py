"""The service's endpoints: the home page, sign-up with double opt-in,
confirmation, the preferences page, one-click unsubscribe and the digest archive.

Links in messages change state only on POST: a GET (or HEAD) of a
confirmation or unsubscribe link shows a page with one button, so a mail
provider's link scanner changes nothing. Every query is a method of the
Store; each request opens its own connection, which waits on `publisher
run`'s lock (WAL, busy timeout) instead of failing, and runs off the event
loop so one waiting request stalls no other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.config import SiteConfig
from publisher.errors import PublisherError, SubscriberError
from publisher.mail import signups, subscribers
from publisher.mail.preferences import Choices, read_choices, save_choices
from publisher.mail.secret import site_secret
from publisher.model import Subscriber, newest_first
from publisher.pages.layout import CADENCE_FIELD, HONEYPOT_FIELD, TOPIC_FIELD, TOPICS_SHOWN_FIELD
from publisher.store import Store, open_store
from publisher.web.confirmation import Confirmations
from publisher.web.forms import MAX_FIELDS, Form, read_form, read_form_with
from publisher.web.middleware import ClientLimiter, is_same_origin, origin_of
from publisher.web.pages import Pages

# The package's one logger: its lines are named "publisher.web", as the service's always were.
logger = logging.getLogger("publisher.web")

LATEST_ARTICLES = 10  # on the home page


class Handlers:
    """The endpoints for one site, with what they share: its pages, the
    confirmation sender, the sign-up limiter, the clock and the site secret.

    The secret is read on first use, not at start-up: a site without one yet
    still serves its feeds, and the first sign-up creates it.
    """

    def __init__(
        self,
        site: SiteConfig,
        *,
        pages: Pages,
        confirmations: Confirmations,
        limiter: ClientLimiter,
        now: Callable[[], datetime],
    ) -> None:
        self.site = site
        self.pages = pages
        self.confirmations = confirmations
        self.limiter = limiter
        self.now = now
        self._secret: bytes | None = None
        # Where the forms that change choices may come from, besides the host asked.
        self.origins = frozenset(
            origin_of(url) for url in (site.base_url, site.digest.preferences_url)
        )
        # The choice forms: the sign-up's fields or the token, a box per topic, a cadence.
        self.max_fields = MAX_FIELDS + len(site.topics)

    def secret(self) -> bytes:
        if self._secret is None:
            with self.store() as db:
                self._secret = site_secret(self.site, db)
        return self._secret

    def store(self) -> Store:
        return open_store(self.site.state)

    # -- pages to read -------------------------------------------------------------------

    def home(self, _request: Request) -> Response:
        # Keys for all, full records for the ten shown: a page view on a site of
        # 10,000 articles should not build 10,000 articles.
        moment = self.now()
        with self.store() as db:
            keys = newest_first(k for k in db.article_keys() if k.is_published(moment))
            shown = keys[:LATEST_ARTICLES]
            latest = db.articles(k.id for k in shown)
        return self.pages.home([latest[k.id] for k in shown if k.id in latest])

    def digests(self, _request: Request) -> Response:
        """The archive: the digests that went out and have a web copy."""
        site = self.site
        with self.store() as db:
            rows = db.delivery_counts()
        items: list[dict[str, Any]] = [
            {
                "number": row.digest_id,
                "date": row.created_at.astimezone(site.timezone),
                "articles": row.articles,
                "url": f"{site.feeds.url}digests/{row.digest_id}/",
            }
            for row in rows
            if (site.output_dir / "digests" / str(row.digest_id) / "index.html").is_file()
        ]
        return self.pages.digests(items)

    # -- sign-up -------------------------------------------------------------------------

    async def subscribe(self, request: Request) -> Response:
        form = await read_form_with(request, repeated={TOPIC_FIELD}, max_fields=self.max_fields)
        client = request.client.host if request.client else "unknown"
        # SQLite (which may wait on `publisher run`'s lock) and SMTP block:
        # off the event loop, so one slow sign-up cannot stall every request.
        return await run_in_threadpool(self._answer_signup, form, client)

    def _answer_signup(self, form: Form | None, client: str) -> Response:
        if form is None:
            return self.pages.unreadable_signup()
        if not self.limiter.allow(client):
            return self.pages.too_many_signups(retry_after=self.limiter.window)
        fields = form.fields
        if fields.get(HONEYPOT_FIELD, "").strip():
            logger.info("sign-up from %s ignored: the honeypot field was filled", client)
            return self.pages.check_inbox()
        try:
            choices = read_choices(self.site, *_chosen(form))
        except SubscriberError as err:
            return self.pages.bad_choice(err)
        return self._sign_up(fields.get("email", ""), fields.get("name", ""), client, choices)

    def _sign_up(self, address: str, name: str, client: str, choices: Choices) -> Response:
        key = (
            self.secret()
        )  # outside the try: a bad secret is the operator's error, not the visitor's
        try:
            with self.store() as db, db.transaction():
                signup = signups.request_signup(
                    db,
                    key,
                    address,
                    name,
                    client=client,
                    now=self.now(),
                    topics=choices.topics,
                    cadence=choices.cadence,
                )
        except SubscriberError as err:
            return self.pages.bad_address(err)
        if signup.token is not None:
            try:
                self.confirmations.send(signup.email, signup.token, self.now())
            except PublisherError as err:
                logger.error("confirmation to %s not sent: %s", signup.email, err)
                return self.pages.not_sent()
        return self.pages.check_inbox()

    # -- confirmation ----------------------------------------------------------------------

    async def confirm(self, request: Request) -> Response:
        # GET and HEAD (a person, or a mail provider's link scanner) only show
        # the page; its one button POSTs back here, and only that subscribes.
        token = request.query_params.get("token", "")
        if request.method == "POST":
            if await read_form(request) is None:
                return self.pages.unreadable_confirmation()
            return await run_in_threadpool(self._confirm, token)
        return await run_in_threadpool(self._show_confirmation, token)

    def _show_confirmation(self, token: str) -> Response:
        key = self.secret()
        try:
            with self.store() as db:
                checked = signups.check_confirmation(db, key, token, now=self.now())
        except SubscriberError as err:
            return self.pages.bad_link(err)
        if checked.subscriber is not None:  # already confirmed: nothing left to press
            return self.pages.subscribed(checked.subscriber)
        return self.pages.confirm(checked.email, token)

    def _confirm(self, token: str) -> Response:
        key = self.secret()
        try:
            with self.store() as db, db.transaction():
                subscriber = signups.confirm(db, key, token, now=self.now())
        except SubscriberError as err:
            return self.pages.bad_link(err)
        return self.pages.subscribed(subscriber)

    # -- preferences -----------------------------------------------------------------------

    async def preferences(self, request: Request) -> Response:
        """GET shows the token's subscriber their choices; POST (the form) saves new ones.

        The POST carries the token in the form, not the address, and must come
        from a page of this site (is_same_origin).
        """
        if request.method == "POST":
            if not is_same_origin(request, self.origins):
                await request.body()
                return self.pages.foreign_form()
            form = await read_form_with(request, repeated={TOPIC_FIELD}, max_fields=self.max_fields)
            if form is None:
                return self.pages.unreadable_preferences()
            return await run_in_threadpool(self._save_preferences, form)
        token = request.query_params.get("token", "")
        saved = request.query_params.get("saved") == "1"
        return await run_in_threadpool(self._show_preferences, token, saved)

    def _token_owner(self, token: str) -> Subscriber | None:
        """The subscriber *token* is for; None for a forged, foreign or unknown token."""
        key = self.secret()  # outside the try: a bad secret is not a bad link
        try:
            with self.store() as db:
                return subscribers.token_owner(db, key, token)
        except SubscriberError:
            return None

    def _show_preferences(self, token: str, saved: bool) -> Response:
        subscriber = self._token_owner(token)
        if subscriber is None:
            return self.pages.bad_preferences()
        if subscriber.status != "active":
            return self.pages.not_subscribed(subscriber)
        return self.pages.preferences(subscriber, token, saved=saved)

    def _save_preferences(self, form: Form) -> Response:
        key = self.secret()
        token = form.fields.get("token", "")
        with self.store() as db, db.transaction():
            try:
                subscriber = subscribers.token_owner(db, key, token)
            except SubscriberError:
                return self.pages.bad_preferences()
            if subscriber.status != "active":
                return self.pages.not_subscribed(subscriber, 409)
            try:
                choices = read_choices(self.site, *_chosen(form), current=Choices.of(subscriber))
            except SubscriberError as err:
                return self.pages.preferences(subscriber, token, problem=err)
            save_choices(db, key, self.site, subscriber, choices, now=self.now())
        return self.pages.saved(token)

    # -- unsubscribe -----------------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        if request.method == "POST":
            await request.body()  # RFC 8058: "List-Unsubscribe=One-Click"; the token is the key
            return await run_in_threadpool(self._unsubscribe, token)
        return await run_in_threadpool(self._show_unsubscribe, token)

    def _show_unsubscribe(self, token: str) -> Response:
        subscriber = self._token_owner(token)
        if subscriber is None:
            return self.pages.bad_unsubscribe()
        return self.pages.unsubscribe(subscriber.email, token)

    def _unsubscribe(self, token: str) -> Response:
        key = self.secret()
        try:
            with self.store() as db, db.transaction():
                subscriber = subscribers.unsubscribe(db, key, token, now=self.now())
        except SubscriberError:
            return self.pages.bad_unsubscribe()
        return self.pages.unsubscribed(subscriber)

    # -- errors ----------------------------------------------------------------------------

    def busy(self, _request: Request, exc: Exception) -> Response:
        """The answer to a PublisherError no endpoint answered itself, logged in one line.

        The state database stayed locked past its busy timeout or could not be
        opened, or the site's secret is missing or differs from the state's:
        the operator's to fix, so the visitor is asked to come back later.
        """
        logger.error("%s", exc)
        return self.pages.busy()


def _chosen(form: Form) -> tuple[tuple[str, ...] | None, str | None]:
    """The topics and cadence a form sent; None for each the form did not offer.

    Boxes that were shown and none ticked send only `topics_shown`: that is
    a choice of no topic (refused), not a form without boxes.
    """
    topics = form.repeated.get(TOPIC_FIELD)
    if topics is None and TOPICS_SHOWN_FIELD in form.fields:
        topics = ()
    return topics, form.fields.get(CADENCE_FIELD)
