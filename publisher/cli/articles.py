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
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration and every article; write nothing.

    Exits 0 when all is well, 1 when an article has a problem, 2 when the
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
    if bad:
        ctx.exit(1)


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
