"""Atomic, idempotent writes of generated files, and the removal of temp files left by dead runs.

Every write goes to a temporary file beside its target, named
`.{name}.{pid}-{random}.tmp` after the writing process, and held under an
flock from creation to rename. A run killed mid-write leaves that file
behind; `remove_stale_temps` removes it later by this rule, which can never
touch a live writer's file:

- a file of this naming goes when no process holds its lock (the kernel
  drops a lock with the process that held it) and either the pid in its name
  is not alive or the file is over an hour old (pids are reused). A live
  writer holds the lock from the moment after creating the file, and in that
  moment its pid is alive and the file brand new;
- a file named as earlier versions named them (`.{name}.{8 characters}.tmp`,
  from mkstemp, no pid, no lock) goes when it is older than a minute: a write
  takes milliseconds, so only a run that is gone can have left one that old.

Anything else, dot-file or not, is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from publisher.errors import OutputError

logger = logging.getLogger(__name__)

_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]{1,10})-[0-9a-f]{8}\.tmp")
_OLD_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")  # tempfile.mkstemp's names
STALE_AFTER = 3600.0  # seconds: no write takes this long; older files are no live writer's
OLD_STALE_AFTER = 60.0  # seconds, for the names earlier versions made


class Staged(NamedTuple):
    """A file written beside its target and not yet in place (see `commit_staged`)."""

    temp: str
    target: str


class OutputWriter:
    """Owns every path written under *root* during one build.

    A file whose bytes did not change is not rewritten, so its mtime (and any
    HTTP validators derived from it) stay put. A second write to one path in
    the same build is a bug in the caller and is refused.

    Paths are strings here, not pathlib objects: a cold build of a big site
    writes 13,000 pages, and pathlib's parsing of each path it joins, names
    and compares cost as much as the kernel's work of creating the files.
    """

    def __init__(self, root: Path, *, display_root: str) -> None:
        self.root = root
        self.display_root = display_root.rstrip("/")
        self.seen: set[str] = set()
        self._real_root: str | None = None
        self._folders: dict[str, str] = {}  # each folder's real path, found once per build

    def ensure_root(self) -> None:
        """Create the output folder, or say plainly why it cannot be.

        :raises OutputError: when a file stands in its place or it cannot be made.
        """
        if self.root.exists() and not self.root.is_dir():
            message = "exists but is not a folder; remove it or set [paths] output"
            raise OutputError(self.display_root, message)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            message = f"cannot create the output folder ({err.strerror})"
            raise OutputError(self.display_root, message) from err

    def where(self, relative: str) -> str:
        return f"{self.display_root}/{relative}"

    def target(self, relative: str) -> str:
        """The absolute path for *relative*, refusing anything outside the root.

        Symbolic links are followed as the kernel would, a `..` too: what
        counts is where the file really lands. Each folder is looked at once
        per build (a cold build of a big site writes 10,000 pages, each in a
        folder of its own; resolving every path anew cost a second).

        :raises OutputError: when the path escapes the output folder.
        """
        root = self._root()
        folder, _, name = relative.rpartition("/")
        if relative.startswith("/"):  # an absolute path: where it points, nothing of ours
            path = os.path.realpath(relative)
        else:
            path = self._step(self._folder(folder) if folder else root, name)
        if path == root or not path.startswith(root.rstrip("/") + "/"):
            message = "refusing to write outside the output folder"
            raise OutputError(self.where(relative), message)
        return path

    def _root(self) -> str:
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root)
        return self._real_root

    def _folder(self, folder: str) -> str:
        known = self._folders.get(folder)
        if known is None:
            head, _, name = folder.rpartition("/")
            known = self._step(self._folder(head) if head else self._root(), name)
            self._folders[folder] = known
        return known

    @staticmethod
    def _step(parent: str, name: str) -> str:
        """*parent* / *name*, resolved where it is a link, a dot or empty."""
        path = os.path.join(parent, name)
        if name in ("", ".", "..") or os.path.islink(path):
            return os.path.realpath(path)
        return path

    def write_if_changed(self, relative: str, data: bytes) -> bool:
        """Write *data* at *relative* unless the file already holds exactly these bytes.

        :returns: whether the file was written.
        :raises OutputError: on a path outside the root, a second write, or an OS error.
        """
        if relative in self.seen:
            message = "written twice in one build"
            raise OutputError(self.where(relative), message)
        self.seen.add(relative)
        path = self.target(relative)
        if self._holds(relative, path, data):
            return False
        try:
            atomic_write(Path(path), data)
        except OSError as err:
            message = f"cannot write ({err.strerror or err})"
            raise OutputError(self.where(relative), message) from err
        return True

    def stage_if_changed(self, relative: str, data: bytes, *, pid: int) -> Staged | None:
        """Write *data* to a temp file beside *relative* unless the file holds exactly these bytes.

        For a batch of many files (the pages): nothing is synced or renamed
        here; `commit_staged` makes the whole batch durable at once, then
        puts each file in place. The temp file is named for *pid*, the
        process that will commit it (this may be one of its forked workers).

        :returns: the temp file and its target, or None when the file is unchanged.
        :raises OutputError: on a path outside the root or an OS error.
        """
        path = self.target(relative)
        held = self._holds(relative, path, data)
        if held:
            return None
        try:
            if held is None:  # no such file: perhaps no folder either
                os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, temp_name = _create_temp(path, pid)
            with os.fdopen(fd, "wb") as temp:
                temp.write(data)
                os.fchmod(temp.fileno(), 0o644)
        except OSError as err:
            message = f"cannot write ({err.strerror or err})"
            raise OutputError(self.where(relative), message) from err
        return Staged(temp_name, path)

    def _holds(self, relative: str, path: str, data: bytes) -> bool | None:
        """Whether the file at *path* holds exactly *data*; None when there is no such file."""
        try:
            with open(path, "rb") as handle:
                return handle.read() == data
        except FileNotFoundError:
            return None
        except OSError as err:
            raise OutputError(self.where(relative), f"cannot read ({err.strerror})") from err

    def remove(self, relative: str) -> bool:
        """Remove a file this site generated earlier, and its folder if now empty."""
        path = Path(self.target(relative))
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            raise OutputError(self.where(relative), f"cannot remove ({err.strerror})") from err
        folder = path.parent
        root = self.root.resolve()
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
        return True


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, os.replace: readers see old or new, never half.

    The temp file is locked and renamed while still open, so that no moment
    exists in which a cleaner could take it for a dead run's.

    :raises OSError: when the folder cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = _create_temp(str(path))
    try:
        with os.fdopen(fd, "wb") as temp:
            _lock(temp.fileno())
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
            os.fchmod(temp.fileno(), 0o644)
            os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_folder(path.parent)


def _lock(fd: int) -> None:
    # A file system without flock (some FUSE mounts) still gets its writes;
    # its temp files are then protected by their writer's pid alone.
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX)


def commit_staged(staged: Iterable[Staged], root: Path) -> None:
    """Put staged temp files in place: their data made durable first, then each renamed.

    One sync of the file system for the whole batch instead of one fsync per
    file (a cold build of a big site writes 10,000 pages): after a crash each
    target holds its old bytes or its new ones, never a part. Call
    `sync_tree` once after the last batch to make the renames durable too.

    :raises OSError: when a rename fails.
    """
    pairs = list(staged)
    if not pairs:
        return
    sync_tree(root)
    for temp, target in pairs:
        os.replace(temp, target)


def sync_tree(root: Path) -> None:
    """Flush everything written to the file system holding *root* (syncfs, else sync)."""
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        os.sync()
        return
    try:
        syncfs = _syncfs()
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2), which the os module lacks; None elsewhere. Looked up on first use:
    ctypes is no import for a build with nothing to write."""
    import ctypes

    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


