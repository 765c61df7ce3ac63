"""`publisher dkim …`: the key that signs the site's messages."""

from __future__ import annotations

from pathlib import Path

import click

from publisher.cli._common import site_of
from publisher.config import DKIM_ALGORITHMS, DkimAlgorithm, SiteConfig, values
from publisher.errors import ConfigError


@click.group()
def dkim() -> None:
    """Make the DKIM key that signs every message ([delivery.dkim]).

    \b
    Example:
      publisher dkim keygen --selector s2026
    """


@dkim.command()
@click.option("--selector", required=True, help="The selector: the key's name in the DNS.")
@click.option(
    "--algorithm",
    type=click.Choice(DKIM_ALGORITHMS),
    default="rsa-sha256",
    show_default=True,
    help="RSA 2048 (every verifier knows it) or Ed25519 (RFC 8463; not yet everywhere).",
)
@click.option(
    "--domain",
    help="The signing domain (d=); default [delivery.dkim] domain, else the From address's.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (mode 0600); default <state>/dkim/SELECTOR.pem.",
)
@click.pass_context
def keygen(
    ctx: click.Context, selector: str, algorithm: str, domain: str | None, out: Path | None
) -> None:
    """Write a new private key and print the DNS TXT record and the config lines.

    An existing file is never overwritten. Publish the record, wait for the
    DNS to serve it, then add the lines to publisher.toml.
    """
    from publisher.mail import signing

    site = site_of(ctx)
    selector = _checked(values.dkim_selector, "--selector", selector)
    domain = _checked(values.domain_name, "--domain", domain or _default_domain(site))
    path = (out or site.state_dir / "dkim" / f"{selector}.pem").absolute()
    chosen: DkimAlgorithm = "rsa-sha256" if algorithm == "rsa-sha256" else "ed25519-sha256"
    key = signing.generate_key(chosen)
    shown = site.display(path)
    signing.write_private_key(path, signing.private_pem(key), where=shown)
    kind = f"RSA {signing.RSA_BITS}" if chosen == "rsa-sha256" else "Ed25519"
    click.echo(f"wrote {shown} ({kind} private key, mode 0600)")
    click.echo(f"\nPublish this TXT record in the DNS of {domain}:\n")
    click.echo(signing.zone_line(selector, domain, signing.public_record(key)))
    click.echo("\nThen add to publisher.toml:\n")
    click.echo("[delivery.dkim]")
    click.echo(f'domain = "{domain}"')
    click.echo(f'selector = "{selector}"')
    click.echo(f'private_key = "{shown}"')
    click.echo(f'algorithm = "{chosen}"')


def _default_domain(site: SiteConfig) -> str:
    if site.delivery.dkim is not None:
        return site.delivery.dkim.domain
    if site.digest.sender is not None:
        from publisher.mail.compose import address_domain

        return address_domain(site.digest.sender)
    where = "--domain"
    message = "missing; give the signing domain, or set [digest] from in publisher.toml"
    raise ConfigError(where, message)


def _checked(check: values.Check, where: str, value: str) -> str:
    try:
        return str(check(where, value))
    except ValueError as err:
        raise ConfigError(where, str(err)) from None
