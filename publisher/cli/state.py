"""`publisher state migrate`: move a site's state from its SQLite file to PostgreSQL."""

from __future__ import annotations

import click

from publisher.cli import _common
from publisher.cli._common import plural, site_of
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
    database: carry it to every machine as PUBLISHER_SECRET.

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
    where = site.display(site.state_dir / LOCK_NAME)
    # The file's lock only: nothing may write the SQLite state while it is copied.
    with site_lock(site.state_dir, command="state migrate", now=_common.now(), display=where):
        copied = copy_state(
            site.state_db,
            target,
            progress=lambda table: click.echo(
                f"{table.name}: {table.rows} row{plural(table.rows)}"
            ),
        )
    rows = sum(table.rows for table in copied)
    click.echo(
        f"copied {len(copied)} tables ({rows} rows) from {site.display(site.state_db)}; "
        "the counts match"
    )
    click.echo(
        "next: set [state] url (or PUBLISHER_DATABASE_URL) to this database on every machine, "
        f"and PUBLISHER_SECRET to the contents of {site.display(site.state_dir / 'secret')} "
        "unless it is set already"
    )
