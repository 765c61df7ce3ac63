"""Shared fixtures: a site folder copied into tmp_path, a fixed clock, a CLI runner, a store."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from publisher.config import SiteConfig, load_config
from publisher.store import Store, open_store

# The helpers in support/ assert as the tests do, and did so in the test modules they came
# from: their failures get pytest's explanations too. Registered before their first import.
pytest.register_assert_rewrite("support")

from support import feedcheck  # noqa: E402
from support.clock import NOW  # noqa: E402
from support.paths import SITES, SUBSCRIBER_FILES  # noqa: E402


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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A new state database in tmp_path, open."""
    with open_store(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def csv_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Copy tests/data/subscribers/<name> into tmp_path, chdir there, return its name."""
    monkeypatch.chdir(tmp_path)

    def copy(name: str) -> Path:
        shutil.copyfile(SUBSCRIBER_FILES / name, tmp_path / name)
        return Path(name)

    return copy


@pytest.fixture
def no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The site secret from the state folder only, whatever the environment running the tests."""
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)


@pytest.fixture(scope="session")
def atom_schema() -> etree.RelaxNG:
    return feedcheck.load_atom_schema()
