"""What the shared layout (templates/pages/base.html.j2) needs to know of a site.

The static pages and the pages of `publisher serve` extend one base layout,
so the site looks like one thing; this is the context both give it. No
Jinja2 here: the web service imports it on every start.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from publisher.config import SiteConfig
from publisher.model import FEED_FILES, FEED_MEDIA_TYPES

# The sign-up form's hidden field: a person leaves it empty, a form-filling bot does not.
HONEYPOT_FIELD = "website"
FEED_TYPES = tuple(
    (fmt, FEED_MEDIA_TYPES[fmt], label, FEED_FILES[fmt])
    for fmt, label in (("rss", "RSS"), ("atom", "Atom"), ("json", "JSON Feed"))
)


def local(site: SiteConfig, url: str) -> str:
    """*url* as a link from one of the site's pages: its path when inside base_url.

    Path-absolute links work wherever the pages are served from (the real
    host, `publisher serve` on a laptop); links elsewhere stay absolute.
    """
    if url.startswith(site.base_url):
        return base_path(site) + url[len(site.base_url) :]
    return url


def base_path(site: SiteConfig) -> str:
    return urlsplit(site.base_url).path or "/"


def alternates(site: SiteConfig, folder_url: str, title: str) -> list[dict[str, str]]:
    """Feed autodiscovery links for the feeds in *folder_url*, in the site's formats.

    Absolute, as the feeds' own self links are: a reader given the page's
    head alone still finds them.
    """
    return [
        {
            "type": media_type,
            "title": f"{title} ({name})",
            "href": folder_url + file,
            "name": name,
            "label": name if fmt == "json" else f"{name} feed",
        }
        for fmt, media_type, name, file in FEED_TYPES
        if fmt in site.feeds.formats
    ]


def layout_context(site: SiteConfig, *, signup: bool) -> dict[str, Any]:
    """The layout's variables: the site, its links, its feeds, and the sign-up form if shown.

    With pages enabled the site's stylesheet and its tag, archive and digest
    pages exist and are linked; without, the layout inlines its styles and
    links to the service's own digest archive.
    """
    home = base_path(site)
    pages = site.pages.enabled
    return {
        "site": site,
        "base": home,
        "feeds_url": local(site, site.feeds.url),
        "feed_links": alternates(site, site.feeds.url, site.title),
        "stylesheet": f"{home}style.css" if pages else None,
        "nav": {"tags": f"{home}tags/", "archive": f"{home}archive/"} if pages else None,
        "digests_url": f"{home}digests/",
        "signup": {"action": f"{home}subscribe", "honeypot": HONEYPOT_FIELD} if signup else None,
    }
