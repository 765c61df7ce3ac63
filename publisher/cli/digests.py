"""`publisher digest …`: preview, send, test, status and failures of the email digest."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from publisher.mail.segments import Segment

from publisher.cli import _common
from publisher.cli._common import (
    DigestRounds,
    live_senders,
    one_line_reply,
    plural,
    progress_bar,
    site_of,
    stop_on_signals,
)
from publisher.config import SiteConfig
from publisher.errors import ConfigError, OutputError, PublisherError


@click.group()
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
@click.option(
    "--topics",
    default="everything",
    show_default=True,
    help="The segment's topics: slugs of [topics], comma-separated.",
)
@click.option("--cadence", default="", help="The segment's cadence (default: [digest] cadence).")
@click.pass_context
def preview(ctx: click.Context, out: Path | None, topics: str, cadence: str) -> None:
    """Show the digest that `digest send` would make now for a segment; record nothing.

    A segment is a choice of topics and a cadence: its digest is the one its
    subscribers who had its latest digest would get next. Without --out the
    text part is printed. The unsubscribe link is an example (token=EXAMPLE):
    each subscriber's own is filled in when it is sent.

    \b
    Examples:
      publisher digest preview
      publisher digest preview --topics energy,danube --cadence "daily at 07:00"
    """
    from publisher.output import atomic_write
    from publisher.pipelines import digests

    site = site_of(ctx)
    segment = _segment_option(site, topics, cadence)
    found = digests.preview(site, now=_common.now(), segment=segment)
    if found is None:
        click.echo(f"nothing new since the last digest for {segment.describe(site)}")
        return
    rendered = found.example
    click.echo(
        f"digest {found.digest_number} ({segment.describe(site)}): {len(found.articles)} "
        f"article{plural(len(found.articles))}; subject: {rendered.subject}",
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


def _segment_option(site: SiteConfig, topics: str, cadence: str) -> Segment:
    """The segment --topics and --cadence name; a bad value is a usage error naming it."""
    from publisher.mail import segments

    where = "--topics"
    try:
        chosen = segments.parse_topics(site, topics)
        where = "--cadence"
        stored = segments.parse_choice_cadence(site, cadence)
    except ValueError as err:
        raise ConfigError(where, str(err)) from None
    return segments.segment_for(site, chosen, stored)


@digest.command()
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send and record nothing.")
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Also send messages an interrupted run may or may not have delivered.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=1,
    show_default=True,
    help="Send from N processes at once (for a relay that takes many connections).",
)
@click.option(
    "--no-new",
    is_flag=True,
    help="Only help send the digests already made; never make one (a sending machine).",
)
@click.pass_context
def send(
    ctx: click.Context, dry_run: bool, resend_uncertain: bool, workers: int, no_new: bool
) -> None:
    """Finish any interrupted digest, then make and send a new one if anything is new.

    Several senders may share a site, on one machine or (with a PostgreSQL
    state) many: the one that gets the site lock makes the digest, and the
    others help send it; no one gets a message twice. [delivery] rate is for
    the whole digest, however many send it. A machine that only sends (it
    has no content folder) runs it with --no-new.

    SIGTERM or Ctrl-C finishes the message in flight, records it and stops;
    the next run carries on where this one stopped.

    \b
    Examples:
      publisher digest send
      publisher digest send --workers 4
      publisher digest send --no-new
    """
    from publisher.pipelines import digests

    site = site_of(ctx)
    with (
        contextlib.ExitStack() as held,
        stop_on_signals() as stop,
        progress_bar() as progress,
    ):
        rounds = DigestRounds(site, held, "digest send", make=not no_new)
        report = digests.send_digests(
            site,
            now=_common.now,
            dry_run=dry_run,
            resend_uncertain=resend_uncertain,
            make_new=not no_new,
            making=rounds,
            workers=workers,
            should_stop=stop.is_set,
            progress=progress if workers == 1 else None,
        )
    if not (dry_run or rounds.maker or report.resumed):
        report.note = "no digest to help send"
    for line in _send_summary(report):
        click.echo(line)
    for address in report.bounced:
        click.echo(f"warning: {address}: marked bounced after repeated hard failures", err=True)
    if report.uncertain:
        click.echo(
            f"warning: {report.uncertain} message{plural(report.uncertain)} may or may not have "
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
    from publisher.mail import subscribers
    from publisher.pipelines import digests

    site = site_of(ctx)
    recipient = subscribers.normalise_address(address, "--to")
    reply = digests.send_test(site, recipient, now=_common.now())
    click.echo(f"sent a test digest to {recipient}: {reply}")


@digest.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Per digest: how many messages are sent, pending, in flight, uncertain, failed, bounced.

    Each digest is for one segment (topics and cadence), named last.

    "sending" rows are in flight under a sender that is alive; "uncertain"
    ones were left by a sender that stopped, or sent while the connection
    dropped before the server's reply.
    """
    from publisher.mail.segments import segment_from_key
    from publisher.store import open_store

    site = site_of(ctx)
    with open_store(site.state) as store:
        counts = store.delivery_counts(live=live_senders(site, store))
    if not counts:
        click.echo("no digest made yet")
        return
    click.echo(
        f"{'digest':>6}  {'created':<16}  {'articles':>8}  {'sent':>6}  {'pending':>7}  "
        f"{'sending':>7}  {'uncertain':>9}  {'failed':>6}  {'bounced':>7}  segment"
    )
    for row in counts:
        created = row.created_at.astimezone(site.timezone).strftime("%Y-%m-%d %H:%M")
        segment = segment_from_key(site, row.segment).describe(site)
        click.echo(
            f"{row.digest_id:>6}  {created:<16}  {row.articles:>8}  {row.sent:>6}  "
            f"{row.pending:>7}  {row.sending:>7}  {row.uncertain:>9}  {row.failed:>6}  "
            f"{row.bounced:>7}  {segment}"
        )


