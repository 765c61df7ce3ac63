"""One run per site: a second run learns who holds the lock, exits 75; a dead one never blocks."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.processes import ENV, run_publisher, start_publisher
from support.service import SINCE

from publisher.cli import cli
from publisher.errors import LockHeldError
from publisher.service.lock import LOCK_NAME, LOCK_RETRY_SECONDS, holder, site_lock

# Takes the lock as `publisher <command>` would, says so, and keeps it until killed or
# until its stdin closes (so a test that dies leaves no holder behind).
HOLD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from publisher.service.lock import site_lock
with site_lock(Path(sys.argv[1]), command=sys.argv[2], now=datetime.now(UTC), display="lock"):
    print("holding", flush=True)
    sys.stdin.read()
"""


def hold_lock(state_dir: Path, command: str = "build") -> subprocess.Popen[str]:
    """A child process holding the site's lock; returns once the lock file names it."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state_dir), command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "holding\n"
    assert (state_dir / LOCK_NAME).read_text(encoding="utf-8").startswith(f"pid {child.pid}, ")
    return child


@pytest.fixture
def lock_holder(site_dir: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    children: list[subprocess.Popen[str]] = []

    def start(command: str = "build") -> subprocess.Popen[str]:
        children.append(hold_lock(site_dir / ".publisher", command))
        return children[-1]

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def test_a_held_lock_names_its_holder(site_dir, lock_holder):
    state_dir = site_dir / ".publisher"
    child = lock_holder()
    text = holder(state_dir)
    assert text is not None
    assert re.fullmatch(rf"pid {child.pid}, `publisher build`, {SINCE}", text)

    with (
        pytest.raises(LockHeldError) as caught,
        site_lock(state_dir, command="build", now=datetime.now(UTC), display=".publisher/lock"),
    ):
        pytest.fail("the lock was taken twice")
    assert caught.value.exit_code == 75
    assert str(caught.value) == (
        f".publisher/lock: another publisher run holds the lock ({text}); try again later"
    )

    child.terminate()  # the default SIGTERM action: no cleanup, the text stays behind
    child.wait(timeout=10)
    assert (state_dir / LOCK_NAME).read_text(encoding="utf-8").strip() == text
    assert holder(state_dir) is None
    moment = datetime(2026, 11, 27, 12, 0, 5, tzinfo=UTC)
    with site_lock(state_dir, command="digest send", now=moment, display="lock") as died:
        assert died == text  # the next holder learns that this one did not finish
        assert holder(state_dir) == (
            f"pid {os.getpid()}, `publisher digest send`, since 2026-11-27 12:00:05 UTC"
        )
    assert holder(state_dir) is None
    assert (state_dir / LOCK_NAME).read_text(encoding="utf-8") == ""
    with site_lock(state_dir, command="build", now=moment, display="lock") as died:
        assert died is None  # released cleanly


def test_a_holder_killed_with_sigkill_never_blocks(site_dir, lock_holder):
    state_dir = site_dir / ".publisher"
    child = lock_holder("run")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    # Its text is left behind, but the kernel released its lock with the process.
    assert (state_dir / LOCK_NAME).read_text(encoding="utf-8").startswith(f"pid {child.pid}, ")
    assert holder(state_dir) is None
    result = run_publisher(site_dir, "build")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(" pages written, 0 unchanged\n")
    assert holder(state_dir) is None


@pytest.mark.parametrize("command", [["build"], ["run", "--once"], ["run"]], ids=" ".join)
def test_a_second_run_exits_75_and_says_who_holds_the_lock(site_dir, lock_holder, runner, command):
    child = lock_holder()
    result = runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), *command])
    assert result.exit_code == 75
    assert result.stdout == ""
    assert re.fullmatch(
        rf"error: \.publisher/lock: another publisher run holds the lock "
        rf"\(pid {child.pid}, `publisher build`, {SINCE}\); try again later\n",
        result.stderr,
    )
    assert not (site_dir / "feeds").exists()


def test_a_second_build_in_a_subprocess_exits_75(site_dir, lock_holder):
    child = lock_holder("digest send")
    result = run_publisher(site_dir, "build")
    assert result.returncode == 75
    assert result.stdout == ""
    assert re.fullmatch(
        rf"error: \.publisher/lock: another publisher run holds the lock "
        rf"\(pid {child.pid}, `publisher digest send`, {SINCE}\); try again later\n",
        result.stderr,
    )


# Takes the lock as another publisher would, but says who it is only when a line on its
# stdin tells it to; then holds it until its stdin closes.
HOLD_THEN_NAME = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
print("locked", flush=True)
sys.stdin.readline()
os.pwrite(fd, f"pid {os.getpid()}, `publisher run`, since 2026-11-27 12:00:00 UTC\\n".encode(), 0)
print("named", flush=True)
sys.stdin.read()
"""


