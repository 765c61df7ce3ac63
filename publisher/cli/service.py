"""`publisher run` (the service, or one pass for cron) and `publisher status`."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click

from publisher.cli import _common
from publisher.cli._common import (
    clean_outbox,
    log_at_info,
    ping_hub,
    plural,
    site_lock,
    site_of,
    stop_on_signals,
    summary,
)
from publisher.config import SiteConfig
from publisher.store import settings

if TYPE_CHECKING:
    from publisher.feeds.websub import BackgroundPinger
    from publisher.model import DeliveryCounts

logger = logging.getLogger("publisher.run")

DIGEST_RETRY = timedelta(minutes=5)  # after a failed send, before trying again


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
    from publisher.pipelines import build
    from publisher.service.scheduler import DigestClock, Service, next_slot
    from publisher.store import open_store

    site = site_of(ctx)
    log_at_info(logger.name)
    with site_lock(site, "run --once" if once else "run"), stop_on_signals() as stop:
        # The service holds the lock for its lifetime: its pings go out from a
        # thread of their own, so that a slow hub never delays its jobs.
        pinger = _background_pinger(site, once=once)
        with open_store(site.state_db) as store:
            handled = store.get_setting(settings.DIGEST_SLOT)
        clock = DigestClock(
            site.digest.cadence, site.timezone, datetime.fromisoformat(handled) if handled else None
        )
        failed_at: list[datetime] = []

        def rebuild() -> None:
            try:
                report = build.build(site, now=_common.now())
            finally:
                if pinger is not None:
                    pinger.wake()  # what this build changed, and earlier pings now due
            for problem in report.problems:
                for line in problem.lines:
                    logger.warning("%s", line)
            for line in report.warnings:
                logger.warning("%s", line)
            logger.info("build: %s", summary(report))  # also when nothing changed: it ran
            _record(site, settings.NEXT_REBUILD, _common.now() + site.rebuild_every)

        def digest_check() -> None:
            now = _common.now()
            if failed_at and now - failed_at[-1] < DIGEST_RETRY:
                return
            slot = clock.due(now)
            _record(site, settings.DIGEST_SLOT, clock.handled)
            _record(site, settings.NEXT_DIGEST, next_slot(site.digest.cadence, site.timezone, now))
            if slot is None and not _has_unfinished(site):
                return
            from publisher.pipelines import digests

            clean_outbox(site)
            try:
                report = digests.send_digests(
                    site, now=_common.now, should_stop=stop.is_set, make_new=slot is not None
                )
            except Exception:
                failed_at.append(_common.now())
                raise
            failed_at.clear()
            if slot is not None and not report.stopped:
                clock.handled = slot
                _record(site, settings.DIGEST_SLOT, slot)
            logger.info(
                "digest: made %s, sent %d, failed %d, deferred %d, uncertain %d%s",
                report.made or "none",
                report.sent,
                report.failed,
                report.deferred,
                report.uncertain,
                f" ({report.note})" if report.note else "",
            )

        service = Service(
            rebuild=rebuild, digest_check=digest_check, rebuild_every=site.rebuild_every, stop=stop
        )
        if once:
            service.run_once()
        else:
            logger.info(
                "running: rebuild every %s, digest %s (%s)",
                site.rebuild_every,
                site.digest.cadence,
                site.timezone.key,
            )
            try:
                service.run_forever()
            finally:
                if pinger is not None:
                    pinger.close()
    if once:
        ping_hub(site)


def _background_pinger(site: SiteConfig, *, once: bool) -> BackgroundPinger | None:
    if once or not site.feeds.websub_hub:
        return None
    from publisher.feeds.websub import BackgroundPinger

    return BackgroundPinger(site.state_db, site.feeds.websub_hub, now=_common.now)


def _record(site: SiteConfig, key: str, moment: datetime | None) -> None:
    from publisher.store import open_store

    if moment is None:
        return
    with open_store(site.state_db) as store, store.transaction():
        store.set_setting(key, moment.isoformat())


def _has_unfinished(site: SiteConfig) -> bool:
    from publisher.store import open_store

    with open_store(site.state_db) as store:
        return bool(store.unfinished_digests())


@click.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the last build, the service, the next digest and the last digest's ledger.

    Then the subscriber counts, and how many addresses are on the suppression
    list (a count only: the list holds no readable address).
    """
    from publisher.service.lock import holder
    from publisher.service.scheduler import next_slot
    from publisher.store import open_store

    site = site_of(ctx)
    tz = site.timezone

    def when(text: str | None) -> str:
        if not text:
            return "never"
        return datetime.fromisoformat(text).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    last_build = next_due = next_rebuild = next_digest_run = None
    counts: dict[str, int] = {}
    digests: list[DeliveryCounts] = []
    by_status: dict[str, int] = {}
    suppressed = 0
    database = site.state_db
    # A site never built has no state: say so, and create none (opening makes it).
    if database.exists():
        with open_store(database) as store:
            last_build = store.get_setting(settings.LAST_BUILD)
            counts = json.loads(store.get_setting(settings.COUNTS) or "{}")
            next_due = store.get_setting(settings.NEXT_DUE)
            next_rebuild = store.get_setting(settings.NEXT_REBUILD)
            next_digest_run = store.get_setting(settings.NEXT_DIGEST)
            digests = store.delivery_counts()
            by_status = store.subscriber_counts()
            suppressed = store.count_suppressions()
    click.echo(f"site: {site.title} ({site.display_path})")
    line = f"last build: {when(last_build)}"
    if counts:
        loaded, drafts = counts["loaded"], counts["drafts"]
        line += (
            f" ({loaded} article{plural(loaded)}: {counts['published']} published, "
            f"{drafts} draft{plural(drafts)}, {counts['scheduled']} scheduled)"
        )
    click.echo(line)
    if next_due:
        click.echo(f"next scheduled article: {when(next_due)}")
    running = holder(site.state_dir)
    if running and "`publisher run`" in running:
        click.echo(
            f"service: running ({running}); next rebuild {when(next_rebuild)}, "
            f"next digest {when(next_digest_run)}"
        )
    elif running:
        click.echo(f"service: not running; busy: {running}")
    else:
        click.echo("service: not running")
    upcoming = next_slot(site.digest.cadence, tz, _common.now())
    click.echo(
        f"digest cadence: {site.digest.cadence} ({tz.key}); next at "
        f"{upcoming.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    if digests:
        latest = digests[0]
        click.echo(
            f"last digest: {latest.digest_id}, made {when(latest.created_at.isoformat())}, "
            f"{latest.articles} article{plural(latest.articles)}: sent {latest.sent}, "
            f"pending {latest.pending}, "
            f"uncertain {latest.sending}, failed {latest.failed}"
        )
    else:
        click.echo("last digest: none yet")
    click.echo(
        f"subscribers: {by_status.get('active', 0)} active, "
        f"{by_status.get('unsubscribed', 0)} unsubscribed, {by_status.get('bounced', 0)} bounced; "
        f"suppression list: {suppressed} address{'' if suppressed == 1 else 'es'}"
    )


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback by default: put a TLS proxy in front).",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the feeds, the sign-up form, unsubscribe and the digest archive over HTTP.

    Runs beside `publisher run`, sharing the state safely. SIGTERM or Ctrl-C
    finishes the requests in flight and stops. See the README for nginx/Caddy.

    \b
    Example:
      publisher serve --port 8080
    """
    from publisher.web.app import run_server

    site = site_of(ctx)
    log_at_info("publisher.web")  # the address it listens on, and the access log
    clean_outbox(site)  # confirmation messages go there, without the site lock
    run_server(site, host=host, port=port)