@digest.command()
@click.argument("number", metavar="[DIGEST]", type=click.IntRange(min=1), required=False)
@click.pass_context
def failures(ctx: click.Context, number: int | None) -> None:
    """Each failed, uncertain or bounced delivery: address, status, when, and what was said.

    When they come from digests of several segments, a count per segment follows.

    "bounced" and "complaint" rows were taken by the server, and a bounce or
    a spam complaint for them came back later (`bounces process`, webhooks).

    "uncertain" rows were sent while the connection dropped before the
    server answered: check whether they arrived before `digest send
    --resend-uncertain`. Times are in the site's time zone. Without DIGEST,
    every digest.

    \b
    Examples:
      publisher digest failures
      publisher digest failures 3
    """
    from publisher.store import open_store

    site = site_of(ctx)
    with open_store(site.state) as store:
        latest = store.latest_digest_id()
        if number is not None and (latest is None or number > latest):
            known = "none made yet" if latest is None else f"the latest is {latest}"
            where, message = "DIGEST", f"no digest {number} ({known})"
            raise PublisherError(where, message)
        if latest is None:
            click.echo("no digest made yet")
            return
        # Two passes, so the columns line up without holding the rows in memory.
        live = live_senders(site, store)
        width = max((len(f.email) for f in store.iter_failures(number, live=live)), default=0)
        if not width:
            where = f" in digest {number}" if number else ""
            click.echo(f"no failed or uncertain deliveries{where}")
            return
        width = max(width, len("address"))
        segment_of = {c.digest_id: c.segment for c in store.delivery_counts(number)}
        by_segment: dict[str | None, dict[str, int]] = {}
        click.echo(f"{'digest':>6}  {'address':<{width}}  {'status':<9}  {'when':<16}  reply")
        for failure in store.iter_failures(number, live=live):
            when = failure.updated_at.astimezone(site.timezone).strftime("%Y-%m-%d %H:%M")
            status, reply = _failure_cells(failure.status, failure.reply, failure.bounce)
            click.echo(
                f"{failure.digest_id:>6}  {failure.email:<{width}}  {status:<9}  {when:<16}  "
                f"{one_line_reply(reply)}"
            )
            tally = by_segment.setdefault(segment_of.get(failure.digest_id), {})
            tally[status] = tally.get(status, 0) + 1
    for line in _segment_tallies(site, by_segment):
        click.echo(line)


def _segment_tallies(site: SiteConfig, by_segment: dict[str | None, dict[str, int]]) -> list[str]:
    """Where the failures of several segments are listed, how many each segment has."""
    from publisher.mail.segments import segment_from_key

    if len(by_segment) < 2:
        return []
    lines = ["by segment:"]
    for key, tally in sorted(by_segment.items(), key=lambda item: -sum(item[1].values())):
        counts = ", ".join(f"{count} {status}" for status, count in sorted(tally.items()))
        lines.append(f"  {segment_from_key(site, key).describe(site)}: {counts}")
    return lines


def _failure_cells(status: str, reply: str | None, bounce: str | None) -> tuple[str, str | None]:
    """The status and reply columns of a ledger row: a bounce that came later speaks first."""
    if bounce is not None:
        shown = "complaint" if bounce.startswith("complaint") else "bounced"
        return shown, f"{bounce} (came back after the server took it)"
    return ("uncertain" if status == "sending" else status), reply


def _send_summary(report: Any) -> list[str]:
    lines = []
    if report.resumed:
        lines.append("resumed digest " + ", ".join(str(i) for i in report.resumed))
    if len(report.made) == 1:
        lines.append(
            f"made digest {report.made[0]} with {report.articles} article{plural(report.articles)}"
        )
    elif report.made:
        numbers = ", ".join(str(i) for i in report.made)
        lines.append(
            f"made digests {numbers} with {report.articles} article{plural(report.articles)} in all"
        )
    elif report.note:
        lines.append(report.note)
    if report.made or report.resumed:
        lines.append(
            f"sent {report.sent}, failed {report.failed}, deferred {report.deferred}, "
            f"uncertain {report.uncertain}"
            + (f", recovered {report.recovered}" if report.recovered else "")
            + (" (stopped on request)" if report.stopped else "")
        )
    return lines
