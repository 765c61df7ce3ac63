"""The providers' bounce webhooks: POST <base path>webhooks/ses, …/postmark, …/mailgun.

Each is on only when its [bounces.<provider>] table is there, and each is
authenticated: SES through SNS by the message signature (certificate from
an SNS URL, kept in the state folder), Postmark by HTTP basic auth
(PUBLISHER_POSTMARK_WEBHOOK_USER / _PASSWORD), Mailgun by its HMAC signature
(PUBLISHER_MAILGUN_SIGNING_KEY), its timestamp within 5 minutes and its
token never seen before. A forged or replayed request gets 401, a malformed
one 400, each with a one-line JSON error, and changes nothing. What passes
is applied in one transaction (the replay nonce with it), each event once.

An SNS SubscriptionConfirmation is verified and then only logged, with its
SubscribeURL, for the operator to open: the service makes no request on a
message's say-so (the certificate fetch goes only to the SNS pattern).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.config import SiteConfig
from publisher.delivery.bounces import providers
from publisher.delivery.bounces.actions import Bounce, apply_bounce
from publisher.errors import ConfigError
from publisher.mail.secret import site_secret
from publisher.store import Store, open_store

logger = logging.getLogger("publisher.web")

POSTMARK_USER = "PUBLISHER_POSTMARK_WEBHOOK_USER"
POSTMARK_PASSWORD = "PUBLISHER_POSTMARK_WEBHOOK_PASSWORD"
MAILGUN_KEY = "PUBLISHER_MAILGUN_SIGNING_KEY"
SNS_CERTS = "sns-certificates"  # in the state folder


@dataclass(frozen=True, slots=True)
class WebhookKeys:
    """What authenticates each enabled provider (read from the environment at start-up)."""

    postmark: providers.BasicCredentials | None = None
    mailgun: str | None = None

    @classmethod
    def from_environment(cls, site: SiteConfig, environ: Mapping[str, str]) -> WebhookKeys:
        """:raises ConfigError: when an enabled provider's variables are not set."""
        postmark = None
        if site.bounces.postmark:
            user, password = environ.get(POSTMARK_USER, ""), environ.get(POSTMARK_PASSWORD, "")
            if not user or not password:
                where = f"{POSTMARK_USER}, {POSTMARK_PASSWORD}"
                message = "not set: [bounces.postmark] needs both (its webhook's basic auth)"
                raise ConfigError(where, message)
            postmark = providers.BasicCredentials(user, password)
        mailgun = None
        if site.bounces.mailgun:
            mailgun = environ.get(MAILGUN_KEY, "")
            if not mailgun:
                message = "not set: [bounces.mailgun] needs the webhook signing key"
                raise ConfigError(MAILGUN_KEY, message)
        return cls(postmark, mailgun)


class Webhooks:
    """The enabled webhook endpoints of one site."""

    def __init__(
        self,
        site: SiteConfig,
        *,
        now: Callable[[], datetime],
        environ: Mapping[str, str] | None = None,
        fetch: Callable[[str], bytes] = providers.fetch_https,
    ) -> None:
        self.site = site
        self.now = now
        self.keys = WebhookKeys.from_environment(site, os.environ if environ is None else environ)
        topic = site.bounces.ses_topic_arn
        self.sns = (
            None
            if topic is None
            else providers.SnsVerifier(topic, site.state_dir / SNS_CERTS, fetch)
        )
        self._secret: bytes | None = None

    def routes(self, prefix: str) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        if self.sns is not None:
            routes.append(Route(prefix + "ses", self.ses, methods=["POST"]))
        if self.keys.postmark is not None:
            routes.append(Route(prefix + "postmark", self.postmark, methods=["POST"]))
        if self.keys.mailgun is not None:
            routes.append(Route(prefix + "mailgun", self.mailgun, methods=["POST"]))
        return routes

    # -- endpoints -----------------------------------------------------------------------

    async def postmark(self, request: Request) -> Response:
        body = await request.body()
        authorization = request.headers.get("authorization")
        return await run_in_threadpool(
            self._answer, "postmark", self._postmark, body, authorization
        )

    async def mailgun(self, request: Request) -> Response:
        body = await request.body()
        return await run_in_threadpool(self._answer, "mailgun", self._mailgun, body, None)

    async def ses(self, request: Request) -> Response:
        body = await request.body()
        return await run_in_threadpool(self._answer, "ses", self._ses, body, None)

    # -- the work, off the event loop ---------------------------------------------------

    def _answer(
        self,
        provider: str,
        handle: Callable[[dict[str, Any], str | None], JSONResponse],
        body: bytes,
        authorization: str | None,
    ) -> Response:
        try:
            if provider == "postmark":  # credentials before anything is read
                assert self.keys.postmark is not None
                self.keys.postmark.check(authorization)
            return handle(providers.read_json(body), authorization)
        except providers.ForgedError as err:
            logger.warning("webhook %s: refused: %s", provider, err)
            return JSONResponse({"error": f"forged or replayed: {err}"}, status_code=401)
        except providers.MalformedError as err:
            logger.warning("webhook %s: malformed: %s", provider, err)
            return JSONResponse({"error": f"malformed: {err}"}, status_code=400)

    def _postmark(self, data: dict[str, Any], _authorization: str | None) -> JSONResponse:
        return self._apply(providers.postmark_bounces(data))

    def _mailgun(self, data: dict[str, Any], _authorization: str | None) -> JSONResponse:
        assert self.keys.mailgun is not None
        now = self.now()
        nonce = providers.mailgun_signature(data, self.keys.mailgun, now=now)
        bounces = providers.mailgun_bounces(data)  # malformed: refused before the nonce is kept
        return self._apply(bounces, nonce=f"mailgun {nonce}")

    def _ses(self, data: dict[str, Any], _authorization: str | None) -> JSONResponse:
        assert self.sns is not None
        self.sns.verify(data)
        kind = data.get("Type")
        if kind == "SubscriptionConfirmation":
            url = str(data.get("SubscribeURL", ""))
            shown = url if providers.SNS_SUBSCRIBE_URL.fullmatch(url) else "(not an SNS URL)"
            logger.warning(
                "webhook ses: SNS asks to confirm the subscription of %s: open %s",
                data.get("TopicArn"),
                shown,
            )
            return JSONResponse({"status": "subscription awaits the operator's confirmation"})
        if kind == "UnsubscribeConfirmation":
            logger.warning("webhook ses: unsubscribed from %s", data.get("TopicArn"))
            return JSONResponse({"status": "unsubscribed"})
        return self._apply(providers.ses_bounces(data))

    def _apply(self, bounces: list[Bounce], *, nonce: str | None = None) -> JSONResponse:
        now = self.now()
        with open_store(self.site.state) as store, store.transaction():
            if nonce is not None and not store.claim_nonce(
                nonce, now=now, forget_before=now - providers.MAILGUN_MAX_AGE * 2
            ):
                message = "this signed request was seen before"
                raise providers.ForgedError(message)
            outcomes = [self._apply_one(store, bounce, now) for bounce in bounces]
        return JSONResponse({"status": "ok", "outcomes": outcomes})

    def _apply_one(self, store: Store, bounce: Bounce, now: datetime) -> str:
        if self._secret is None:
            self._secret = site_secret(self.site, store)
        applied = apply_bounce(
            store,
            self._secret,
            bounce,
            soft_limit=self.site.bounces.soft_limit,
            now=now,
            by_recipient=True,
        )
        logger.info("webhook: %s: %s", bounce.source, applied.line())
        return applied.outcome
