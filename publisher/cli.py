"""The command line: thin commands over the pipeline, and the one error boundary."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import click

from publisher import __version__
from publisher.config import CONFIG_NAME, SiteConfig, load_config
from publisher.errors import OutputError, PublisherError
from publisher.model import BuildReport, ContentProblem

logger = logging.getLogger("publisher")

# C0 and C1 controls: a server's reply printed as is could drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _Group(click.Group):
    """Prints `error: <where>: <what>` for our errors and exits with their code.

    Click's own usage errors keep their format and exit code 2.
    """

    # Commands in other modules, imported only when used: `publisher build`
    # from cron should not pay for the e-mail validator or the web stack.
    _lazy: ClassVar[dict[str, str]] = {
        "subscribers": "publisher.cli_subscribers",
        "unsubscribe": "publisher.cli_subscribers",
        "run": "publisher.cli_service",
        "status": "publisher.cli_service",
        "serve": "publisher.cli_service",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy and cmd_name not in self.commands:
            module = importlib.import_module(self._lazy[cmd_name])
            command = getattr(module, cmd_name)
            assert isinstance(command, click.Command)
            self.add_command(command)
        return super().get_command(ctx, cmd_name)

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
        _JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(levelname)s: %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    ctx.obj = {"config": config, "debug": debug}


def log_at_info(name: str) -> None:
    """Let the service's own logger *name* through at INFO, whatever the default level.

    Libraries stay at WARNING, but a service's one line per job is what an
    operator reads in the journal: `publisher run` without -v was silent.
    """
    root = logging.getLogger()
    logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.INFO else logging.INFO)


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: what journald, Loki or CloudWatch ingest as is."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


@contextlib.contextmanager
def site_lock(site: SiteConfig, command: str) -> Iterator[bool]:
    """One run per site: build, digest send and run take the lock; a second one exits 75.

    When the last holder died without releasing it, its temporary files are
    removed from the site's folders first (a walk paid only after a crash,
    never by an ordinary run). Yields whether that happened.
    """
    from publisher.lock import LOCK_NAME
    from publisher.lock import site_lock as take
    from publisher.pipeline import display

    where = display(site, site.state_dir / LOCK_NAME)
    with take(site.state_dir, command=command, now=_now(), display=where) as died:
        if died is not None:
            from publisher.output import remove_stale_temps

            logger.info("the last run (%s) did not finish: removing its temporary files", died)
            folders = (site.output_dir, site.delivery.outbox_dir, site.content_dir, site.state_dir)
            remove_stale_temps(dict.fromkeys(folders), now=_now())
        yield died is not None


def clean_outbox(site: SiteConfig) -> None:
    """Remove temp files dead writers left in the outbox, which `serve` writes without the lock."""
    from publisher.output import remove_stale_temps

    remove_stale_temps([site.delivery.outbox_dir], now=_now())


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
    with site_lock(site, "build"):
        report = pipeline.build(site, now=_now())
    _print_problems(report.problems, prefix="warning")
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
    click.echo(_summary(report))
    ping_hub(site)
    if strict and report.problems:
        ctx.exit(1)


def ping_hub(site: SiteConfig) -> None:
    """Send the WebSub pings that are due, with the site lock released and the report out.

    A hub that answers slowly or not at all then costs this process at most
    websub.DEADLINE and no other command anything; a ping never fails a run.
    """
    if not site.feeds.websub_hub:
        return
    from publisher import pipeline, websub

    try:
        websub.ping_pending(site.state_dir / pipeline.STATE_DB, site.feeds.websub_hub, now=_now())
    except PublisherError as err:
        for line in err.lines():
            logger.warning("websub: %s", line)


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
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
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
    if is_draft:
        click.echo(
            "it is a draft: to publish it, set `draft: false` in its front matter "
            "(or create it with --publish), then run `publisher build`"
        )


@cli.group()
def digest() -> None:
    """Make, preview and send the email digest.

    \b
    Examples:
      publisher digest preview --out /tmp/digest.html
      publisher digest send
      publisher digest status
      publisher digest failures
    """


@digest.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML part to FILE and the text part beside it as FILE.txt.",
)
@click.pass_context
def preview(ctx: click.Context, out: Path | None) -> None:
    """Show the digest that `digest send` would make now; record nothing.

    Without --out the text part is printed. The unsubscribe link is an example
    (token=EXAMPLE): each subscriber's own is filled in when it is sent.
    """
    from publisher import mailing
    from publisher.output import atomic_write

    site = _site(ctx)
    found = mailing.preview(site, now=_now())
    if found is None:
        click.echo("nothing new since the last digest")
        return
    rendered = found.example
    click.echo(
        f"digest {found.digest_number}: {len(found.articles)} article"
        f"{_s(len(found.articles))}; subject: {rendered.subject}",
        err=out is None,
    )
    if out is None:
        click.echo(rendered.text, nl=False)
        return
    text_path = out.with_name(out.name + ".txt")  # digest.html -> digest.html.txt
    for path, part in ((out, rendered.html), (text_path, rendered.text)):
        try:
            atomic_write(path, part.encode("utf-8"))
        except OSError as err:
            raise OutputError(str(path), f"cannot write ({err.strerror})") from err
    size = len(rendered.html.encode("utf-8"))
    click.echo(f"wrote {out} ({size / 1024:.1f} KB HTML) and {text_path}")


@digest.command()
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send and record nothing.")
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Also send messages an interrupted run may or may not have delivered.",
)
@click.pass_context
def send(ctx: click.Context, dry_run: bool, resend_uncertain: bool) -> None:
    """Finish any interrupted digest, then make and send a new one if anything is new.

    SIGTERM or Ctrl-C finishes the message in flight, records it and stops;
    the next run carries on where this one stopped.
    """
    from publisher import mailing

    site = _site(ctx)
    with (
        site_lock(site, "digest send") as cleaned,
        stop_on_signals() as stop,
        _progress_bar() as progress,
    ):
        if not cleaned:
            clean_outbox(site)
        report = mailing.send_digests(
            site,
            now=_now,
            dry_run=dry_run,
            resend_uncertain=resend_uncertain,
            should_stop=stop.is_set,
            progress=progress,
        )
    for line in _send_summary(report):
        click.echo(line)
    for address in report.bounced:
        click.echo(f"warning: {address}: marked bounced after repeated hard failures", err=True)
    if report.uncertain:
        click.echo(
            f"warning: {report.uncertain} message{_s(report.uncertain)} may or may not have "
            "been delivered (the connection dropped before the server's reply); "
            "see `publisher digest failures`, and send them with --resend-uncertain if they "
            "did not arrive",
            err=True,
        )


@digest.command(name="test")
@click.option("--to", "address", required=True, help="The address to send one test message to.")
@click.pass_context
def test_message(ctx: click.Context, address: str) -> None:
    """Send the next digest (or the latest) to one address; record nothing.

    \b
    Example:
      publisher digest test --to editor@example.org
    """
    from publisher import mailing, subscribers

    site = _site(ctx)
    recipient = subscribers.normalise_address(address, "--to")
    reply = mailing.send_test(site, recipient, now=_now())
    click.echo(f"sent a test digest to {recipient}: {reply}")


@digest.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Per digest: how many messages are sent, pending, uncertain and failed."""
    from publisher import ledger, pipeline
    from publisher.store import open_store

    site = _site(ctx)
    with open_store(site.state_dir / pipeline.STATE_DB) as store:
        counts = ledger.delivery_counts(store)
    if not counts:
        click.echo("no digest made yet")
        return
    click.echo(
        f"{'digest':>6}  {'created':<16}  {'articles':>8}  {'sent':>6}  {'pending':>7}  "
        f"{'uncertain':>9}  {'failed':>6}"
    )
    for row in counts:
        created = row.created_at.astimezone(site.timezone).strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{row.digest_id:>6}  {created:<16}  {row.articles:>8}  {row.sent:>6}  "
            f"{row.pending:>7}  {row.sending:>9}  {row.failed:>6}"
        )


