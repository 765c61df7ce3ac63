"""What the service and status tests share: config appended, readers subscribed, status read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from publisher import tokens
from publisher.cli import cli
from publisher.config import load_config
from publisher.mail import subscribers
from publisher.store import open_store

WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T"
SINCE = r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def append_config(site_dir: Path, text: str) -> None:
    config = site_dir / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8") + text, encoding="utf-8")


def status_lines(runner, site_dir: Path) -> list[str]:
    result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), "status"])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def subscribe_readers(site_dir: Path, addresses: list[str]) -> None:
    site = load_config(site_dir / "publisher.toml")
    now = datetime.now(UTC)
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state) as store, store.transaction():
        for address in addresses:
            subscribers.add_subscriber(store, secret, address, "", now=now)
