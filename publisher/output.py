"""Atomic, idempotent writes of generated files under one output folder."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from publisher.errors import OutputError


class OutputWriter:
    """Owns every path written under *root* during one build.

    A file whose bytes did not change is not rewritten, so its mtime (and any
    HTTP validators derived from it) stay put. A second write to one path in
    the same build is a bug in the caller and is refused.
    """

    def __init__(self, root: Path, *, display_root: str) -> None:
        self.root = root
        self.display_root = display_root.rstrip("/")
        self.seen: set[str] = set()

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

    def target(self, relative: str) -> Path:
        """The absolute path for *relative*, refusing anything outside the root.

        :raises OutputError: when the path escapes the output folder.
        """
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()) or path == self.root.resolve():
            message = "refusing to write outside the output folder"
            raise OutputError(self.where(relative), message)
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
        try:
            if path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        except OSError as err:
            raise OutputError(self.where(relative), f"cannot read ({err.strerror})") from err
        try:
            atomic_write(path, data)
        except OSError as err:
            message = f"cannot write ({err.strerror or err})"
            raise OutputError(self.where(relative), message) from err
        return True

    def remove(self, relative: str) -> bool:
        """Remove a file this site generated earlier, and its folder if now empty."""
        path = self.target(relative)
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

    :raises OSError: when the folder cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_folder(path.parent)


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
