"""`publisher bounces process`: read a mailbox of bounces and complaints, apply them, move them."""

from __future__ import annotations

import click

from publisher.cli import _common
from publisher.cli._common import site_of


@click.group()
def bounces() -> None:
    """Bounces and complaints that come back by mail after a digest went out.

    \b
    Example:
      publisher bounces process ~/Maildir/.bounces
    """


@bounces.command()
@click.argument("source", required=False)
@click.option(
    "--move-to",
    "move_to",
    default=None,
    help="Where read messages go (default: [bounces] processed_folder, 'Processed').",
)
@click.pass_context
def process(ctx: click.Context, source: str | None, move_to: str | None) -> None:
    """Read every message in SOURCE and apply the bounces and complaints it holds.

    SOURCE is a Maildir folder, an mbox file or imaps://user@host[:port]/FOLDER
    (password in PUBLISHER_IMAP_PASSWORD); without it, [bounces] mailbox.
    Each message gets one line: hard bounce, soft bounce, complaint,
    duplicate, auto-reply ignored, not attributable ignored, or malformed
    (left in place). Read messages are moved to the processed folder after
    the store has committed them, never deleted.

    \b
    Examples:
      publisher bounces process /var/mail/bounces
      publisher bounces process imaps://bounces%40example.org@imap.example.org/INBOX
    """
    from publisher.config import values
    from publisher.delivery.bounces import intake
    from publisher.delivery.bounces.mailboxes import open_folder
    from publisher.errors import ConfigError
    from publisher.mail.secret import site_secret
    from publisher.store import open_store

    site = site_of(ctx)
    chosen = source or site.bounces.mailbox
    if chosen is None:
        where, message = "SOURCE", "missing: give a mailbox, or set [bounces] mailbox"
        raise ConfigError(where, message)
    processed = site.bounces.processed_folder
    if move_to is not None:
        try:
            processed = values.folder_name("--move-to", move_to)
        except ValueError as err:
            where = "--move-to"
            raise ConfigError(where, str(err)) from None
    with open_store(site.state) as store:
        rules = intake.IntakeRules(
            site_secret(site, store), site.bounces.address, site.bounces.soft_limit
        )
        folder = open_folder(chosen, processed=processed)
        try:
            tally = intake.process_folder(store, folder, rules, now=_common.now, report=click.echo)
        finally:
            folder.close()
    click.echo(f"{folder.description}: {tally.summary()}")
