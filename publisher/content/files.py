"""Finding article files and reading them whole, even while an editor is saving one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from publisher.errors import ContentError, FieldProblem
from publisher.model import BodyFormat

ARTICLE_SUFFIXES: dict[str, BodyFormat] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}
MAX_FILE_BYTES = 5 * 1024 * 1024


class FoundFile(NamedTuple):
    """An article file as the scan saw it.

    A named tuple, not a dataclass: a quick build makes 10,000 of them, and a
    frozen dataclass takes twice as long to make.
    """

    root: str  # the content folder
    relative: str  # with forward slashes
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        # Made on demand: a quick build stats 10,000 files and needs no Path.
        return Path(self.root, self.relative)


def discover(content_dir: Path, *, with_stat: bool = True) -> Iterator[FoundFile]:
    """Article files under *content_dir*, sorted, skipping hidden files and folders.

    Without *with_stat* the sizes and mtimes are -1: a build with no state yet
    reads every file anyway, and stat-ing 10,000 files first costs it 40 ms.

    :raises FileNotFoundError: when the folder does not exist.
    """
    if not content_dir.is_dir():
        raise FileNotFoundError(content_dir)
    root = str(content_dir)
    found: list[FoundFile] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(root, prefix) if prefix else root))
        except OSError:
            continue  # a folder that vanished or cannot be listed holds no articles
        lead = f"{prefix}/" if prefix else ""
        for entry in entries:
            try:
                _take(entry, root, lead, found, pending, with_stat=with_stat)
            except OSError:
                continue  # vanished between listing and stat: it is simply not there
    found.sort(key=_by_relative)
    yield from found


_by_relative = attrgetter("relative")


def _take(
    entry: os.DirEntry[str],
    root: str,
    lead: str,
    found: list[FoundFile],
    pending: list[str],
    *,
    with_stat: bool,
) -> None:
    """File one folder entry: an article into *found*, a folder into *pending*, else nothing.

    (The scan's inner loop: a quick build runs it 10,000 times, so no os.path here.)
    """
    name = entry.name
    if name[0] == ".":
        return
    if entry.is_dir(follow_symlinks=False):
        if name[0] != "_":
            pending.append(lead + name)
        return
    dot = name.rfind(".")
    # Regular files only (a FIFO would block the read); a broken link is not there.
    if dot <= 0 or name[dot:].lower() not in ARTICLE_SUFFIXES or not entry.is_file():
        return
    if not with_stat:
        found.append(FoundFile(root, lead + name, -1, -1))
        return
    stat = entry.stat()
    found.append(FoundFile(root, lead + name, stat.st_size, stat.st_mtime_ns))


def read_article(path: Path | str, where: str, *, attempts: int = 3) -> tuple[bytes, int, int]:
    """The file's bytes with the size and mtime they belong to.

    An editor may be writing the file while we read it: when its size or
    mtime moves during the read, the read is tried again, so the stat we
    record always matches the bytes we parsed. (One open file and fstat
    rather than path lookups: a cold build reads thousands of files.)

    :raises ContentError: when the file is too big, unreadable or never still.
    """
    for _ in range(attempts):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            message = f"cannot be read ({err.strerror})"
            raise ContentError(where, [FieldProblem("file", message)]) from err
        try:
            before = os.fstat(fd)
            if before.st_size > MAX_FILE_BYTES:
                message = (
                    f"{before.st_size / 1024 / 1024:.1f} MB is over the "
                    f"{MAX_FILE_BYTES // 1024 // 1024} MB limit for one article"
                )
                raise ContentError(where, [FieldProblem("file", message)])
            data = _read_to_end(fd, before.st_size)
            after = os.fstat(fd)
        except OSError as err:
            message = f"cannot be read ({err.strerror})"
            raise ContentError(where, [FieldProblem("file", message)]) from err
        finally:
            os.close(fd)
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns) and len(
            data
        ) == after.st_size:
            return data, after.st_size, after.st_mtime_ns
    message = "kept changing while it was read; it will be read again on the next run"
    raise ContentError(where, [FieldProblem("file", message)])


def _read_to_end(fd: int, size: int) -> bytes:
    """*size* bytes, or one more if the file grew (the caller's fstat notices either way)."""
    data = os.read(fd, size + 1)
    while len(data) < size:
        more = os.read(fd, size + 1 - len(data))
        if not more:
            break
        data += more
    return data
