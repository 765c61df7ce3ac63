"""`publisher build`, `check` and `new`: the feed pipeline's commands."""

from __future__ import annotations

import click

from publisher.cli import _common
from publisher.cli._common import (
    ping_hub,
    plural,
    print_problems,
    site_lock,
    site_of,
    summary,
)
from publisher.config import SiteConfig


@click.command()
@click.option("--strict", is_flag=True, help="Exit 1 when any article failed to load.")
@click.pass_context
def build(ctx: click.Context, strict: bool) -> None:
    """Rebuild the feeds from the content folder.

    Only changed files are read, only changed feeds are written. Articles that
    fail to load are reported as warnings and left out; one that was published
    before keeps its last good version.
    """
    from publisher.pipelines.build import build as build_site

    site = site_of(ctx)
    with site_lock(site, "build"):
        report = build_site(site, now=_common.now())
    print_problems(report.problems, prefix="warning")
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
    click.echo(summary(report))
    ping_hub(site)
    if strict and report.problems:
        ctx.exit(1)


@click.command()
@click.option(
    "--links",
    "follow_links",
    is_flag=True,
    help="Also follow every link of the built feeds, pages and digests (build first).",
)
@click.pass_context
def check(ctx: click.Context, follow_links: bool) -> None:
    """Validate the configuration and every article; write nothing.

    With --links, also follow every link inside base_url (or [feeds] url)
    that the last build wrote into the feeds, the pages and the digests, and
    report each one that no built file answers. Exits 0 when all is well, 1
    when an article has a problem or a link is broken, 2 when the
    configuration does.
    """
    from publisher.pipelines.build import check as check_site

    site = site_of(ctx)
    report = check_site(site)
    print_problems(report.problems, prefix="error")
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
    bad = len(report.problems)
    click.echo(
        f"checked {site.display(site.config_path)} and {report.checked} "
        f"article file{plural(report.checked)}: {bad} with problems"
    )
    if follow_links:
        bad += _check_links(site)
    if bad:
        ctx.exit(1)


def _check_links(site: SiteConfig) -> int:
    """Print each broken link and the summary line; the number broken."""
    from publisher.pipelines.links import check_links

    report = check_links(site)
    for broken in report.broken:
        click.echo(f"error: {broken}", err=True)
    counted = [
        _count(report.checked, "link"),
        _count(report.feeds, "feed"),
        _count(report.pages, "page"),
        _count(report.digests, "digest"),
    ]
    line = f"checked {counted[0]} in {counted[1]}, {counted[2]} and {counted[3]}: "
    line += f"{len(report.broken)} broken"
    if not report.pages_checked:
        line += "; pages are off: links to pages not checked"
    click.echo(line)
    return len(report.broken)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{plural(number)}"


@click.command()
@click.argument("title")
@click.option("--tag", "tags", multiple=True, help="A tag for the article (repeatable).")
@click.option(
    "--draft/--publish",
    "is_draft",
    default=True,
    show_default=True,
    help="Start as a draft (never published until draft: false) or publishable.",
)
@click.pass_context
def new(ctx: click.Context, title: str, tags: tuple[str, ...], is_draft: bool) -> None:
    """Create a new article file dated now, in the site's time zone.

    \b
    Example:
      publisher new "Talks resume in Vienna" --tag diplomacy --tag vienna
    """
    from publisher.pipelines.build import new_article

    site = site_of(ctx)
    path = new_article(site, title, now=_common.now(), tags=tags, is_draft=is_draft)
    click.echo(f"created {site.display(path)}")
    if is_draft:
        click.echo(
            "it is a draft: to publish it, set `draft: false` in its front matter "
            "(or create it with --publish), then run `publisher build`"
        )
