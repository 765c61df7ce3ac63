"""Where each page lives: the site's public URLs read as the paths to route.

The service sits behind a proxy at the site's own addresses, so the routes
follow the configuration: the home page at base_url's path, the feeds at
[feeds] url's path, unsubscribe at [digest] unsubscribe_url's path and the
preferences page at [digest] preferences_url's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from publisher.config import SiteConfig


@dataclass(frozen=True, slots=True)
class SitePaths:
    """The path of each route; every one but `feeds` ends as the page's URL does."""

    home: str
    subscribe: str
    confirm: str
    unsubscribe: str
    preferences: str
    digests: str
    feeds: str  # a mount point: no trailing slash
    webhooks: str  # the providers' bounce webhooks: <this>ses, <this>postmark, <this>mailgun

    @classmethod
    def of(cls, site: SiteConfig) -> SitePaths:
        home = urlsplit(site.base_url).path or "/"
        return cls(
            home=home,
            subscribe=home + "subscribe",
            confirm=home + "confirm",
            unsubscribe=urlsplit(site.digest.unsubscribe_url).path or "/unsubscribe",
            preferences=urlsplit(site.digest.preferences_url).path or "/preferences",
            digests=home + "digests/",
            feeds=urlsplit(site.feeds.url).path.rstrip("/") or "/feeds",
            webhooks=home + "webhooks/",
        )