@digest.command()
@click.argument("number", metavar="[DIGEST]", type=click.IntRange(min=1), required=False)
@click.pass_context
def failures(ctx: click.Context, number: int | None) -> None:
    """Each failed and uncertain delivery: address, status, when, and the server's last reply.

    "uncertain" rows were sent while the connection dropped before the
    server answered: check whether they arrived before `digest send
    --resend-uncertain`. Times are in the site's time zone. Without DIGEST,
    every digest.

    \b
    Examples:
      publisher digest failures
      publisher digest failures 3
    """
    from publisher import ledger, pipeline
    from publisher.store import open_store

    site = _site(ctx)
    with open_store(site.state_dir / pipeline.STATE_DB) as store:
        latest = ledger.latest_digest_id(store)
        if number is not None and (latest is None or number > latest):
            known = "none made yet" if latest is None else f"the latest is {latest}"
            where, message = "DIGEST", f"no digest {number} ({known})"
            raise PublisherError(where, message)
        if latest is None:
            click.echo("no digest made yet")
            return
        # Two passes, so the columns line up without holding the rows in memory.
        width = max((len(f.email) for f in ledger.iter_failures(store, number)), default=0)
        if not width:
            where = f" in digest {number}" if number else ""
            click.echo(f"no failed or uncertain deliveries{where}")
            return
        width = max(width, len("address"))
        click.echo(f"{'digest':>6}  {'address':<{width}}  {'status':<9}  {'when':<16}  reply")
        for failure in ledger.iter_failures(store, number):
            when = failure.updated_at.astimezone(site.timezone).strftime("%Y-%m-%d %H:%M")
            status = "uncertain" if failure.status == "sending" else failure.status
            click.echo(
                f"{failure.digest_id:>6}  {failure.email:<{width}}  {status:<9}  {when:<16}  "
                f"{_one_line(failure.reply)}"
            )


def _one_line(reply: str | None) -> str:
    """A server's reply as one printable line: no line breaks, no terminal escapes."""
    if not reply:
        return "(no reply recorded)"
    text = " ".join(reply.split())
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _send_summary(report: Any) -> list[str]:
    lines = []
    if report.resumed:
        lines.append("resumed digest " + ", ".join(str(i) for i in report.resumed))
    if report.made is not None:
        lines.append(
            f"made digest {report.made} with {report.articles} article{_s(report.articles)}"
        )
    elif report.note:
        lines.append(report.note)
    if report.made is not None or report.resumed:
        lines.append(
            f"sent {report.sent}, failed {report.failed}, deferred {report.deferred}, "
            f"uncertain {report.uncertain}"
            + (f", recovered {report.recovered}" if report.recovered else "")
            + (" (stopped on request)" if report.stopped else "")
        )
    return lines


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM and SIGINT ask the loop to stop after the message in flight."""
    stop = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[int], Callable[[int], None]] | None]:
    """A progress bar on stderr for long sends, only on a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    bars: list[Any] = []

    def start(total: int) -> Callable[[int], None]:
        bar = click.progressbar(length=total, label="sending", file=sys.stderr)
        bar.__enter__()
        bars.append(bar)
        return bar.update

    try:
        yield start
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)


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
