"""The command line run in process, as Click's CliRunner runs it."""

from __future__ import annotations

from pathlib import Path

from publisher.cli import cli


def invoke(runner, site_dir: Path, *args: str):
    return runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), *args])
