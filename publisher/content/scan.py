"""The content folder as the last index left it: the files found, which may have changed.

What a build's quick path needs and nothing more: no parsing (YAML, Markdown) and
no worker processes are imported here, so that a build with nothing to do never
loads them. Indexing (`indexing`) is the rest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from publisher.config import SiteConfig
from publisher.content import files
from publisher.content.files import FoundFile
from publisher.errors import ConfigError
from publisher.model import ContentProblem
from publisher.store import FileRow

# A file whose mtime is this close to (or after) the moment its folder was
# scanned may change again without its mtime moving: timestamps advance in
# ticks (a jiffy on ext4, 2 s on FAT), and an edit in the same tick as the
# scan, keeping the size, looks like no edit. Such files are read again by
# the next run (git's "racily clean" entries, the same problem).
RACY_WINDOW_NS = 2_000_000_000


def content_where(site: SiteConfig, relative: str) -> str:
    """A content file as messages name it (`content/2020/talks.md`), without Path objects."""
    return f"{content_prefix(site)}/{relative}"


@lru_cache(maxsize=8)
def content_prefix(site: SiteConfig) -> str:
    return site.display(site.content_dir).rstrip("/")


class Scan(NamedTuple):
    """The article files found, and when the scan started (wall clock, nanoseconds)."""

    files: Sequence[FoundFile]
    started_ns: int


def content_files(site: SiteConfig, *, with_stat: bool = True) -> Scan:
    """:raises ConfigError: when the content folder does not exist."""
    started_ns = time.time_ns()  # the file system's clock, not the site's "now"
    try:
        found = list(files.discover(site.content_dir, with_stat=with_stat))
    except FileNotFoundError:
        where = site.display(site.content_dir)
        message = "content folder not found (set [paths] content in publisher.toml)"
        raise ConfigError(where, message) from None
    return Scan(found, started_ns)


def is_racy(mtime_ns: int, indexed_at: str | None) -> bool:
    """Whether a file of this mtime may have changed without its stat showing it, given
    when the last scan started (see RACY_WINDOW_NS)."""
    return indexed_at is None or mtime_ns >= int(indexed_at) - RACY_WINDOW_NS


def problem_from_row(site: SiteConfig, row: FileRow) -> ContentProblem:
    """The cached problem of a file that did not change since it was reported."""
    return ContentProblem(
        content_where(site, row.path),
        row.problem or (),
        kept_previous=row.article_id is not None,
    )


@dataclass
class IndexResult:
    """What one pass over the content folder found and decided."""

    problems: list[ContentProblem] = field(default_factory=list)
    parsed: int = 0
    claims: dict[str, str] = field(default_factory=dict)  # article id -> path that owns it
    # Lines for the files parsed in this pass: markup removed from a title, an
    # identity lost (and the fix).
    warnings: list[str] = field(default_factory=list)
