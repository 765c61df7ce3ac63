"""`publisher subscribers …` and `publisher unsubscribe`: thin commands over mail.subscribers.

Each command opens the site's state database, does one thing in one
transaction and prints one line; errors are PublisherErrors, printed by the
boundary in publisher.cli as `error: <where>: <what>`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from publisher.cli import _common
from publisher.cli._common import plural, site_of
from publisher.config import SiteConfig
from publisher.errors import ConfigError, OutputError
from publisher.model import SUBSCRIBER_STATUSES, Subscriber
from publisher.text import columns, display_width

if TYPE_CHECKING:
    from publisher.mail.subscribers import CadenceChoice, Keep, TopicsChoice
    from publisher.store import Store

Command = TypeVar("Command", bound=Callable[..., Any])
Chosen = TypeVar("Chosen")


@contextmanager
def _open(
    ctx: click.Context, site: SiteConfig | None = None
) -> Iterator[tuple[SiteConfig, Store, datetime]]:
    """The site (*site*, once loaded) and its state, open, and the time now."""
    from publisher.store import open_store

    site = site or site_of(ctx)
    with open_store(site.state) as store:
        yield site, store, _common.now()


@click.group()
def subscribers() -> None:
    """Add, remove, list, import and export the digest's subscribers.

    Addresses are checked and stored with a lower-case domain; the same
    address in other capitals is the same subscriber.

    \b
    Examples:
      publisher subscribers add ada@example.org --name "Ada Lovelace"
      publisher subscribers set ada@example.org --topics energy --cadence "daily at 07:00"
      publisher subscribers import people.csv
      publisher subscribers list --status active
    """


def choice_options(command: Command) -> Command:
    """--topics and --cadence, as `add` and `set` take them."""
    command = click.option(
        "--cadence",
        default=None,
        help="When they get digests: one of [digest] cadences, or 'default' (the site's).",
    )(command)
    return click.option(
        "--topics",
        default=None,
        help="Topic slugs between commas (energy,danube), or 'everything'.",
    )(command)


def _read_choices(
    site: SiteConfig, topics: str | None, cadence: str | None
) -> tuple[TopicsChoice | Keep, CadenceChoice | Keep]:
    """The options' values, checked against the site; KEEP for an option not given.

    :raises ConfigError: (exit 2) naming the option, for a topic or cadence the site lacks.
    """
    from publisher.mail import subscribers as library

    return (
        _option("--topics", topics, lambda text: library.read_topics(site, text)),
        _option("--cadence", cadence, lambda text: library.read_cadence(site, text)),
    )


def _option(option: str, text: str | None, read: Callable[[str], Chosen]) -> Chosen | Keep:
    from publisher.mail.subscribers import KEEP

    if text is None:
        return KEEP
    try:
        return read(text)
    except ValueError as err:
        raise ConfigError(option, str(err)) from None


def choices_text(site: SiteConfig, subscriber: Subscriber) -> str:
    """What the subscriber gets now: "topics energy, danube; cadence daily at 07:00"."""
    return f"topics {_topics_cell(site, subscriber)}; cadence {_cadence_cell(site, subscriber)}"


def _topics_cell(site: SiteConfig, subscriber: Subscriber) -> str:
    from publisher.mail.segments import normalise_topics

    topics = normalise_topics(site, subscriber.topics)
    return "everything" if topics is None else ", ".join(topics)


def _cadence_cell(site: SiteConfig, subscriber: Subscriber) -> str:
    from publisher.mail.subscribers import chosen_cadence

    cadence = chosen_cadence(site, subscriber.cadence)
    return f"default ({site.digest.cadence})" if cadence is None else str(cadence)


@subscribers.command()
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name, shown in the To: header.")
@choice_options
@click.pass_context
def add(ctx: click.Context, email: str, name: str, topics: str | None, cadence: str | None) -> None:
    """Subscribe EMAIL; with --name, the stored name is replaced.

    --topics and --cadence set what they get (as `set` does, for an address
    already subscribed too); without them a new subscriber gets everything
    at the site's default cadence.

    An address that unsubscribed, bounced or was removed is refused (exit 1):
    only a sign-up that the person confirms themselves subscribes it again.

    \b
    Examples:
      publisher subscribers add ada@example.org --name "Ada Lovelace"
      publisher subscribers add ada@example.org --topics energy,danube --cadence "each article"
    """
    from publisher.mail import subscribers as library
    from publisher.mail.secret import site_secret

    site = site_of(ctx)
    chosen_topics, chosen_cadence = _read_choices(site, topics, cadence)  # before any write
    with _open(ctx, site) as (site, store, now):
        secret = site_secret(site, store)
        with store.transaction():
            subscriber, outcome = library.add_subscriber(
                store, secret, email, name, now=now, topics=chosen_topics, cadence=chosen_cadence
            )
    said = f"{subscriber.email} is already subscribed"
    if outcome != "already subscribed":
        said = f"{outcome} {subscriber.email}"
    if topics is not None or cadence is not None:
        said += f": {choices_text(site, subscriber)}"
    click.echo(said)


@subscribers.command(name="set")
@click.argument("email")
@choice_options
@click.pass_context
def set_(ctx: click.Context, email: str, topics: str | None, cadence: str | None) -> None:
    """Change what EMAIL chose: its topics, its cadence, or both.

    --topics takes topic slugs of publisher.toml's [topics] between commas,
    or "everything" (choosing every topic is everything too: articles in no
    topic, and topics added later). --cadence takes one of [digest]
    cadences, or "default" to follow the site's [digest] cadence. An option
    left out keeps its choice. The change is a line of `show`'s history.

    \b
    Examples:
      publisher subscribers set ada@example.org --topics energy,danube
      publisher subscribers set ada@example.org --cadence "daily at 07:00"
      publisher subscribers set ada@example.org --topics everything --cadence default
    """
    from publisher.mail import subscribers as library
    from publisher.mail.secret import site_secret

    if topics is None and cadence is None:
        where, message = "--topics, --cadence", "missing: give one of them, or both"
        raise ConfigError(where, message)
    site = site_of(ctx)
    chosen_topics, chosen_cadence = _read_choices(site, topics, cadence)  # before any write
    with _open(ctx, site) as (site, store, now):
        secret = site_secret(site, store)
        with store.transaction():
            subscriber, changed = library.set_choices(
                store, secret, email, topics=chosen_topics, cadence=chosen_cadence, now=now
            )
    if changed:
        click.echo(f"set {subscriber.email}: {choices_text(site, subscriber)}")
    else:
        click.echo(f"{subscriber.email} already has {choices_text(site, subscriber)}")


@subscribers.command()
@click.argument("email")
@click.pass_context
def remove(ctx: click.Context, email: str) -> None:
    """Delete EMAIL, its delivery history and its sign-ups.

    What stays is a suppression entry that holds no readable address (a keyed
    hash): `add` and `import` refuse the address from then on, and only a
    sign-up the person confirms themselves lifts it.

    \b
    Example:
      publisher subscribers remove ada@example.org
    """
    from publisher.mail import subscribers as library
    from publisher.mail.secret import site_secret

    with _open(ctx) as (site, store, now):
        secret = site_secret(site, store)
        with store.transaction():
            subscriber = library.remove_subscriber(store, secret, email, now=now)
    click.echo(f"removed {subscriber.email}")


@subscribers.command(name="list")
@click.option(
    "--status",
    type=click.Choice(SUBSCRIBER_STATUSES),
    default=None,
    help="Show only subscribers with this status (default: all).",
)
@click.pass_context
def list_(ctx: click.Context, status: str | None) -> None:
    """Show subscribers in aligned columns: email, name, status, since, topics, cadence.

    "since" is the day the address was first added, in the site's time zone;
    topics and cadence are what each one gets now ("everything", "default
    (…)" for those who chose none, or whose choice the site no longer offers).

    \b
    Example:
      publisher subscribers list --status bounced
    """

    with _open(ctx) as (site, store, _):
        # Two passes, so the columns line up without holding the list in memory.
        heads = ("email", "name", "status", "since", "topics", "cadence")
        widths = [len(head) for head in heads[:-1]]
        count = 0
        for subscriber in store.iter_subscribers(status=status):
            count += 1
            for column, text in enumerate(_cells(subscriber, site)[:-1]):
                widths[column] = max(widths[column], display_width(text))
        if not count:
            click.echo(f"no {status + ' ' if status else ''}subscribers")
            return
        click.echo(columns(heads, widths))
        for subscriber in store.iter_subscribers(status=status):
            click.echo(columns(_cells(subscriber, site), widths))


def _cells(subscriber: Subscriber, site: SiteConfig) -> tuple[str, ...]:
    since = subscriber.created_at.astimezone(site.timezone).date().isoformat()
    return (
        subscriber.email,
        subscriber.name,
        subscriber.status,
        since,
        _topics_cell(site, subscriber),
        _cadence_cell(site, subscriber),
    )


@subscribers.command(name="import")
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.pass_context
def import_(ctx: click.Context, file: Path) -> None:
    """Add the addresses in a CSV FILE with an `email` and optional `name` column.

    The first row must name the columns (any case, `,` or `;` or tab between
    them; a `status` column as `export` writes is honoured, others are
    ignored). Optional `topics` (slugs between spaces or commas; empty:
    everything) and `cadence` (empty: the site's default) columns give new
    subscribers their choices; addresses already present keep their name and
    choices (change those with `set`). Bad rows and repeated addresses are
    reported as warnings and left out; the good rows go in together.
    Addresses that unsubscribed, bounced or were removed earlier are never
    resubscribed by an import: each gets a warning line and is skipped.
    Exits 0 when the good rows were imported, 1 when the file had only bad rows
    or could not be read at all.

    \b
    Example:
      publisher subscribers import people.csv
    """
    from publisher.mail import lists
    from publisher.mail.secret import site_secret

    with _open(ctx) as (site, store, now):
        secret = site_secret(site, store)
        with store.transaction():
            report = lists.import_csv(store, secret, file, site=site, now=now)
    for line in (*report.problems, *report.skipped_rows):
        click.echo(f"warning: {line}", err=True)
    bad = len(report.problems)
    click.echo(
        f"imported {report.added} subscriber{plural(report.added)}: "
        f"{report.already_present} already present, "
        f"{report.skipped_unsubscribed} unsubscribed or bounced earlier and skipped, "
        f"{bad} bad row{plural(bad)}"
    )
    if bad and not report.good_rows:
        ctx.exit(1)


@subscribers.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the CSV to this file (replaced atomically) instead of standard output.",
)
@click.pass_context
def export(ctx: click.Context, out: Path | None) -> None:
    """Write every subscriber as CSV: email, name, status, created_at, topics, cadence.

    The file can be imported again elsewhere: the import honours the status
    column, so people who unsubscribed stay unsubscribed, and the topics and
    cadence columns (empty: everything, the default), so everyone keeps
    what they chose.

    \b
    Examples:
      publisher subscribers export > subscribers.csv
      publisher subscribers export --out backup/subscribers.csv
    """
    from publisher.mail import lists

    with _open(ctx) as (site, store, _):
        if out is None:
            lists.export_csv(store, sys.stdout, site=site)
            return
        try:
            with click.open_file(str(out), "w", encoding="utf-8", atomic=True) as stream:
                count = lists.export_csv(store, stream, site=site)
        except OSError as err:
            message = f"cannot write the export ({err.strerror or err})"
            raise OutputError(str(out), message) from err
    click.echo(f"exported {count} subscriber{plural(count)} to {out}")


@click.command()
@click.argument("token")
@click.pass_context
def unsubscribe(ctx: click.Context, token: str) -> None:
    """Unsubscribe the person an unsubscribe TOKEN (from a digest's link) belongs to.

    For requests that arrive by mail or by hand; running it twice is harmless.
    A token that is forged, cut short or from another site is refused.

    \b
    Example:
      publisher unsubscribe 42.dGhpcyBpcyBub3QgYSByZWFsIHRva2VuIGF0IGFsbA
    """
    from publisher.mail import subscribers as library
    from publisher.mail.secret import site_secret

    with _open(ctx) as (site, store, now):
        secret = site_secret(site, store)
        with store.transaction():
            subscriber = library.unsubscribe(store, secret, token, now=now, source="cli")
    click.echo(f"unsubscribed {subscriber.email}")


@subscribers.command()
@click.argument("email")
@click.pass_context
def show(ctx: click.Context, email: str) -> None:
    """Show EMAIL's status, its counts, its choices and its whole history, removed or not.

    Each line of the history says when (in the site's time zone), what
    changed, why, and what said so (the command line, the web, a bounce
    mailbox, a provider's webhook, the SMTP server).

    \b
    Example:
      publisher subscribers show ada@example.org
    """
    from publisher.mail import subscribers as library
    from publisher.mail.secret import site_secret

    with _open(ctx) as (site, store, _):
        secret = site_secret(site, store)
        found = library.history(store, secret, email)
    if found.subscriber is None and not found.events and found.suppression is None:
        click.echo(f"{found.email}: not a subscriber, and no history")
        return
    if found.subscriber is not None:
        person = found.subscriber
        name = f" ({person.name})" if person.name else ""
        click.echo(f"{person.email}{name}: {person.status}")
        click.echo(
            f"  since {person.created_at.astimezone(site.timezone).date().isoformat()}, "
            f"hard failures {person.hard_failures}, soft bounces in a row {found.soft_bounces}"
        )
        click.echo(f"  topics: {_topics_shown(site, person)}")
        click.echo(f"  cadence: {_cadence_shown(site, person)}")
    else:
        click.echo(f"{found.email}: removed")
    if found.suppression is not None:
        click.echo(f"  suppressed: {found.suppression} (only a sign-up they confirm lifts it)")
    if found.events:
        click.echo("history:")
    for event in found.events:
        when = event.at.astimezone(site.timezone).strftime("%Y-%m-%d %H:%M")
        click.echo(f"  {when}  {event.change}  {event.reason}  [{event.source}]")


def _topics_shown(site: SiteConfig, subscriber: Subscriber) -> str:
    """Titles and slugs ("Energy (energy)"), and the chosen ones no longer offered."""
    from publisher.mail.segments import normalise_topics

    topics = normalise_topics(site, subscriber.topics)
    titles = {topic.slug: topic.title for topic in site.topics}
    shown = "everything" if topics is None else ", ".join(f"{titles[t]} ({t})" for t in topics)
    gone = [t for t in subscriber.topics or () if t not in titles]
    if gone:
        shown += f"; chose {', '.join(gone)}{'' if topics is None else ' too'}, no longer offered"
    return shown


def _cadence_shown(site: SiteConfig, subscriber: Subscriber) -> str:
    """The cadence they get, and the one they chose when the site no longer offers it."""
    from publisher.mail.subscribers import chosen_cadence

    shown = _cadence_cell(site, subscriber)
    if subscriber.cadence is not None and chosen_cadence(site, subscriber.cadence) is None:
        shown += f"; chose '{subscriber.cadence}', no longer offered"
    return shown
