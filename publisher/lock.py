"""One run per site: an advisory lock on a file in the state folder.

fcntl.flock locks belong to the open file: the kernel releases them when the
process exits, however it exits, so a lock left by a killed run never blocks
the next one. The file's text says who holds it, for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from publisher.errors import LockHeldError, StoreError

LOCK_NAME = "lock"


@contextlib.contextmanager
def site_lock(state_dir: Path, *, command: str, now: datetime, display: str) -> Iterator[None]:
    """Hold the site's lock for the block.

    :raises LockHeldError: when another process holds it (exit code 75).
    """
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        message = f"cannot open the lock file ({err.strerror})"
        raise StoreError(display, message) from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 1024, 0).decode("utf-8", "replace").strip() or "unknown"
            message = f"another publisher run holds the lock ({holder}); try again later"
            raise LockHeldError(display, message) from None
        os.ftruncate(fd, 0)
        holder = f"pid {os.getpid()}, `publisher {command}`, since {now:%Y-%m-%d %H:%M:%S %Z}"
        os.pwrite(fd, f"{holder}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(state_dir: Path) -> str | None:
    """Who holds the site's lock right now, or None when nobody does.

    Reads the lock file without taking the lock (taking it, even shared,
    could make a run starting at that instant fail); a holder whose process
    is gone left its text behind but no lock.
    """
    try:
        text = (state_dir / LOCK_NAME).read_text(encoding="utf-8", errors="replace").strip()
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
