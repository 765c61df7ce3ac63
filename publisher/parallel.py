"""Map a function over a big batch on every core, results in input order.

A cold build parses thousands of files and renders about a hundred feeds:
pure Python work on independent items. Worker processes are forked after
the batch is in memory, so they inherit it (and everything imported) instead
of receiving it pickled; only indexes go out and only results come back.
Small batches, one core or a platform without fork run in this process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

# multiprocessing is imported where a pool starts: a build with nothing to do
# never starts one, and the import costs it about 10 ms.

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")
_Shared = TypeVar("_Shared")

MAX_WORKERS = 4

# The batch the forked workers read: set just before the pool starts, cleared after.
_batch: tuple[Callable[[Any], Any], Sequence[Any]] | None = None
# What the workers of a forked_pool call, and with what: set just before they fork.
_pooled: tuple[Callable[[Any, Any], Any], Any] | None = None


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
    if len(items) < threshold or not _can_fork():
        yield from map(function, items)
        return
    import multiprocessing

    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    ranges = [(start, min(start + chunk, len(items))) for start in range(0, len(items), chunk)]
    _batch = (function, items)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for results in pool.imap(_run_range, ranges):
                yield from results
    finally:
        _batch = None


def _can_fork() -> bool:
    """Whether workers can be forked here: several cores, Linux, and not in a worker (or
    beside a forked_pool) already."""
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    return workers >= 2 and sys.platform == "linux" and _batch is None and _pooled is None


@contextlib.contextmanager
def forked_pool(
    function: Callable[[_Shared, _Item], _Result],
    shared: _Shared,
    *,
    use_workers: bool,
    chunk: int,
) -> Iterator[Callable[[Sequence[_Item]], Iterator[_Result]]]:
    """Workers forked once for several maps: yields map(items), which yields
    function(shared, item) for each item, in order.

    *shared* is what this process holds at the fork: the workers read it
    without its being pickled, and what they cache in it stays from one map
    to the next (forked_map forks anew for each, and a new worker faults in
    the memory it touches again). The items go to them pickled. Without
    workers (not *use_workers*, one core, no fork, or in a worker already)
    each map runs in this process.
    """
    global _pooled
    if not use_workers or not _can_fork():
        yield lambda items: (function(shared, item) for item in items)
        return
    import multiprocessing

    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    _pooled = (function, shared)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield lambda items: pool.imap(_call_pooled, items, chunksize=chunk)
    finally:
        _pooled = None


def _call_pooled(item: Any) -> Any:
    assert _pooled is not None  # set by forked_pool before the fork
    function, shared = _pooled
    return function(shared, item)


def _run_range(bounds: tuple[int, int]) -> list[Any]:
    assert _batch is not None  # set by forked_map before the fork
    function, items = _batch
    return [function(items[index]) for index in range(*bounds)]


def spawned_calls(
    function: Callable[..., _Result],
    calls: Sequence[tuple[Any, ...]],
    should_stop: Callable[[], bool],
) -> list[_Result | BaseException]:
    """Run function(*args, stop) in a fresh process for each *args*, all at once.

    Each child gets `stop`, a callable that turns true when *should_stop*
    does in the parent (the children ignore SIGINT and SIGTERM themselves,
    so that a Ctrl-C reaches them as one orderly stop). Returns each call's
    result or the exception it raised, in order; a child that died without
    a word (killed) gives a ChildProcessError, and the others go on.
    *function* and the arguments must pickle (module-level, plain data).
    """
    import multiprocessing
    import multiprocessing.connection

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    children = []
    for args in calls:
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(function, args, stop, send), daemon=True)
        child.start()
        send.close()
        children.append((child, receive))
    results: dict[int, Any] = {}
    try:
        while len(results) < len(children):
            waiting = [receive for i, (_, receive) in enumerate(children) if i not in results]
            sentinels = [c.sentinel for i, (c, _) in enumerate(children) if i not in results]
            multiprocessing.connection.wait([*waiting, *sentinels], timeout=0.2)
            if should_stop():
                stop.set()
            for index, (child, receive) in enumerate(children):
                if index not in results and (receive.poll() or not child.is_alive()):
                    results[index] = _result_of(child, receive)
    finally:
        stop.set()
        for child, receive in children:
            child.join()
            receive.close()
    return [results[index] for index in range(len(children))]


def _child(function: Callable[..., Any], args: tuple[Any, ...], stop: Any, send: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        result: Any = function(*args, stop.is_set)
    except BaseException as err:  # carried to the parent, which raises it
        result = err
    send.send(result)
    send.close()


def _result_of(child: Any, receive: Any) -> Any:
    if receive.poll():
        return receive.recv()
    return ChildProcessError(f"a sending process ended without a result (exit {child.exitcode})")
