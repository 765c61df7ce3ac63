"""The sign-up's one message: the confirmation link, composed and sent at once.

Unlike a digest it goes through no ledger: a message that did not go out is
a failed sign-up, and the visitor is asked to try again.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import jinja2

from publisher import templating
from publisher.config import SiteConfig
from publisher.delivery.senders import Sender, site_sender
from publisher.errors import SubscriberError
from publisher.mail.compose import address_domain, compose_single, mail_settings
from publisher.model import Message


class Confirmations:
    """Sends confirmation links for *site* through *sender*, or its [delivery] when None."""

    def __init__(
        self, site: SiteConfig, environment: jinja2.Environment, sender: Sender | None
    ) -> None:
        self.site = site
        self.environment = environment
        self.sender = sender
        self.settings = mail_settings(site)  # its DKIM key read once, not for each message

    def send(self, email: str, token: str, now: datetime) -> None:
        """Send *token*'s link to *email*.

        :raises PublisherError: ConfigError when the site has no sender address
            or its SMTP password is missing; SubscriberError when the sender
            did not accept the message.
        """
        message = self.compose(email, token, now)
        own_sender = self.sender is None  # opened for this one message, closed after it
        active = self.sender or site_sender(self.site)
        try:
            result = active.send(message)
        finally:
            if own_sender:
                active.close()
        if result.outcome != "sent":
            where = active.description
            raise SubscriberError(where, f"{result.outcome}: {result.reply}")

    def compose(self, email: str, token: str, now: datetime) -> Message:
        """The message for *email*, its Message-ID and outbox name unique to this send."""
        site, settings = self.site, self.settings
        link = f"{site.base_url}confirm?token={token}"
        context = {"site": site, "link": link, "email": email}
        text = templating.render_template(self.environment, "web/confirm-email.txt.j2", **context)
        html = templating.render_template(self.environment, "web/confirm-email.html.j2", **context)
        domain = address_domain(settings.sender)
        unique = secrets.token_hex(8)
        return compose_single(
            settings.sender,
            email,
            f"Confirm your subscription to {site.title}",
            text=text,
            html=html,
            message_id=f"<confirm-{unique}@{domain}>",
            date=now,
            outbox_name=f"confirmations/{now:%Y%m%d-%H%M%S}-{unique}.eml",
            dkim=settings.dkim,
            # Sent to a visitor, not yet a subscriber: no delivery to name, so
            # a bounce comes back to the plain [bounces] address.
            bounce_address=settings.bounce_address,
        )
