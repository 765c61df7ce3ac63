"""`publisher state migrate`: move a site's state from its SQLite file to PostgreSQL."""

from __future__ import annotations

import os

import click

from publisher.cli import _common
from publisher.cli._common import plural, site_of
from publisher.config import SiteConfig
from publisher.errors import ConfigError, StoreError


@click.group()
def state() -> None:
    """Move the site's state (articles, subscribers, digests, the ledger) elsewhere."""


@state.command()
@click.option(
    "--to",
    "url",
    required=True,
    metavar="URL",
    help="postgresql://user@host:port/dbname of an empty database (password from PGPASSWORD).",
)
@click.pass_context
def migrate(ctx: click.Context, url: str) -> None:
    """Copy the SQLite state into an empty PostgreSQL database, in one transaction.

    Every table is copied with its ids, the row counts are compared table by
    table, and a target that is not empty is refused. The SQLite file is
    left as it was. The secret that signs unsubscribe links is not in the
    database, only its fingerprint: copy .publisher/secret to every machine
    (or set the same PUBLISHER_SECRET on each, if the site signs with one);
    a machine with another secret stops.

    \\b
    Example:
      publisher state migrate --to postgresql://publisher@db.internal:5432/publisher
    """
    from publisher.config import values
    from publisher.service.lock import LOCK_NAME, site_lock
    from publisher.store.transfer import NO_STATE, copy_state

    site = site_of(ctx)
    try:
        target = values.state_url("--to", url)
    except ValueError as err:
        where, message = "--to", str(err)
        raise ConfigError(where, message) from None
    if not site.state_db.is_file():  # before the lock, whose file would be a first write
        raise StoreError(site.display(site.state_db), NO_STATE)
    fingerprint = _secret_fingerprint(site)
    where = site.display(site.state_dir / LOCK_NAME)
    # The file's lock only: nothing may write the SQLite state while it is copied.
    with site_lock(site.state_dir, command="state migrate", now=_common.now(), display=where):
        copied = copy_state(
            site.state_db,
            target,
            progress=lambda table: click.echo(
                f"{table.name}: {table.rows} row{plural(table.rows)}"
            ),
            secret_fingerprint=fingerprint,
        )
    rows = sum(table.rows for table in copied)
    click.echo(
        f"copied {len(copied)} tables ({rows} rows) from {site.display(site.state_db)}; "
        "the counts match"
    )
    click.echo(
        "next: set [state] url (or PUBLISHER_DATABASE_URL) to this database on every machine, "
        f"and {_carry_the_secret(site)}"
    )


def _secret_fingerprint(site: SiteConfig) -> str | None:
    """The fingerprint of the secret the site signs with; None when it never needed one.

    The copy keeps it: every link sent so far was signed with this secret and
    the suppression list is keyed with it, so a machine of the shared state
    that signs with another (a new PUBLISHER_SECRET instead of the file's
    contents) must stop, as it does beside machines that signed before it.

    :raises SubscriberError: for a secret that cannot be used (too short, a bad file).
    """
    from publisher import tokens

    if not tokens.has_secret(site.state_dir):
        return None  # no link was ever signed: the first machine's secret will be the one
    return tokens.fingerprint(tokens.load_secret(site.state_dir, create=False))


def _carry_the_secret(site: SiteConfig) -> str:
    """How the other machines get the secret this site signs with (not the file's text as
    PUBLISHER_SECRET: that would be another secret)."""
    from publisher import tokens

    if os.environ.get(tokens.SECRET_ENV):
        return f"{tokens.SECRET_ENV} to the value it has here"
    secret_file = site.state_dir / tokens.SECRET_FILE
    if secret_file.exists():
        return f"copy {site.display(secret_file)} to the same place on each (mode 0600)"
    return f"{tokens.SECRET_ENV} to one value on all of them"
