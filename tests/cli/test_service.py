"""cli.service: `status` line by line, and `run`/`status` refusing a bad rebuild interval."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from support.cli import invoke
from support.mailing import TEN_READERS, offer_choices
from support.processes import run_publisher
from support.service import WHEN, append_config, status_lines, subscribe_readers

from publisher.cli import cli
from publisher.config import load_config
from publisher.service.scheduler import next_slot
from publisher.store import open_store


def test_status_counts_the_suppression_list_and_shows_no_address(site_dir, runner):
    subscribe_readers(site_dir, TEN_READERS[:3])
    config = ["--config", str(site_dir / "publisher.toml")]
    for address in TEN_READERS[:2]:
        assert runner.invoke(cli, [*config, "subscribers", "remove", address]).exit_code == 0
    lines = status_lines(runner, site_dir)
    assert (
        lines[-1]
        == "subscribers: 1 active, 0 unsubscribed, 0 bounced; suppression list: 2 addresses"
    )
    assert not any("reader01" in line or "reader02" in line for line in lines)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "expected a duration such as '30s', '5m' or '1h' ('5 minutes')"),
        ("0s", "expected a duration such as '30s', '5m' or '1h' ('0s')"),
        ("5s", "must be between 10s and 168h ('5s')"),
        ("200h", "must be between 10s and 168h ('200h')"),
    ],
)
def test_invalid_rebuild_every_exits_2(site_dir, runner, value, message):
    append_config(site_dir, f'\n[schedule]\nrebuild_every = "{value}"\n')
    for command in (["run"], ["run", "--once"], ["status"]):
        result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), *command])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"error: {site_dir / 'publisher.toml'}: [schedule] rebuild_every: {message}\n"
        )
    assert not (site_dir / ".publisher").exists()
    assert not (site_dir / "feeds").exists()


def test_status_of_a_site_never_built_says_so_and_creates_nothing(site_dir, runner):
    site = load_config(site_dir / "publisher.toml")
    before = sorted(p.relative_to(site_dir) for p in site_dir.rglob("*"))
    upcoming = next_slot(site.digest.cadence, site.timezone, datetime.now(UTC))
    assert status_lines(runner, site_dir) == [
        f"site: Test Gazette ({site_dir / 'publisher.toml'})",
        "last build: never",
        "service: not running",
        f"digest cadence: weekly on monday at 07:00 (Europe/Vienna); next at "
        f"{upcoming:%Y-%m-%d %H:%M %Z}",
        "last digest: none yet",
        "subscribers: 0 active, 0 unsubscribed, 0 bounced; suppression list: 0 addresses",
    ]
    # No state folder, no database, no secret: looking changes nothing.
    assert sorted(p.relative_to(site_dir) for p in site_dir.rglob("*")) == before
    assert not (site_dir / ".publisher").exists()


def test_status_counts_one_of_a_kind_in_the_singular(site_dir, runner):
    for path in (site_dir / "content").iterdir():
        if path.name != "2020-06-22-vienna-talks.md":
            path.unlink()
    assert run_publisher(site_dir, "build").returncode == 0
    subscribe_readers(site_dir, TEN_READERS[:1])
    assert run_publisher(site_dir, "digest", "send").returncode == 0
    lines = status_lines(runner, site_dir)
    assert re.fullmatch(
        rf"last build: {WHEN} \(1 article: 1 published, 0 drafts, 0 scheduled\)", lines[1]
    ), lines
    assert re.fullmatch(
        rf"last digest: 1, made {WHEN}, 1 article: sent 1, "
        r"pending 0, sending 0, uncertain 0, failed 0",
        lines[4],
    ), lines
    assert (
        lines[5]
        == "subscribers: 1 active, 0 unsubscribed, 0 bounced; suppression list: 0 addresses"
    )


def test_serve_with_a_webhook_but_not_its_key_stops_with_a_configuration_error(
    runner, site_dir, monkeypatch
):
    monkeypatch.delenv("PUBLISHER_MAILGUN_SIGNING_KEY", raising=False)
    append_config(site_dir, "\n[bounces.mailgun]\n")
    result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), "serve"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: PUBLISHER_MAILGUN_SIGNING_KEY: not set: [bounces.mailgun] needs the webhook "
        "signing key\n",
    )


def test_status_shows_each_segment(runner, site_dir, now):
    offer_choices(site_dir)
    site = load_config(site_dir / "publisher.toml")
    with open_store(site.state) as store, store.transaction():
        for n, topics in enumerate([("asia",), ("asia",), None]):
            store.insert_subscriber(
                f"r{n}@example.org", "", status="active", now=now, topics=topics
            )
        store.insert_subscriber(
            "d@example.org", "", status="active", now=now, cadence="daily at 07:00"
        )
    assert invoke(runner, site_dir, "digest", "send").exit_code == 0
    lines = invoke(runner, site_dir, "status").stdout.splitlines()
    segments = [line.strip() for line in lines if line.startswith("  segment ")]
    assert len(segments) == 3
    assert segments[0].startswith(
        "segment Asia-Pacific · weekly on monday at 07:00: 2 active; next "
    )
    assert segments[0].endswith(")")
    assert "last digest " in segments[0]
    assert segments[1].startswith("segment everything · daily at 07:00: 1 active; next ")
    assert segments[2].startswith("segment everything · weekly on monday at 07:00: 1 active; ")
