"""The static folder ([paths] static): files copied into the site as they are.

Images an article shows (`![…](/images/map.png)`), downloads, a favicon: each
file of the folder goes to the same place under [paths] site, so its URL is
base_url + its path. Only the stat is read here; a build copies a file again
only when its size or mtime changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StaticFile:
    path: str  # relative to the static folder, with forward slashes
    size: int
    mtime_ns: int


def static_files(folder: Path) -> tuple[StaticFile, ...]:
    """Every regular file below *folder*, sorted; dot-files, dot-folders and symlinks skipped."""
    found: list[StaticFile] = []
    _walk(folder, "", found)
    return tuple(sorted(found, key=lambda f: f.path))


def _walk(folder: Path, prefix: str, found: list[StaticFile]) -> None:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue  # never served, and a temp file of some editor's
        relative = f"{prefix}{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            _walk(Path(entry.path), f"{relative}/", found)
        elif entry.is_file(follow_symlinks=False):
            stat = entry.stat(follow_symlinks=False)
            found.append(StaticFile(relative, stat.st_size, stat.st_mtime_ns))
