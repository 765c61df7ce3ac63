"""`publisher check --links`: every link of the built feeds, pages and digests, followed.

This module does the reading: the feeds' folder, the site's folder and each
digest's stored rendering (the one every message is made from, the
unsubscribe link filled in). pages.links finds the links in each and says
which no built file answers. Nothing is built or written: a site never built
is told to build first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from publisher.config import SiteConfig
from publisher.errors import OutputError
from publisher.mail import compose
from publisher.pages import links
from publisher.pages.links import Link, Resolution, Targets
from publisher.pages.plan import SITEMAP, url_under
from publisher.store import Store, open_store, settings, state_exists

logger = logging.getLogger(__name__)

BUILD_FIRST = "run publisher build first"


@dataclass(frozen=True, slots=True)
class BrokenLink:
    where: str  # "feeds/rss.xml", "site/index.html" or "digest 1"
    link: str  # as written there; "" when the file itself could not be read
    why: str

    def __str__(self) -> str:
        shown = f"{self.link}: " if self.link else ""
        return f"{self.where}: {shown}{self.why}"


@dataclass(frozen=True, slots=True)
class LinkReport:
    checked: int  # distinct links of each file or digest that were followed
    feeds: int
    pages: int
    digests: int
    broken: tuple[BrokenLink, ...]
    pages_checked: bool  # False: pages are off, links to pages were not followed


@dataclass
class _Tally:
    """The links judged so far; each address is resolved once however many link to it."""

    targets: Targets
    checked: int = 0
    broken: list[BrokenLink] = field(default_factory=list)
    verdicts: dict[str, Resolution] = field(default_factory=dict)

    def judge(self, where: str, found: Iterable[Link]) -> None:
        """Follow each distinct link of *where*; record the broken ones, sorted."""
        seen: set[str] = set()
        broken = []
        for link in found:
            if link.written in seen:
                continue
            seen.add(link.written)
            verdict = self.verdicts.get(link.url)
            if verdict is None:
                verdict = self.verdicts[link.url] = links.resolve(self.targets, link.url)
            if verdict.verdict in ("resolves", "broken"):
                self.checked += 1
            if verdict.verdict == "broken":
                broken.append(BrokenLink(where, link.written, verdict.why))
        self.broken += sorted(broken, key=lambda b: b.link)


def check_links(site: SiteConfig) -> LinkReport:
    """Follow every link inside base_url or [feeds] url that the build wrote.

    :raises OutputError: when the site was never built (or its folders are gone).
    :raises StoreError: when the state cannot be opened.
    """
    targets = Targets.of(site)
    tally = _Tally(targets)
    with _built_state(site) as store:
        feeds, pages_in_feeds = _check_folder(
            site, tally, site.output_dir, targets.feeds_url, kind="feeds"
        )
        pages = pages_in_feeds
        if site.pages.enabled:
            _, pages_in_site = _check_folder(
                site, tally, site.site_dir, site.base_url, kind="pages"
            )
            pages += pages_in_site
        digests = _check_digests(site, store, tally)
    return LinkReport(
        checked=tally.checked,
        feeds=feeds,
        pages=pages,
        digests=digests,
        broken=tuple(tally.broken),
        pages_checked=site.pages.enabled,
    )


def _built_state(site: SiteConfig) -> Store:
    """The state of a site that was built: its folders there, a build recorded."""
    folders = [site.site_dir] if site.pages.enabled else []
    for folder in [*folders, site.output_dir]:
        if not folder.is_dir():
            where = f"{site.display(folder)}/"
            raise OutputError(where, f"no such folder; {BUILD_FIRST}")
    where = f"{site.display(site.output_dir)}/"
    if not state_exists(site.state):
        raise OutputError(where, f"no build recorded (no state yet); {BUILD_FIRST}")
    store = open_store(site.state)
    if store.get_setting(settings.LAST_BUILD) is None:
        store.close()
        raise OutputError(where, f"no build recorded in the state; {BUILD_FIRST}")
    return store


def _check_folder(
    site: SiteConfig, tally: _Tally, folder: Path, root_url: str, *, kind: str
) -> tuple[int, int]:
    """Judge the feeds and pages of *folder*, published at *root_url*: (feeds, pages) read.

    The feeds' folder holds the feeds (and a site without pages keeps its
    digests' web copies there); the site's folder its pages and sitemap.
    Another of the two folders nested inside is left to its own turn.
    """
    other = site.site_dir if kind == "feeds" else site.output_dir
    feeds = pages = 0
    for relative, path in _built_files(folder, skip=other):
        name = relative.rpartition("/")[2]
        if kind == "feeds" and name in links.FEED_NAMES:
            feeds += 1
        elif name.endswith(".html") or (kind == "pages" and name == SITEMAP):
            pages += 1
        else:
            continue
        where = site.display(path)
        try:
            found = links.file_links(relative, path.read_bytes(), url_under(root_url, relative))
        except OSError as err:
            tally.broken.append(BrokenLink(where, "", f"cannot be read ({err.strerror or err})"))
            continue
        except OutputError as err:
            tally.broken.append(BrokenLink(where, "", err.message))
            continue
        tally.judge(where, found)
    return feeds, pages


def _built_files(folder: Path, *, skip: Path) -> list[tuple[str, Path]]:
    """The files under *folder*, sorted, but dot-files (temp files) and those under *skip*."""
    found = []
    nested = skip != folder and skip.is_relative_to(folder)
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if nested and path.is_relative_to(skip):
            continue
        if path.is_file():
            found.append((relative.as_posix(), path))
    return found


def _check_digests(site: SiteConfig, store: Store, tally: _Tally) -> int:
    """Judge each digest's HTML and text as sent, the subscriber's two links filled in."""
    count = 0
    for issue in store.digest_issues():
        digest = store.get_digest(issue.id)
        if digest is None or digest.rendered is None:  # pragma: no cover - made in one transaction
            continue
        sent = compose.with_unsubscribe_link(
            digest.rendered, site.digest.unsubscribe_url, site.digest.preferences_url
        )
        found = [
            *links.html_links(sent.html, site.base_url),
            *links.text_links(sent.text, site.base_url),
        ]
        tally.judge(f"digest {issue.id}", found)
        count += 1
    return count
