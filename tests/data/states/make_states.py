"""Make the state fixtures: one site folder per released schema version, written by that version.

Run by hand from the repository root (`python tests/data/states/make_states.py`) when a
release adds a schema version; the folders it writes are committed. Each version's code is
taken from git (the commit that last shipped that schema), unpacked into a temporary folder
and run as `python -m publisher` on a copy of tests/sites/basic, through the same story:

1. build; import three subscribers, unsubscribe one (schema 2 on);
2. send a digest to the outbox;
3. add an article, build;
4. break an article that was published (its date removed), build: its last good version
   stays published, and no later build re-indexes it.

What is kept: publisher.toml, content/ and .publisher/state.db (with the secret in the
environment, PUBLISHER_SECRET below, so no secret file). Output folders are left out: a
build makes them again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
BASIC = ROOT / "tests" / "sites" / "basic"
SECRET = "a-test-secret-of-enough-length"
# The last commit that shipped each schema version.
RELEASES = {
    1: "ef2439e",
    2: "e29399f",
    3: "cb69c8c",
    4: "f5f6d78",
    5: "6c991fe",
}
ADDED_ARTICLE = """---
title: "Added after the first digest"
date: "{date}"
tags: [europe]
---

This article was published after the first digest went out.
"""


def main() -> None:
    for version, commit in RELEASES.items():
        target = HERE / f"v{version}"
        shutil.rmtree(target, ignore_errors=True)
        with tempfile.TemporaryDirectory() as scratch:
            code = Path(scratch) / "code"
            _unpack(commit, code)
            site = Path(scratch) / "site"
            shutil.copytree(BASIC, site)
            _story(code, site, version)
            _keep(site, target)
        _describe(target, version)


def _unpack(commit: str, folder: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "publisher", "templates"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def _run(code: Path, site: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(code), "PUBLISHER_SECRET": SECRET}
    result = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(site / "publisher.toml"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=code,  # `python -m` puts the working folder first on sys.path
    )
    if result.returncode != 0:
        raise SystemExit(f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _story(code: Path, site: Path, version: int) -> None:
    _run(code, site, "build")
    if version >= 2:
        _run(code, site, "subscribers", "import", str(ROOT / "tests/data/subscribers/good.csv"))
        token = _token(code, site, "alan@example.org")
        _run(code, site, "unsubscribe", token)
        _run(code, site, "digest", "send")
        time.sleep(1.1)  # the added article must be first seen after the digest's watermark
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    (site / "content" / "2026-11-30-added.md").write_text(ADDED_ARTICLE.format(date=now))
    _run(code, site, "build")
    broken = site / "content" / "2021-03-04-observers.md"
    broken.write_text(broken.read_text().replace("date: 2021-03-04T09:00:00\n", ""))
    _run(code, site, "build")


def _token(code: Path, site: Path, email: str) -> str:
    script = (
        "import sqlite3, sys\n"
        "from publisher.subscribers import make_token\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "(sid,) = conn.execute('SELECT id FROM subscribers WHERE email = ?', (sys.argv[2],))"
        ".fetchone()\n"
        "print(make_token(sys.argv[3].encode(), sid, sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(code)}
    result = subprocess.run(
        [sys.executable, "-c", script, str(site / ".publisher/state.db"), email, SECRET],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=code,
    )
    return result.stdout.strip()


def _keep(site: Path, target: Path) -> None:
    target.mkdir(parents=True)
    shutil.copy2(site / "publisher.toml", target / "publisher.toml")
    shutil.copytree(site / "content", target / "content")
    state = target / ".publisher"
    state.mkdir()
    # A checkpointed copy: the -wal file holds nothing the fixture needs.
    source = sqlite3.connect(site / ".publisher" / "state.db")
    copy = sqlite3.connect(state / "state.db")
    with copy:
        source.backup(copy)
    source.close()
    copy.execute("PRAGMA journal_mode = DELETE")
    copy.close()


def _describe(target: Path, version: int) -> None:
    conn = sqlite3.connect(target / ".publisher" / "state.db")
    (schema,) = conn.execute("PRAGMA user_version").fetchone()
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    counts = {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables}
    conn.close()
    assert schema == version, (schema, version)
    print(f"v{version}: {counts}")


if __name__ == "__main__":
    main()
