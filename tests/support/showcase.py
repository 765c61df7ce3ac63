"""A built site with a page of every kind and content that is hard to lay out.

tests/sites/basic (it has `[web]`, so every page carries the sign-up form,
and support.web.CHOICES, so the form offers topics and cadences) plus the
articles in tests/data/articles: a title of Arabic and English
with an emoji, Hebrew and emoji tags, and a body of tables, code, pictures,
quotes, lists and footnote-like Markdown. A digest has gone out, so its web
copy (site/digests/1/) exists. The page checks (HTML validity, axe-core in
Chromium) read it as a whole.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from publisher.config import SiteConfig, load_config
from publisher.pipelines import build
from support.clock import NOW, Clock
from support.paths import SITES, TESTS
from support.web import add_choices, mail_digest

ARTICLES = TESTS / "data" / "articles"
# The articles' pages, under base_url (a permalink is the date's year and month and the slug).
RTL_ARTICLE = "2024/05/talks-end/"
RTL_TITLE = "Talks end — محادثات فيينا انتهت 🕊️"
RICH_ARTICLE = "2024/06/census-figures/"
RICH_TITLE = "Census figures, in tables and code"
RTL_TAG = "tags/שלום/"
DIGEST = "digests/1/"
SENT = NOW + timedelta(hours=1)


def build_showcase(folder: Path) -> tuple[SiteConfig, dict[str, str]]:
    """The site built in *folder* and its digest 1 sent: the site, and address -> its
    unsubscribe link."""
    shutil.copytree(SITES / "basic", folder)
    add_choices(folder)
    for article in ARTICLES.iterdir():
        shutil.copyfile(article, folder / "content" / article.name)
    site = load_config(folder / "publisher.toml")
    report = build.build(site, now=NOW)
    assert report.pages is not None
    assert not report.problems, report.problems
    links = mail_digest(site, Clock(SENT))  # writes the digest's web copy too
    assert (site.site_dir / DIGEST / "index.html").is_file()
    return site, links
