"""What the shared layout (templates/pages/base.html.j2) needs to know of a site.

The static pages and the pages of `publisher serve` extend one base layout,
so the site looks like one thing; this is the context both give it. No
Jinja2 here: the web service imports it on every start.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from publisher.config import WEEKDAYS, Cadence, SiteConfig
from publisher.model import FEED_FILES, FEED_MEDIA_TYPES

# The sign-up form's hidden field: a person leaves it empty, a form-filling bot does not.
HONEYPOT_FIELD = "website"
# The choices of the sign-up form and the preferences page: a `topic` for each box
# ticked, `topics_shown` when the boxes were there (none ticked is then a choice), and
# the `cadence` button pressed.
TOPIC_FIELD = "topic"
TOPICS_SHOWN_FIELD = "topics_shown"
CADENCE_FIELD = "cadence"
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
        "signup": (
            {"action": f"{home}subscribe", "honeypot": HONEYPOT_FIELD, "choices": choices(site)}
            if signup
            else None
        ),
    }


def choices(
    site: SiteConfig, topics: tuple[str, ...] | None = None, cadence: Cadence | None = None
) -> dict[str, Any] | None:
    """The topic boxes and cadence buttons of a form, *topics* and *cadence* ticked.

    *topics* None is everything (every box ticked), *cadence* None the
    site's default. Boxes only for a site with [topics], buttons only when
    [digest] cadences offers more than one; None when there is nothing to choose.
    """
    chosen = site.digest.cadence if cadence is None else cadence
    ticked = {topic.slug for topic in site.topics} if topics is None else set(topics)
    boxes = [
        {
            "slug": topic.slug,
            "title": topic.title,
            "description": topic.description,
            "checked": topic.slug in ticked,
        }
        for topic in site.topics
    ]
    offered = site.digest.cadences if len(site.digest.cadences) > 1 else ()
    buttons = [
        {"value": str(option), "words": cadence_words(site, option), "checked": option == chosen}
        for option in offered
    ]
    if not boxes and not buttons:
        return None
    return {
        "topics": boxes,
        "cadences": buttons,
        "timezone": site.timezone.key,
        "fields": {"topic": TOPIC_FIELD, "shown": TOPICS_SHOWN_FIELD, "cadence": CADENCE_FIELD},
    }


def cadence_words(site: SiteConfig, cadence: Cadence) -> str:
    """A cadence as a subscriber reads it: "Every Monday at 07:00"."""
    if cadence.each_article:
        return f"A message for each new article (at most {site.digest.max_per_day} a day)"
    time = f"{cadence.hour:02d}:{cadence.minute:02d}"
    if cadence.weekday is None:
        return f"Every day at {time}"
    return f"Every {WEEKDAYS[cadence.weekday].capitalize()} at {time}"
