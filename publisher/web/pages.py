"""The service's HTML pages: the page templates rendered for one site, and
every message a visitor can be shown, worded in one place.

Every page goes out with PAGE_HEADERS: a Content-Security-Policy that lets a
page load nothing from anywhere else, and no caching (pages carry tokens and
addresses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.responses import HTMLResponse, RedirectResponse

from publisher import templating
from publisher.config import SiteConfig
from publisher.errors import SubscriberError
from publisher.mail.segments import segment_of, topic_titles
from publisher.model import Article, Subscriber
from publisher.pages.layout import HONEYPOT_FIELD, cadence_words, choices, layout_context
from publisher.web.paths import SitePaths

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
BUSY_RETRY_AFTER = 60  # seconds


class Pages:
    """The pages of *site*, rendered from its templates (web/*.html.j2)."""

    def __init__(self, site: SiteConfig, environment: jinja2.Environment, paths: SitePaths) -> None:
        self.site = site
        self.environment = environment
        self.paths = paths

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """*template* with what every page needs (the site, its home and feed links)."""
        html = templating.render_template(
            self.environment,
            f"web/{template}",
            **layout_context(self.site, signup=False),
            subscribe_url=self.paths.subscribe,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def message(self, title: str, message: str, status: int = 200, **link: str) -> HTMLResponse:
        """A page with one message; *link* (link=, link_text=) replaces the link home."""
        return self.render("message.html.j2", status, title=title, message=message, **link)

    # -- the pages with a form or a list ---------------------------------------------

    def home(self, articles: Sequence[Article]) -> HTMLResponse:
        return self.render(
            "home.html.j2", articles=articles, honeypot=HONEYPOT_FIELD, choices=choices(self.site)
        )

    def confirm(self, email: str, token: str) -> HTMLResponse:
        """The one button that confirms; the link alone changes nothing."""
        return self.render("confirm.html.j2", email=email, token=token, action=self.paths.confirm)

    def unsubscribe(self, email: str, token: str) -> HTMLResponse:
        return self.render(
            "unsubscribe.html.j2", email=email, token=token, action=self.paths.unsubscribe
        )

    def preferences(
        self,
        subscriber: Subscriber,
        token: str,
        *,
        saved: bool = False,
        problem: SubscriberError | None = None,
    ) -> HTMLResponse:
        """The subscriber's choices as stored (read against the config), to change and save.

        With *problem*, what a POST sent could not be saved: 400, the stored choices shown.
        """
        site = self.site
        segment = segment_of(site, subscriber)
        return self.render(
            "preferences.html.j2",
            400 if problem else 200,
            email=subscriber.email,
            token=token,
            action=self.paths.preferences,
            unsubscribe_action=self.paths.unsubscribe,
            choices=choices(site, segment.topics, segment.cadence),
            topics_text=_capital(topic_titles(site, segment.topics)),
            cadence_text=cadence_words(site, segment.cadence),
            has_topics=bool(site.topics),
            saved=saved,
            problem=None if problem is None else problem.message,
        )

    def saved(self, token: str) -> RedirectResponse:
        """After a save, the page again by GET: reloading it sends nothing twice."""
        url = f"{self.paths.preferences}?token={quote(token, safe='')}&saved=1"
        return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)

    def digests(self, items: Sequence[dict[str, Any]]) -> HTMLResponse:
        return self.render("digests.html.j2", digests=items)

    # -- sign-up -------------------------------------------------------------------------

    def unreadable_signup(self) -> HTMLResponse:
        return self.message(
            "That form could not be read",
            "Please go back and submit the sign-up form again.",
            400,
        )

    def too_many_signups(self, retry_after: float) -> HTMLResponse:
        response = self.message(
            "Too many sign-ups",
            "Too many sign-ups from your network; please try again in a few minutes.",
            429,
        )
        response.headers["Retry-After"] = str(int(retry_after))
        return response

    def check_inbox(self) -> HTMLResponse:
        # The same answer whether or not the address was known: the form reveals nothing.
        return self.message(
            "Check your inbox",
            "If that address is not subscribed yet, a message with a confirmation "
            "link is on its way. The link works for 48 hours.",
        )

    def bad_address(self, err: SubscriberError) -> HTMLResponse:
        return self.message(
            "That address will not work",
            f"{err.message}. Please check it and try again.",
            400,
            link=self.paths.home,
            link_text="Back to the sign-up form",
        )

    def bad_choice(self, err: SubscriberError) -> HTMLResponse:
        return self.message(
            "That choice will not work",
            f"{_capital(err.message)}. Nothing was stored; please choose again.",
            400,
            link=self.paths.home,
            link_text="Back to the sign-up form",
        )

    def not_sent(self) -> HTMLResponse:
        return self.message(
            "Please try again later",
            "We could not send the confirmation message just now.",
            503,
        )

    # -- confirmation ----------------------------------------------------------------------

    def unreadable_confirmation(self) -> HTMLResponse:
        return self.message(
            "That form could not be read",
            "Please open the link in the email again and press the button.",
            400,
        )

    def bad_link(self, err: SubscriberError) -> HTMLResponse:
        return self.message(
            "That link did not work",
            f"{err.message[0].upper()}{err.message[1:]}.",
            400,
            link=self.paths.home,
            link_text="Sign up again",
        )

    def subscribed(self, subscriber: Subscriber) -> HTMLResponse:
        return self.message(
            "You are subscribed",
            f"{subscriber.email} will receive the next {self.site.title} digest.",
        )

    # -- unsubscribe -----------------------------------------------------------------------

    def bad_unsubscribe(self) -> HTMLResponse:
        return self.message(
            "That unsubscribe link is not valid",
            "It may be incomplete: copy the whole link from the email, or use the "
            "unsubscribe link in the latest digest you received.",
            400,
        )

    def unsubscribed(self, subscriber: Subscriber) -> HTMLResponse:
        return self.message(
            "You are unsubscribed",
            f"{subscriber.email} will receive no more digests from {self.site.title}.",
        )

    # -- preferences -----------------------------------------------------------------------

    def bad_preferences(self) -> HTMLResponse:
        return self.message(
            "That preferences link is not valid",
            "It may be incomplete: copy the whole link from the email, or use the "
            "link in the latest digest you received. Nothing was changed.",
            400,
        )

    def not_subscribed(self, subscriber: Subscriber, status: int = 200) -> HTMLResponse:
        """A link of someone who left (or bounced): nothing to choose, a way back in."""
        return self.message(
            "You are not subscribed",
            f"{subscriber.email} receives no digests from {self.site.title}, "
            "so there is nothing to choose here.",
            status,
            link=self.paths.home,
            link_text="Sign up again",
        )

    def unreadable_preferences(self) -> HTMLResponse:
        return self.message(
            "That form could not be read",
            "Nothing was changed. Please open the link in the email again and save your choices.",
            400,
        )

    def foreign_form(self) -> HTMLResponse:
        return self.message(
            "That form came from another site",
            "Nothing was changed. To change your choices, open the link in the latest "
            f"{self.site.title} digest you received.",
            403,
        )

    # -- any page --------------------------------------------------------------------------

    def busy(self) -> HTMLResponse:
        response = self.message(
            "Please try again later",
            "The service is busy just now; please try again in a minute.",
            503,
        )
        response.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
        return response


def _capital(text: str) -> str:
    """*text* with its first letter a capital, the rest as it is (titles keep theirs)."""
    return text[:1].upper() + text[1:]
