"""store.locks: the site lock and the making lock on PostgreSQL, across machines.

Two site folders pointed at one database stand for two machines: their file
locks are apart, so only the server's advisory lock keeps their runs apart.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import SITES
from support.postgres import append_state_url
from support.processes import ENV
from support.service import SINCE

from publisher.cli import cli
from publisher.errors import LockHeldError
from publisher.store.locks import MAKING_LOCK, server_lock, server_lock_holder

# Takes the site lock as `publisher build` would on a machine of its own, says so, and
# keeps it until killed or until its stdin closes.
HOLD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from publisher.service.lock import site_lock
with site_lock(Path(sys.argv[1]), command="build", now=datetime.now(UTC), display="lock",
               state_url=sys.argv[2]):
    print("holding", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def url(postgres_server) -> Iterator[str]:
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def machines(tmp_path: Path, url: str) -> list[Path]:
    """Two site folders sharing one database, as two machines would."""
    folders = []
    for name in ("builder", "other"):
        folder = shutil.copytree(SITES / "basic", tmp_path / name)
        append_state_url(folder, url)
        folders.append(folder)
    return folders


@pytest.fixture
def holder(url: str, machines: list[Path]) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(machines[0] / ".publisher"), url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "holding\n"
    yield child
    if child.poll() is None:
        child.kill()
    child.wait(timeout=10)


def test_a_build_on_another_machine_exits_75_and_names_the_holder(url, machines, holder, runner):
    text = server_lock_holder(url)
    assert text is not None
    assert re.fullmatch(rf"host [^,]+, pid {holder.pid}, `publisher build`, {SINCE}", text)
    other = machines[1]
    result = runner.invoke(cli, ["--config", str(other / "publisher.toml"), "build"])
    assert result.exit_code == 75
    assert result.stderr == (
        f"error: state: another publisher run holds the lock ({text}); try again later\n"
    )
    assert not (other / "feeds").exists()


def test_a_dead_holders_lock_goes_with_its_connection(url, machines, holder, runner):
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    # The server ends the dead connection's session, and its lock with it: a waiting
    # taker is let in (nobody released anything), and then nobody holds it.
    with server_lock(url, "a waiting taker", since="", wait=True):
        assert server_lock_holder(url) == "a waiting taker"
    assert server_lock_holder(url) is None
    result = runner.invoke(cli, ["--config", str(machines[1] / "publisher.toml"), "build"])
    assert result.exit_code == 0, result.output
    assert (machines[1] / "feeds" / "feed.json").exists()


def test_a_second_taker_is_refused_until_the_first_lets_go(url):
    with server_lock(url, "first", since="2026-11-27T12:00:00+00:00"):
        with pytest.raises(LockHeldError) as caught, server_lock(url, "second", since=""):
            pytest.fail("the lock was taken twice")
        assert caught.value.exit_code == 75
        assert caught.value.message == (
            "another publisher run holds the lock (first); try again later"
        )
    with server_lock(url, "second", since=""):
        assert server_lock_holder(url) == "second"


def test_the_making_lock_makes_a_second_maker_wait(url, postgres_server):
    database = url.rsplit("/", 1)[1]
    order: list[str] = []
    entered = threading.Event()

    def second() -> None:
        with server_lock(url, "second", name=MAKING_LOCK, since="", wait=True):
            order.append("second in")
            entered.set()

    with server_lock(url, "first", name=MAKING_LOCK, since="", wait=True):
        waiting = threading.Thread(target=second)
        waiting.start()
        _wait_for_a_waiting_lock(postgres_server, database)
        assert not entered.is_set()
        order.append("first out")
    assert entered.wait(10)
    waiting.join(10)
    assert order == ["first out", "second in"]


def _wait_for_a_waiting_lock(server, database: str) -> None:
    """Until the server shows an advisory lock asked for and not granted (the second maker)."""
    query = (
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        f"WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = '{database}'"
    )
    for _ in range(2000):
        if server.admin(query)[0][0] == 1:
            return
        threading.Event().wait(0.005)
    pytest.fail("the second maker never asked for the lock")
