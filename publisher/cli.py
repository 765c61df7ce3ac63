"""The command line: thin commands over the pipeline, and the one error boundary."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from publisher import __version__
from publisher.config import CONFIG_NAME, SiteConfig, load_config
from publisher.errors import PublisherError
from publisher.model import BuildReport, ContentProblem

logger = logging.getLogger("publisher")


class _Group(click.Group):
    """Prints `error: <where>: <what>` for our errors and exits with their code.

    Click's own usage errors keep their format and exit code 2.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PublisherError as err:
            if ctx.params.get("debug"):
                raise
            for line in err.lines():
                click.echo(f"error: {line}", err=True)
            ctx.exit(err.exit_code)


def _now() -> datetime:
    return datetime.now(UTC)


def _site(ctx: click.Context) -> SiteConfig:
    path: Path = ctx.obj["config"]
    site: SiteConfig = load_config(path)
    return site


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="publisher")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=CONFIG_NAME,
    show_default=True,
    envvar="PUBLISHER_CONFIG",
    help="The site's configuration file; its folder is the site folder.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")
@click.pass_context
def cli(ctx: click.Context, config: Path, debug: bool, verbose: bool) -> None:
    """Publish a folder of articles as RSS, Atom and JSON feeds.

    \b
    Examples:
      publisher build                 build the site in this folder
      publisher --config site/publisher.toml check
      publisher new "Talks resume in Vienna" --tag diplomacy
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = {"config": config, "debug": debug}


@cli.command()
@click.option("--strict", is_flag=True, help="Exit 1 when any article failed to load.")
@click.pass_context
def build(ctx: click.Context, strict: bool) -> None:
    """Rebuild the feeds from the content folder.

    Only changed files are read, only changed feeds are written. Articles that
    fail to load are reported as warnings and left out; one that was published
    before keeps its last good version.
    """
    from publisher import pipeline

    site = _site(ctx)
    report = pipeline.build(site, now=_now())
    _print_problems(report.problems, prefix="warning")
    click.echo(_summary(report))
    if strict and report.problems:
        ctx.exit(1)


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration and every article; write nothing.

    Exits 0 when all is well, 1 when an article has a problem, 2 when the
    configuration does.
    """
    from publisher import pipeline

    site = _site(ctx)
    report = pipeline.check(site)
    _print_problems(report.problems, prefix="error")
    bad = len(report.problems)
    click.echo(
        f"checked {pipeline.display(site, site.config_path)} and {report.checked} "
        f"article file{_s(report.checked)}: {bad} with problems"
    )
    if bad:
        ctx.exit(1)


@cli.command()
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
    from publisher import pipeline

    site = _site(ctx)
    path = pipeline.new_article(site, title, now=_now(), tags=tags, is_draft=is_draft)
    click.echo(f"created {pipeline.display(site, path)}")


def _print_problems(problems: tuple[ContentProblem, ...], *, prefix: str) -> None:
    for problem in problems:
        for line in problem.lines:
            click.echo(f"{prefix}: {line}", err=True)
        if problem.kept_previous:
            click.echo(f"{prefix}: {problem.path}: its last good version stays published", err=True)


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _summary(report: BuildReport) -> str:
    return (
        f"{report.loaded} article{_s(report.loaded)} loaded "
        f"({report.published} published, {report.drafts} draft{_s(report.drafts)}, "
        f"{report.scheduled} scheduled), {report.skipped} skipped with errors, "
        f"{len(report.written)} file{_s(len(report.written))} written, "
        f"{len(report.unchanged)} unchanged"
        + (f", {len(report.removed)} removed" if report.removed else "")
    )


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="publisher")
