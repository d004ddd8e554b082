"""A process-pool map that survives a worker's death (killed for memory, a crash inside a decoder).

`concurrent.futures.ProcessPoolExecutor` turns one dead worker into BrokenProcessPool for every pending
item, which stopped a whole stage because of one file. Here each worker marks the item it starts in a
shared array, so after a break the parent knows which items were running: those are retried one at a
time, each in a fresh one-worker pool (an innocent item that was only killed alongside comes through),
and an item whose worker dies again gets `on_death(job)` as its result. Items that had not started are
run again in a new pool. Results come back in the order of `jobs`.

Workers are forked (the default on Linux, named explicitly because the shared array is inherited): fn and
its module state are inherited, nothing is pickled but the jobs and results.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from tqdm import tqdm

J = TypeVar("J")
R = TypeVar("R")

_started: Any = None  # the shared started-flags array, set in each worker by _init


def _init(started) -> None:
    global _started
    _started = started


def _call(fn: Callable, index: int, job):
    _started[index] = 1
    return fn(job)


def _one_pool(fn: Callable[[J], R], jobs: Sequence[J], todo: list[int], workers: int, results: dict[int, R],
              bar) -> set[int]:
    """Run `todo` in one pool; fill `results`; return the items that were running when the pool broke."""
    started = multiprocessing.RawArray("b", len(jobs))  # shared by inheritance: hence fork, named explicitly
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("fork"),
                             initializer=_init, initargs=(started,)) as pool:
        futures = {pool.submit(_call, fn, i, jobs[i]): i for i in todo}
        pending = set(futures)
        broken = False
        while pending and not broken:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    results[futures[fut]] = fut.result()
                    bar.update(1)
                except BrokenProcessPool:
                    broken = True
        for fut in pending:  # finished just before the break: keep, do not redo
            if fut.done() and fut.exception() is None:
                results[futures[fut]] = fut.result()
                bar.update(1)
    return {i for i in todo if started[i] and i not in results} if broken else set()


def map_surviving_deaths(fn: Callable[[J], R], jobs: Sequence[J], workers: int, on_death: Callable[[J], R],
                         desc: str = "", unit: str = "item") -> list[R]:
    """[fn(job) for job in jobs] in `workers` processes; a job whose worker dies twice gives on_death(job).

    fn must be picklable by reference (a module-level function) and must not raise.
    """
    results: dict[int, R] = {}
    todo = list(range(len(jobs)))
    with tqdm(total=len(jobs), desc=desc, unit=unit, disable=None, file=sys.stderr) as bar:
        while todo:
            suspects = _one_pool(fn, jobs, todo, workers, results, bar)
            if not suspects and len(results) < len(jobs):
                # The pool broke before any item started (fork failed, out of memory at start): retrying
                # the same way would loop forever.
                raise RuntimeError("the worker processes could not start: free memory or lower the workers setting")
            for i in sorted(suspects):
                if not _one_pool(fn, jobs, [i], 1, results, bar):
                    continue
                results[i] = on_death(jobs[i])
                bar.update(1)
            todo = [i for i in todo if i not in results]
    return [results[i] for i in range(len(jobs))]
