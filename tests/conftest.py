"""Shared fixtures: a site folder copied into tmp_path, a fixed clock, a CLI runner, a store."""

from __future__ import annotations

import os
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

from support import feedcheck, postgres  # noqa: E402
from support.clock import NOW  # noqa: E402
from support.paths import SITES, SUBSCRIBER_FILES, TESTS  # noqa: E402

# The fixtures of the `state migrate` tests (tests/cli and tests/store share them).
pytest_plugins = ["support.full_state"]

# The tests of these folders run on both backends: every promise of the store, the
# ledger, subscribers, sign-ups and the web service is proved on SQLite and on PostgreSQL.
BOTH_BACKENDS = {"store", "mail", "web", "delivery"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite tests/golden/ from the current output.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: a test of SQLite itself (its file, its locks): one backend"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of BOTH_BACKENDS twice where they open a state: SQLite, then PostgreSQL."""
    if "backend" not in metafunc.fixturenames:
        return
    folder = metafunc.definition.path.relative_to(TESTS).parts[0]
    if folder in BOTH_BACKENDS and not metafunc.definition.get_closest_marker("sqlite_only"):
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """One PostgreSQL server for the run, started on first use; skipped where none can run.

    Under .ci/run (PUBLISHER_REQUIRE_POSTGRES=1) a missing server fails instead.
    """
    with postgres.running_server() as server:
        if isinstance(server, str):
            if os.environ.get(postgres.REQUIRE_VARIABLE):
                pytest.fail(server)
            pytest.skip(server)
        yield server


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def new_state(backend: str, request: pytest.FixtureRequest) -> Iterator[Callable[[], str | None]]:
    """Where a new state lives on this test's backend: None (SQLite) or a new database's URL."""
    made: list[str] = []

    def new() -> str | None:
        if backend == "sqlite":
            return None
        server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
        made.append(server.create_database())
        return server.url(made[-1])

    yield new
    if made:
        server = request.getfixturevalue("postgres_server")
        for name in made:
            server.drop_database(name)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def make_site(tmp_path: Path, new_state: Callable[[], str | None]) -> Callable[[str], Path]:
    """Copy tests/sites/<case> into tmp_path and return the copy's folder.

    On PostgreSQL each copy gets a database of its own, named by `[state] url`.
    """

    def copy(case: str) -> Path:
        target = tmp_path / case
        shutil.copytree(SITES / case, target)
        url = new_state()
        if url is not None:
            postgres.append_state_url(target, url)
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
def store(tmp_path: Path, new_state: Callable[[], str | None]) -> Iterator[Store]:
    """A new state database, open: a SQLite file in tmp_path, or a PostgreSQL database."""
    with open_store(new_state() or tmp_path / "state.db") as opened:
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
