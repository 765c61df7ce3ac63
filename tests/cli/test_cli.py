"""cli (the group): --version, the one error boundary and its exit codes, Click's usage errors."""

from __future__ import annotations

from support.cli import invoke

from publisher import __version__
from publisher.cli import cli
from publisher.errors import ConfigError


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"publisher, version {__version__}\n"


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
