"""Map a function over a big batch on every core, results in input order.

A cold build parses thousands of files and renders about a hundred feeds:
pure Python work on independent items. Worker processes are forked after
the batch is in memory, so they inherit it (and everything imported) instead
of receiving it pickled; only indexes go out and only results come back.
Small batches, one core or a platform without fork run in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

MAX_WORKERS = 4

# The batch the forked workers read: set just before the pool starts, cleared after.
_batch: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def forked_map(
    function: Callable[[_Item], _Result],
    items: Sequence[_Item],
    *,
    threshold: int,
    chunk: int,
) -> Iterator[_Result]:
    """Yield function(item) for each item, in order; on worker processes from *threshold* items.

    *function* must be a module-level function (workers find it by reference
    in their copy of this process) and must not depend on state changed
    after the call starts.
    """
    global _batch
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if len(items) < threshold or workers < 2 or sys.platform != "linux" or _batch is not None:
        yield from map(function, items)
        return
    ranges = [(start, min(start + chunk, len(items))) for start in range(0, len(items), chunk)]
    _batch = (function, items)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for results in pool.imap(_run_range, ranges):
                yield from results
    finally:
        _batch = None


def _run_range(bounds: tuple[int, int]) -> list[Any]:
    assert _batch is not None  # set by forked_map before the fork
    function, items = _batch
    return [function(items[index]) for index in range(*bounds)]
