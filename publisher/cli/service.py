"""`publisher run` (the service, or one pass for cron), `publisher status` and `publisher serve`.

Thin commands: each takes what the command line gives (the site, the lock,
the signals, the clock), calls the service or the web stack, and prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from publisher.cli import _common
from publisher.cli._common import (
    check_signing_key,
    clean_outbox,
    log_at_info,
    ping_hub,
    plural,
    site_lock,
    site_of,
    stop_on_signals,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from publisher.config import SiteConfig
    from publisher.model import DeliveryCounts
    from publisher.service.status import SiteStatus


@click.command()
@click.option(
    "--once",
    is_flag=True,
    help="Run what is due now (a rebuild, and a digest if its time has come), then exit.",
)
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Stay up: rebuild every [schedule] rebuild_every, send digests at their cadence.

    Times are in the site's time zone. A failing job is logged and the service
    goes on. SIGTERM or Ctrl-C lets the job in flight finish (for a digest, the
    message being sent), records it, and exits 0. With --once it does one pass,
    for cron.

    \b
    Examples:
      publisher run                  as a service (see the README's systemd unit)
      */5 * * * * cd /srv/site && publisher run --once
    """
    from publisher.service import run as service

    site = site_of(ctx)
    check_signing_key(site)
    log_at_info(service.logger.name)
    with site_lock(site, "run --once" if once else "run"), stop_on_signals() as stop:
        service.run_service(site, once=once, stop=stop, now=_common.now)
    if once:
        ping_hub(site)  # with the lock released: a slow hub holds up no other run


@click.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the last build, the service, the next digest and the last digest's ledger.

    Then the subscriber counts, and how many addresses are on the suppression
    list (a count only: the list holds no readable address).
    """
    from publisher.service.status import site_status

    site = site_of(ctx)
    for line in _status_lines(site, site_status(site, now=_common.now())):
        click.echo(line)


def _status_lines(site: SiteConfig, status: SiteStatus) -> list[str]:
    tz = site.timezone
    lines = [f"site: {site.title} ({site.display_path})", _build_line(status, tz)]
    if status.next_article:
        lines.append(f"next scheduled article: {_when(status.next_article, tz)}")
    upcoming = status.upcoming_digest.strftime("%Y-%m-%d %H:%M %Z")
    return [
        *lines,
        _service_line(status, tz),
        f"digest cadence: {site.digest.cadence} ({tz.key}); next at {upcoming}",
        _digest_line(status.last_digest, tz),
        f"subscribers: {status.active} active, {status.unsubscribed} unsubscribed, "
        f"{status.bounced} bounced; suppression list: {status.suppressed} "
        f"address{'' if status.suppressed == 1 else 'es'}",
        *_segment_lines(site, status, tz),
    ]


def _segment_lines(site: SiteConfig, status: SiteStatus, tz: ZoneInfo) -> list[str]:
    """A line per segment, where subscribers have more than one thing to choose."""
    if not site.offers_choices:
        return []
    lines = []
    for segment in status.segments:
        upcoming = "each new article" if segment.upcoming is None else _when(segment.upcoming, tz)
        last = segment.last_digest
        latest = "none yet" if last is None else f"{last.digest_id} ({_when(last.created_at, tz)})"
        lines.append(
            f"  segment {segment.description}: {segment.active} active; next {upcoming}; "
            f"last digest {latest}"
        )
    return lines


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _build_line(status: SiteStatus, tz: ZoneInfo) -> str:
    line = f"last build: {_when(status.last_build, tz)}"
    counts = status.counts
    if counts is None:
        return line
    return line + (
        f" ({counts.loaded} article{plural(counts.loaded)}: {counts.published} published, "
        f"{counts.drafts} draft{plural(counts.drafts)}, {counts.scheduled} scheduled)"
    )


def _service_line(status: SiteStatus, tz: ZoneInfo) -> str:
    if status.service_running:
        return (
            f"service: running ({status.lock_holder}); next rebuild "
            f"{_when(status.next_rebuild, tz)}, next digest {_when(status.next_digest, tz)}"
        )
    if status.lock_holder:
        return f"service: not running; busy: {status.lock_holder}"
    return "service: not running"


def _digest_line(latest: DeliveryCounts | None, tz: ZoneInfo) -> str:
    if latest is None:
        return "last digest: none yet"
    return (
        f"last digest: {latest.digest_id}, made {_when(latest.created_at, tz)}, "
        f"{latest.articles} article{plural(latest.articles)}: sent {latest.sent}, "
        f"pending {latest.pending}, sending {latest.sending}, uncertain {latest.uncertain}, "
        f"failed {latest.failed}"
    )


@click.command()
@click.option(
    "--host",
    default=None,
    help="Address to listen on [default: [web] host, else 127.0.0.1: put a TLS proxy in front].",
)
@click.option(
    "--port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Port to listen on [default: [web] port, else 8080].",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the pages, the feeds, the sign-up form and unsubscribe over HTTP.

    Runs beside `publisher run`, sharing the state safely. SIGTERM or Ctrl-C
    finishes the requests in flight and stops. See the README for nginx/Caddy.

    \b
    Example:
      publisher serve --port 8080
    """
    from publisher.web.app import run_server

    site = site_of(ctx)
    check_signing_key(site)  # confirmations are signed: a bad key stops serve at its start
    log_at_info("publisher.web")  # the address it listens on, and the access log
    clean_outbox(site)  # confirmation messages go there, without the site lock
    run_server(site, host=host or site.web.host, port=port or site.web.port, now=_common.now)