def _create_temp(path: str, pid: int | None = None) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    owner = os.getpid() if pid is None else pid
    folder, name = os.path.split(path)
    while True:
        temp_name = os.path.join(folder, f".{name}.{owner}-{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temp_name, flags, 0o600), temp_name
        except FileExistsError:
            continue


def remove_stale_temps(folders: Iterable[Path], *, now: datetime) -> list[Path]:
    """Remove the temp files dead runs left in *folders* (recursively); the module says which.

    One INFO line per file removed and a WARNING for the total; a file that
    cannot be removed is logged and left.

    :returns: the paths removed.
    """
    removed: list[Path] = []
    moment = now.timestamp()
    for folder in folders:
        for path in _temp_candidates(folder):
            if _remove_if_stale(path, moment):
                logger.info("removed %s, left by an interrupted run", path)
                removed.append(path)
    if removed:
        count = len(removed)
        logger.warning(
            "removed %d temporary file%s left by an interrupted run",
            count,
            "" if count == 1 else "s",
        )
    return removed


def _temp_candidates(folder: Path) -> Iterator[Path]:
    """Regular files named like our temp files, below *folder*; symlinks are not followed."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as err:
        logger.warning("%s: cannot look for temporary files (%s)", folder, err.strerror)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _temp_candidates(Path(entry.path))
        elif (
            entry.name.startswith(".")
            and entry.name.endswith(".tmp")
            and entry.is_file(follow_symlinks=False)
            and (_TEMP.fullmatch(entry.name) or _OLD_TEMP.fullmatch(entry.name))
        ):
            yield Path(entry.path)


def _remove_if_stale(path: Path, now: float) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # gone already, or not ours to open
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        except OSError:
            pass  # no flock on this file system: the pid and age rules still hold
        age = now - os.fstat(fd).st_mtime
        match = _TEMP.fullmatch(path.name)
        if match is not None:
            is_stale = age > STALE_AFTER or not process_alive(int(match["pid"]))
        else:
            is_stale = age > OLD_STALE_AFTER
        if not is_stale:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            logger.warning("%s: cannot remove this temporary file (%s)", path, err.strerror)
            return False
        return True
    finally:
        os.close(fd)


def left_as(path: Path | str, size: int, mtime_ns: int) -> bool:
    """Whether the file at *path* still has the size and mtime a build recorded for it.

    A build records both for every file it writes: a file whose stat still
    matches was touched by nobody (and by no killed build) since.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns) == (size, mtime_ns)


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with *pid* runs (a temp file's writer, a sender)."""
    if pid <= 0:
        return False  # 0 and negatives name process groups, never a writer
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, but someone else's
    except OverflowError:
        return False  # no such pid can exist
    return True


def _fsync_folder(folder: Path) -> None:
    # The rename itself is durable only once the folder entry is on disk.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
