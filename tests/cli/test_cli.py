"""cli (the group): --version, the one error boundary and its exit codes, Click's usage errors."""

from __future__ import annotations

import subprocess
import sys

from support.cli import invoke
from support.postgres import append_state_url
from support.processes import ENV
from support.smtp_server import free_port

from publisher import __version__
from publisher import cli as cli_module
from publisher.cli import cli
from publisher.errors import ConfigError
from publisher.store import SCHEMA_VERSION
from publisher.store.postgres import SCHEMA_TABLE


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"publisher, version {__version__}\n"


# The console script's entry point, with the command group replaced by a look at the
# collector (in a process of its own: the tuning is for the whole process).
COLLECTOR = """
import gc
from publisher import cli
cli.cli = lambda **_: print(gc.get_threshold()[0], gc.get_freeze_count() > 0)
cli.main()
"""


def test_the_command_spares_its_objects_the_collectors_passes():
    command = [sys.executable, "-c", COLLECTOR]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, check=True)
    assert result.stdout.split() == [str(cli_module.COLLECT_AFTER), "True"]


def test_config_typo_exits_2(runner, make_site):
    site_dir = make_site("typo-in-config")
    result = invoke(runner, site_dir, "build")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {site_dir / 'publisher.toml'}: [feeds] unknown key 'max_item' "
        "(did you mean 'max_items'?); "
        "known keys: content, formats, max_items, tag_feeds, url, websub_hub\n"
    )
    assert not (site_dir / "feeds").exists()


def test_relative_base_url_exits_2(runner, make_site, monkeypatch):
    site_dir = make_site("relative-base-url")
    monkeypatch.chdir(site_dir)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: publisher.toml: [site] base_url: must be an absolute http(s) URL such as "
        "'https://example.org/' ('relative.example/news')\n"
    )


def test_missing_config(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: publisher.toml: not found (run publisher in a site folder, or pass --config PATH)\n"
    )


def test_debug_shows_the_traceback(runner, make_site):
    site_dir = make_site("typo-in-config")
    result = runner.invoke(cli, ["--debug", "--config", str(site_dir / "publisher.toml"), "build"])
    assert isinstance(result.exception, ConfigError)


def test_usage_errors_keep_clicks_exit_code(runner):
    result = runner.invoke(cli, ["publish"])
    assert result.exit_code == 2
    assert "No such command 'publish'" in result.stderr


# -- a PostgreSQL state that cannot be used: one line, exit 1, nothing written ----------


STATE_COMMANDS = [
    ["build"],
    ["check"],
    ["digest", "send"],
    ["digest", "status"],
    ["subscribers", "add", "ada@example.org"],
    ["subscribers", "list"],
    ["status"],
    ["run", "--once"],
]


def _written(site_dir):
    return sorted(p.relative_to(site_dir).as_posix() for p in site_dir.rglob("*"))


def test_an_unreachable_server_stops_every_command_in_one_line(runner, make_site, monkeypatch):

    site_dir = make_site("basic")
    url = f"postgresql://publisher@127.0.0.1:{free_port()}/meridian"
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", url)
    before = _written(site_dir)
    for command in STATE_COMMANDS:
        result = invoke(runner, site_dir, *command)
        where = " ".join(command)
        if command == ["check"]:  # check reads the articles only, never the state
            assert result.exit_code == 0, (where, result.output)
            continue
        assert result.exit_code == 1, (where, result.output)
        assert result.stdout == "", where
        lines = result.stderr.splitlines()
        assert len(lines) == 1, (where, lines)
        assert lines[0].startswith(f"error: state: cannot connect to {url} ("), where
        assert "Traceback" not in result.stderr
    # Only the machine's own lock file, empty, which the site lock takes before the server's.
    assert _written(site_dir) == sorted([*before, ".publisher", ".publisher/lock"])
    assert (site_dir / ".publisher" / "lock").read_text(encoding="utf-8") == ""


def test_a_newer_schema_stops_a_build_before_it_writes(runner, make_site, postgres_server):

    site_dir = make_site("basic")
    database = postgres_server.create_database()
    append_state_url(site_dir, postgres_server.url(database))
    postgres_server.admin(f"UPDATE {SCHEMA_TABLE} SET version = {SCHEMA_VERSION + 1}", database)
    result = invoke(runner, site_dir, "build")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: state: schema version {SCHEMA_VERSION + 1} is newer than this publisher "
        f"understands ({SCHEMA_VERSION}); upgrade publisher\n"
    )
    assert not (site_dir / "feeds").exists()
    postgres_server.drop_database(database)
