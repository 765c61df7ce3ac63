"""publisher.parallel: results in input order, on worker processes only for big batches."""

from __future__ import annotations

import multiprocessing
import os
import sys

import pytest

from publisher import parallel


def _square_and_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def _nested(n: int) -> tuple[int, set[int]]:
    """In a worker, a second forked_map runs in that worker: no pool of pools."""
    inner = parallel.forked_map(_square_and_pid, [n, n + 1], threshold=0, chunk=1)
    return os.getpid(), {pid for _square, pid in inner}


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine with cores to spare, whatever this one has."""
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 4)


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
@pytest.mark.usefixtures("four_cores")
def test_a_big_batch_runs_on_workers_and_comes_back_in_input_order():
    items = list(range(101))
    results = list(parallel.forked_map(_square_and_pid, items, threshold=100, chunk=7))
    assert [square for square, _pid in results] == [n * n for n in items]
    workers = {pid for _square, pid in results}
    assert os.getpid() not in workers
    assert len(workers) <= parallel.MAX_WORKERS


@pytest.mark.usefixtures("four_cores")
def test_a_small_batch_runs_in_this_process():
    results = list(parallel.forked_map(_square_and_pid, [3, 1, 2], threshold=4, chunk=1))
    assert results == [(9, os.getpid()), (1, os.getpid()), (4, os.getpid())]


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
@pytest.mark.usefixtures("four_cores")
def test_a_map_inside_a_worker_runs_in_that_worker():
    results = list(parallel.forked_map(_nested, list(range(8)), threshold=2, chunk=1))
    assert all(inner == {worker} for worker, inner in results)
    assert os.getpid() not in {worker for worker, _inner in results}


def test_one_core_runs_everything_in_this_process(monkeypatch):
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 1)
    results = list(parallel.forked_map(_square_and_pid, list(range(50)), threshold=2, chunk=5))
    assert results == [(n * n, os.getpid()) for n in range(50)]


def _remember(seen: dict[str, list[int]], n: int) -> tuple[int, int, list[int]]:
    """Square n, and say which items this process had seen before it (in *seen*)."""
    before = list(seen.setdefault("items", []))
    seen["items"].append(n)
    return n * n, os.getpid(), before


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
@pytest.mark.usefixtures("four_cores")
def test_a_pool_serves_several_maps_from_the_same_workers_in_order():
    with parallel.forked_pool(_remember, {}, use_workers=True, chunk=2) as run:
        first = list(run(list(range(10))))
        forked = {child.pid for child in multiprocessing.active_children()}
        second = list(run(list(range(10, 20))))
        assert {child.pid for child in multiprocessing.active_children()} == forked
    assert [square for square, _pid, _before in first + second] == [n * n for n in range(20)]
    workers = {pid for _square, pid, _before in first + second}
    assert os.getpid() not in workers
    assert workers <= forked  # the same workers served both maps
    # Each worker's shared state holds what it did before, in the first map too.
    done: dict[int, list[int]] = {}
    for n, (_square, pid, before) in enumerate(first + second):
        assert before == done.get(pid, [])
        done.setdefault(pid, []).append(n)


def test_a_pool_without_workers_runs_every_map_here():
    shared: dict[str, list[int]] = {}
    with parallel.forked_pool(_remember, shared, use_workers=False, chunk=2) as run:
        results = list(run([1, 2])) + list(run([3]))
    assert results == [(1, os.getpid(), []), (4, os.getpid(), [1]), (9, os.getpid(), [1, 2])]
    assert shared == {"items": [1, 2, 3]}


def _nested_in_pool(_shared: None, n: int) -> tuple[int, set[int]]:
    inner = parallel.forked_map(_square_and_pid, [n, n + 1], threshold=0, chunk=1)
    return os.getpid(), {pid for _square, pid in inner}


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
@pytest.mark.usefixtures("four_cores")
def test_a_map_inside_a_pool_worker_runs_in_that_worker():
    with parallel.forked_pool(_nested_in_pool, None, use_workers=True, chunk=1) as run:
        results = list(run(list(range(6))))
    assert all(inner == {worker} for worker, inner in results)
    assert os.getpid() not in {worker for worker, _inner in results}
