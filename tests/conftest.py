"""Shared fixtures: a site folder copied into tmp_path, a fixed clock, a CLI runner."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.config import SiteConfig, load_config
from publisher.store import MIGRATIONS, sqlite
from publisher.store.base import migrate

SITES = Path(__file__).parent / "sites"
# A fixed "now" for builds: after every dated test article except the 2031 one.
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def database_before(path: Path, table: str) -> sqlite3.Connection:
    """A state database migrated up to the step that creates *table*, not including it.

    Found by what a step creates rather than by its number, as numbers change
    when work from several branches lands.
    """
    (step,) = [
        number
        for number, steps in enumerate(MIGRATIONS)
        if any(isinstance(s, str) and f"CREATE TABLE {table} " in s for s in steps)
    ]
    migrate(sqlite.connect(path), MIGRATIONS[:step])
    return sqlite3.connect(path, isolation_level=None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite tests/golden/ from the current output.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def make_site(tmp_path: Path) -> Callable[[str], Path]:
    """Copy tests/sites/<case> into tmp_path and return the copy's folder."""

    def copy(case: str) -> Path:
        target = tmp_path / case
        shutil.copytree(SITES / case, target)
        return target

    return copy


@pytest.fixture
def site_dir(make_site: Callable[[str], Path]) -> Path:
    return make_site("basic")


@pytest.fixture
def site(site_dir: Path) -> SiteConfig:
    return load_config(site_dir / "publisher.toml")


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
