"""What the commands share: the clock, the site, the lock, signals, and the lines they print.

Every command module imports from here, never from `publisher.cli` itself
(which imports them), so the package has no cycle.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from publisher.config import SiteConfig, load_config
from publisher.errors import PublisherError
from publisher.model import ContentProblem
from publisher.service.summary import build_summary

if TYPE_CHECKING:
    from publisher.store import Store

logger = logging.getLogger("publisher")

# C0 and C1 controls: a server's reply printed as is could drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def now() -> datetime:
    """The one clock of the command line: nothing below it calls datetime.now()."""
    return datetime.now(UTC)


def site_of(ctx: click.Context) -> SiteConfig:
    """The site named by --config (or PUBLISHER_CONFIG), loaded and checked.

    :raises ConfigError: for any problem in publisher.toml.
    """
    path: Path = ctx.obj["config"]
    return load_config(path)


def check_signing_key(site: SiteConfig) -> None:
    """Read the DKIM key now, so a bad one stops a long-running command at its start.

    :raises ConfigError: for a key that cannot be used.
    """
    from publisher.mail import signing

    signing.site_key(site)


def live_senders(site: SiteConfig, store: Store) -> list[str]:
    """The senders alive now: their `sending` rows are in flight, not uncertain."""
    from publisher.delivery import send

    return send.live_senders(store, since=now() - timedelta(seconds=site.delivery.sender_timeout))


def plural(count: int) -> str:
    return "" if count == 1 else "s"


def log_at_info(name: str) -> None:
    """Let the service's own logger *name* through at INFO, whatever the default level.

    Libraries stay at WARNING, but a service's one line per job is what an
    operator reads in the journal: `publisher run` without -v was silent.
    """
    root = logging.getLogger()
    logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.INFO else logging.INFO)


class JsonFormatter(logging.Formatter):
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
    from publisher.service.lock import LOCK_NAME
    from publisher.service.lock import site_lock as take

    where = site.display(site.state_dir / LOCK_NAME)
    with take(
        site.state_dir, command=command, now=now(), display=where, state_url=site.state_url
    ) as died:
        if died is not None:
            from publisher.output import remove_stale_temps

            logger.info("the last run (%s) did not finish: removing its temporary files", died)
            folders = (
                site.output_dir,
                site.site_dir,
                site.delivery.outbox_dir,
                site.content_dir,
                site.state_dir,
            )
            remove_stale_temps(dict.fromkeys(folders), now=now())
        yield died is not None


class DigestRounds:
    """The making lock of each round of `digest send`, and the site lock from the first.

    The first round takes the site lock if it can, inside the making lock:
    then the sender that gets it makes the digest, and one that does not
    waits for that digest (the making lock) and helps send it. Either way
    the site lock, once taken, is held by *held* until the command ends.
    With *make* false (`--no-new`, a machine without the content folder) it
    never takes the site lock: it only waits for a digest being made.
    """

    def __init__(
        self, site: SiteConfig, held: contextlib.ExitStack, command: str, *, make: bool = True
    ) -> None:
        self.site = site
        self.held = held
        self.command = command
        self.first = make  # a sender that may not make never asks for the site lock
        self.maker = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[bool]:
        from publisher.errors import LockHeldError
        from publisher.service.lock import making_lock

        display = self.site.display(self.site.state_dir)
        with making_lock(self.site.state_dir, display=display, state_url=self.site.state_url):
            if self.first:
                self.first = False
                try:
                    cleaned = self.held.enter_context(site_lock(self.site, self.command))
                except LockHeldError as err:
                    helping = f"{err.busy}: sending the digests already made, making none"
                    click.echo(f"{err.where}: {helping}", err=True)
                else:
                    self.maker = True
                    if not cleaned:
                        clean_outbox(self.site)
            yield self.maker


def clean_outbox(site: SiteConfig) -> None:
    """Remove temp files dead writers left in the outbox, which `serve` writes without the lock."""
    from publisher.output import remove_stale_temps

    remove_stale_temps([site.delivery.outbox_dir], now=now())


def ping_hub(site: SiteConfig) -> None:
    """Send the WebSub pings that are due, with the site lock released and the report out.

    A hub that answers slowly or not at all then costs this process at most
    websub.DEADLINE and no other command anything; a ping never fails a run.
    """
    if not site.feeds.websub_hub:
        return
    from publisher.feeds import websub

    try:
        websub.ping_pending(site.state, site.feeds.websub_hub, now=now())
    except PublisherError as err:
        for line in err.lines():
            logger.warning("websub: %s", line)


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
def progress_bar() -> Iterator[Callable[[int], Callable[[int], None]] | None]:
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


def print_problems(problems: tuple[ContentProblem, ...], *, prefix: str) -> None:
    for problem in problems:
        for line in problem.lines:
            click.echo(f"{prefix}: {line}", err=True)
        if problem.kept_previous:
            click.echo(f"{prefix}: {problem.path}: its last good version stays published", err=True)


# `publisher build` prints the line the service logs for each rebuild: one definition, below both.
summary = build_summary


def one_line_reply(reply: str | None) -> str:
    """A server's reply as one printable line: no line breaks, no terminal escapes."""
    if not reply:
        return "(no reply recorded)"
    text = " ".join(reply.split())
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
