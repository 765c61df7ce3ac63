"""One run per site: an advisory lock on a file in the state folder, and on the server.

With a PostgreSQL state the file lock is taken too (it still keeps two runs
of one machine apart, and says when the last one died), and then the
database's advisory lock, which keeps runs on every machine apart.


fcntl.flock locks belong to the open file: the kernel releases them when the
process exits, however it exits, so a lock left by a killed run never blocks
the next one. The file's text says who holds it, for the message; a holder
clears it before releasing, so text found by the one who takes the lock is
what a holder that died left behind (and the new holder cleans up after it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from publisher.errors import LockHeldError, StoreError

LOCK_NAME = "lock"
MAKING_LOCK_NAME = "making.lock"
LOCK_ATTEMPTS = 5  # looks at a lock whose holder has not written its text yet
LOCK_RETRY_SECONDS = 0.01


@contextlib.contextmanager
def site_lock(
    state_dir: Path,
    *,
    command: str,
    now: datetime,
    display: str,
    state_url: str | None = None,
) -> Iterator[str | None]:
    """Hold the site's lock for the block (and the server's, for a PostgreSQL state).

    Yields the text a holder that died without releasing the file lock left
    in it ("pid 42, `publisher build`, since …"), or None after a clean release.

    :raises LockHeldError: when another process holds it (exit code 75).
    :raises StoreError: when the lock file cannot be opened or the server reached.
    """
    with _file_lock(state_dir, command=command, now=now, display=display) as died:
        if state_url is None:
            yield died
            return
        from publisher.store.locks import server_lock

        text = f"host {socket.gethostname()}, {_holder_text(command, now)}"
        with server_lock(state_url, text, since=now.isoformat()):
            yield died


@contextlib.contextmanager
def making_lock(state_dir: Path, *, display: str, state_url: str | None = None) -> Iterator[None]:
    """Wait for, then hold, the right to make a digest: one maker at a time, everywhere.

    Held only while a sender looks for unfinished digests and perhaps makes
    one (seconds), so that a sender starting beside a maker waits for the
    digest instead of finding none and leaving; then the two send it together.

    :raises StoreError: when the lock file cannot be opened or the server reached.
    """
    if state_url is not None:
        from publisher.store.locks import MAKING_LOCK, server_lock

        text = f"host {socket.gethostname()}, pid {os.getpid()}"
        with server_lock(state_url, text, name=MAKING_LOCK, since="", wait=True):
            yield
        return
    fd = _open_lock_file(state_dir / MAKING_LOCK_NAME, display)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel drops it with the process, however it ends
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_lock_file(path: Path, display: str) -> int:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds subscriber data
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        message = f"cannot open the lock file ({err.strerror})"
        raise StoreError(display, message) from err


def _holder_text(command: str, now: datetime) -> str:
    return f"pid {os.getpid()}, `publisher {command}`, since {now:%Y-%m-%d %H:%M:%S %Z}"


@contextlib.contextmanager
def _file_lock(
    state_dir: Path, *, command: str, now: datetime, display: str
) -> Iterator[str | None]:
    fd = _open_lock_file(state_dir / LOCK_NAME, display)
    try:
        for attempt in range(LOCK_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _first_line(os.pread(fd, 1024, 0))
                # No text: the holder has just taken the lock and not yet said
                # who it is, or has cleared its text and is releasing: look again.
                if holder or attempt == LOCK_ATTEMPTS - 1:
                    raise LockHeldError(display, holder or "unknown") from None
                time.sleep(LOCK_RETRY_SECONDS)
        died = _first_line(os.pread(fd, 1024, 0)) or None
        data = (_holder_text(command, now) + "\n").encode()
        # Write, then cut what a longer text left behind: never empty while held.
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        try:
            yield died
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(state_dir: Path, *, state_url: str | None = None) -> str | None:
    """Who holds the site's lock right now, or None when nobody does.

    Reads the lock file without taking the lock (taking it, even shared,
    could make a run starting at that instant fail); a holder whose process
    is gone left its text behind but no lock. With a PostgreSQL state, the
    server says who holds its lock, on any machine.
    """
    if state_url is not None:
        from publisher.store.locks import server_lock_holder

        return server_lock_holder(state_url)
    try:
        text = _first_line((state_dir / LOCK_NAME).read_bytes())
    except OSError:
        return None
    if not text.startswith("pid "):
        return None
    try:
        os.kill(int(text.split(",")[0].removeprefix("pid ")), 0)
    except (ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # alive, but someone else's
    return text


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return text.split("\n", 1)[0].strip()
