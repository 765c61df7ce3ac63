"""The command line: thin commands over the pipelines and the service, and the one error boundary.

Each group of commands is a module of its own (`articles`, `digests`,
`subscribers`, `service`); each imports what it needs inside the command, so
`publisher build` from cron pays for neither the e-mail validator nor the
web stack.
"""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path
from typing import Any

import click

from publisher.cli import articles, bounces, digests, service, signing, state, subscribers
from publisher.cli._common import JsonFormatter
from publisher.config import CONFIG_NAME
from publisher.errors import PublisherError
from publisher.version import __version__


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
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text, or as one JSON object each (for services).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path, debug: bool, verbose: bool, log_format: str) -> None:
    """Publish a folder of articles as RSS, Atom and JSON feeds.

    \b
    Examples:
      publisher build                 build the site in this folder
      publisher --config site/publisher.toml check
      publisher new "Talks resume in Vienna" --tag diplomacy
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(levelname)s: %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    ctx.obj = {"config": config, "debug": debug}


for _command in (
    articles.build,
    articles.check,
    articles.new,
    digests.digest,
    bounces.bounces,
    subscribers.subscribers,
    subscribers.unsubscribe,
    service.run,
    service.status,
    service.serve,
    state.state,
    signing.dkim,
):
    cli.add_command(_command)


# The cyclic collector's first generation runs after this many new objects (Python's
# default is 700).
COLLECT_AFTER = 100_000


def main() -> None:
    """Console-script entry point."""
    tune_collector()
    cli(prog_name="publisher")


def tune_collector() -> None:
    """Spare a run the collector's passes over objects that are never garbage.

    A build makes tens of thousands of small acyclic objects (file stats, article
    keys, page plans) that live until it ends: with the default thresholds the
    collector walks them again and again and frees nothing (0.18 s of its own
    time in a one-edit build of 10,000 articles with pages). What the imports made
    so far is moved out of its sight for good (and is not touched again in
    forked workers, whose memory stays shared), and the first generation is
    collected after COLLECT_AFTER new objects rather than 700.
    """
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(COLLECT_AFTER, middle, oldest)
