"""Where a scan's heavy map stages run: open_engine(name, address, jobs) -> an Engine.

The stages hand the engine a function, items and a worker initializer (ingest: read_file,
sign_chunk; pipeline: verify_task) and get the results back in input order, a TaskFailure for
an item that timed out, crashed its worker or raised; they also ask it for each index batch's
candidate pairs (candidates.PairSearch). Results are saved by the scanning process, the single
writer, in that order, so the database is the same whichever engine computed them.

`local` (the default): worker processes on this machine (dedup.workers), pairs found here.
`ray`: Ray tasks on a Ray cluster, or on a Ray started on this machine (dedup.ray_engine, which
imports ray; ray is an optional extra: `pip install 'crawl-dedup-zh[ray]'`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

from dedup.candidates import PairSearch, find_batch_pairs, overlap_of
from dedup.cluster import Group, group_pairs
from dedup.errors import DedupError
from dedup.workers import TaskFailure, WorkerPool, run_tasks

ENGINES = ("local", "ray")
# Worker processes of the local engine when --jobs is not given: the CPUs, at most this many (the
# default scan() has always had; models.ScanOptions.jobs).
LOCAL_MAX_JOBS = 4


class EngineUnavailable(DedupError):
    """The engine asked for cannot run here (its package is not installed, its cluster unreachable)."""


class TaskPool(Protocol):
    """Engine.task_pool: map(items) as run_tasks gives them; close() ends its workers."""

    def map(self, items: list) -> Iterator[Any | TaskFailure]: ...

    def close(self) -> None: ...


class Engine(Protocol):
    """What the stages need of an engine."""

    name: str

    def default_jobs(self) -> int:
        """Tasks run at once when --jobs is not given."""
        ...

    def run_tasks(
        self,
        fn: Callable,
        items: list,
        jobs: int,
        initializer: Callable | None = None,
        initargs: tuple = (),
        timeout: float | None = None,
        in_process: bool = False,
    ) -> Iterator[Any | TaskFailure]:
        """fn(item) for every item, in input order: its result or a TaskFailure (workers.run_tasks)."""
        ...

    def task_pool(
        self, fn: Callable, jobs: int, initializer: Callable | None = None, initargs: tuple = (),
        timeout: float | None = None,
    ) -> TaskPool:  # fmt: skip
        """run_tasks of one function for several lists of items, one after the other: the local
        engine keeps its worker processes between them (forked once)."""
        ...

    def find_pairs(self, search: PairSearch) -> set[tuple[int, int]]:
        """One index batch's candidate pairs (candidates.find_batch_pairs gives them here)."""
        ...

    def group(
        self, sizes: dict[int, int], copies: dict[int, list[int]], pairs: np.ndarray, params, store
    ) -> list[Group]:
        """The clusters of the verified edges between representatives (`pairs`, rows of
        edges.EDGE_DTYPE; cluster.group_pairs gives them here), in group_pairs' order."""
        ...

    def close(self) -> None:
        """Release what the engine started."""
        ...


class LocalEngine:
    """Worker processes on this machine (dedup.workers.run_tasks); candidate pairs found here."""

    name = "local"

    def default_jobs(self) -> int:
        return min(LOCAL_MAX_JOBS, os.cpu_count() or 1)

    def run_tasks(self, fn, items, jobs, initializer=None, initargs=(), timeout=None, in_process=False):
        return run_tasks(fn, items, jobs, initializer, initargs, timeout=timeout, in_process=in_process)

    def task_pool(self, fn, jobs, initializer=None, initargs=(), timeout=None) -> TaskPool:
        return WorkerPool(fn, jobs, initializer, initargs, timeout)

    def find_pairs(self, search: PairSearch) -> set[tuple[int, int]]:
        return find_batch_pairs(search)

    def group(self, sizes, copies, pairs, params, store) -> list[Group]:
        return group_pairs(sizes, copies, pairs, params, overlap_of(store, params))

    def close(self) -> None:
        pass


LOCAL = LocalEngine()


def check_engine(name: str) -> None:
    """Raise EngineUnavailable when the engine's package is not installed (before any work)."""
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EngineUnavailable(_NO_RAY) from None


_NO_RAY = "--engine ray needs Ray, which is not installed: pip install 'crawl-dedup-zh[ray]'"


def open_engine(name: str = "local", address: str | None = None, jobs: int | None = None) -> Engine:
    """The engine called `name`; for ray, connected to the cluster at `address` (None: a Ray
    started on this machine with `jobs` CPUs, or the one this process already joined). Raises
    EngineUnavailable when ray is not installed or the cluster cannot be reached."""
    if name == "local":
        if address:
            raise DedupError("--address names a Ray cluster: it needs --engine ray")
        return LOCAL
    if name != "ray":
        raise DedupError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
    check_engine(name)
    from dedup.ray_engine import RayEngine

    return RayEngine.connect(address, jobs)
