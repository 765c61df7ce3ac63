"""Finding article files and reading them whole, even while an editor is saving one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from publisher.errors import ContentError, FieldProblem
from publisher.model import BodyFormat

ARTICLE_SUFFIXES: dict[str, BodyFormat] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}
MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FoundFile:
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
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relative = f"{prefix}/{entry.name}" if prefix else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("_"):
                        pending.append(relative)
                elif _is_article(entry):
                    found.append(_found(root, relative, entry, with_stat=with_stat))
            except OSError:
                continue  # vanished between listing and stat: it is simply not there
    found.sort(key=lambda f: f.relative)
    yield from found


def _is_article(entry: os.DirEntry[str]) -> bool:
    # Regular files only (a FIFO would block the read); a broken link is not there.
    return os.path.splitext(entry.name)[1].lower() in ARTICLE_SUFFIXES and entry.is_file()


def _found(root: str, relative: str, entry: os.DirEntry[str], *, with_stat: bool) -> FoundFile:
    if not with_stat:
        return FoundFile(root, relative, -1, -1)
    stat = entry.stat()
    return FoundFile(root, relative, stat.st_size, stat.st_mtime_ns)


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