def test_a_lock_taken_an_instant_ago_is_reported_with_its_holder(site_dir, monkeypatch):
    # Without a second look, a run starting in the instant between another
    # taking the lock and writing its name reported the holder as "unknown".
    state_dir = site_dir / ".publisher"
    state_dir.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_THEN_NAME, str(state_dir / LOCK_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    waits: list[float] = []

    def name_yourself(seconds: float) -> None:
        """site_lock found the lock held by no one named, and waits to look again: that is
        the instant. The holder names itself now, so the next look must find the name."""
        waits.append(seconds)
        if len(waits) == 1:
            assert child.stdin is not None
            assert child.stdout is not None
            child.stdin.write("name yourself\n")
            child.stdin.flush()
            assert child.stdout.readline() == "named\n"

    monkeypatch.setattr("publisher.service.lock.time", SimpleNamespace(sleep=name_yourself))
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "locked\n"
        with (
            pytest.raises(LockHeldError) as caught,
            site_lock(state_dir, command="build", now=datetime.now(UTC), display="lock"),
        ):
            pytest.fail("the lock was taken twice")
        assert str(caught.value) == (
            f"lock: another publisher run holds the lock (pid {child.pid}, `publisher run`, "
            "since 2026-11-27 12:00:00 UTC); try again later"
        )
        assert waits == [LOCK_RETRY_SECONDS]  # one look found no name, the next found it
    finally:
        child.kill()
        child.wait(timeout=10)


def write_articles(content_dir: Path, count: int) -> None:
    for n in range(count):
        month, day = n % 12 + 1, n % 28 + 1
        (content_dir / f"2025-{month:02d}-{day:02d}-story-{n:03d}.md").write_text(
            f'---\ntitle: "Story {n:03d}"\n'
            f'date: "2025-{month:02d}-{day:02d}T{n % 24:02d}:{n % 60:02d}:00+01:00"\n'
            f"tags: [desk-{n % 7}, wire]\n---\n\n"
            f"Paragraph {n} of the *story*, with [a link](https://example.org/{n}).\n",
            encoding="utf-8",
        )


def test_two_builds_started_at_once(site_dir, tmp_path):
    write_articles(site_dir / "content", 300)
    reference = tmp_path / "reference"
    shutil.copytree(site_dir, reference)

    first, second = start_publisher(site_dir, "build"), start_publisher(site_dir, "build")
    outputs = [p.communicate(timeout=60) for p in (first, second)]
    results = [(p.returncode, *out) for p, out in zip((first, second), outputs, strict=True)]
    codes = sorted(code for code, _out, _err in results)
    assert codes in ([0, 0], [0, 75]), results
    for code, stdout, stderr in results:
        if code == 75:
            assert stdout == ""
            assert re.fullmatch(
                r"error: \.publisher/lock: another publisher run holds the lock "
                rf"\(pid \d+, `publisher build`, {SINCE}\); try again later\n",
                stderr,
            )
        else:
            assert stderr == ""
            assert stdout.startswith("305 articles loaded (303 published, 1 draft, 1 scheduled)")

    third = run_publisher(site_dir, "build")
    assert third.returncode == 0, third.stderr
    assert re.fullmatch(
        r"305 articles loaded .*, 0 files written, \d+ unchanged; 0 pages written, \d+ unchanged\n",
        third.stdout,
    )
    # The feeds are those a single build makes from the same content.
    assert run_publisher(reference, "build").returncode == 0
    compared = filecmp.dircmp(site_dir / "feeds", reference / "feeds")
    assert _differences(compared) == []


def _differences(compared: filecmp.dircmp[str]) -> list[str]:
    found = compared.left_only + compared.right_only + compared.diff_files + compared.funny_files
    for sub in compared.subdirs.values():
        found += _differences(sub)
    return found
