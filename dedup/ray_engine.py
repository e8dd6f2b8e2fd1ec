"""The Ray engine: a scan's map stages as Ray tasks, and each index batch's candidate pairs found
by key partition, on a Ray cluster (what an engine does: dedup.engine). Imports ray: only
dedup.engine.open_engine imports this module, when a scan asks for `--engine ray`.

run_tasks: one Ray task per item. A task runs its stage's worker initializer once per Ray worker
process (remembered by a digest of the function, initializer and arguments, so a worker that ran
the same stage before goes straight on), then fn(item). At most `jobs` tasks are in flight and
results come back in input order. A task that runs past the timeout is cancelled and its worker
killed (ray.cancel(force=True)); one whose worker dies or whose fn raises gives a TaskFailure;
MAX_START_FAILURES initializer failures in a row raise RuntimeError: as dedup.workers does. Ray
retries nothing (max_retries=0): the stages run a failed chunk again item by item themselves.

find_pairs: the batch's keys are split into `partitions` parts by key (keys are hashes already:
key % P). One map task per part looks its keys up in the segment files (memory-mapped from the
index folder) and pairs the rows found (candidates.bucket_pairs): band pairs, and for each pair of
texts the samples it shares, split again by pair (code % P). One reduce task per slice sums each
pair's samples over every map task and applies the sample rule (candidates.sample_pairs). So no
task holds more than one part of the batch's buckets, and the scanning process gets back only
pairs; it writes the batch's segment and verdicts itself, as with the local engine.

On a cluster of several machines, the crawl directory, the database and its index folder
(`DB.index/`) must be at the same path on every node (a shared filesystem), and dedup installed
on each (Ray runs the same code: `pip install 'crawl-dedup-zh[ray]'`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import ray
from ray import cloudpickle
from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError

from dedup import arrays
from dedup.candidates import (
    PairSearch,
    SegmentFiles,
    TextSizes,
    bucket_pairs,
    code_pairs,
    lookup,
    lookup_keys,
    overlap_of,
    pair_codes,
    sample_pairs,
)
from dedup.cluster import Edge, Group, UnionFind, edge_forest, edges_of, group_edges, in_grouping_order
from dedup.engine import EngineUnavailable
from dedup.errors import DedupError
from dedup.workers import MAX_BUFFERED, MAX_REASON, MAX_START_FAILURES, TaskFailure, run_tasks

log = logging.getLogger(__name__)

# Key partitions of a batch's candidate search, per CPU of the cluster: the map tasks of one batch
# then run in two waves or more, so one slow part does not leave the other CPUs idle, and each
# holds a smaller part of the buckets (at 100k documents one batch's lookup peaked near 1 GB in
# one process: candidates.LOOKUP_ROWS).
PARTITIONS_PER_CPU = 2
MIN_PARTITIONS = 2
# Seconds to wait for the tasks of a stage that is stopped early (Ctrl-C, an error) to be cancelled.
CANCEL_GRACE = 5.0
# ray.wait blocks in native code, where a signal's Python handler does not run: waits are cut into
# slices this long, so that SIGTERM and Ctrl-C stop a scan within a second (the cron contract).
WAIT_SLICE = 1.0
# Seconds a cluster's head gets to accept a connection before --address is refused.
CONNECT_TIMEOUT = 10.0


class _Outcome(NamedTuple):
    """What a task sends back: fn's result, or one line on why there is none."""

    ok: bool
    value: Any  # fn's result, or the reason
    start_failed: bool = False  # the initializer raised


# In a Ray worker process: the digest of the stage set up last, and its function.
_setup: dict[str, Any] = {"key": None, "fn": None}


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:MAX_REASON]


@ray.remote(max_retries=0)
def _run_task(box: list, key: str, item: Any) -> _Outcome:
    """A Ray task: the stage's initializer if this worker has not run it yet, then fn(item).
    `box` holds the stage's (fn, initializer, initargs) as an object reference, fetched only when
    this worker sets the stage up (a reference inside a list is not fetched by Ray)."""
    if _setup["key"] != key:
        _setup["key"] = None
        fn, initializer, initargs = cloudpickle.loads(ray.get(box[0]))
        try:
            if initializer is not None:
                initializer(*initargs)
        except Exception as exc:  # noqa: BLE001 - reported to the scanning process, which counts them
            return _Outcome(False, "initializer failed: " + _describe(exc), start_failed=True)
        _setup["key"], _setup["fn"] = key, fn
    try:
        return _Outcome(True, _setup["fn"](item))
    except Exception as exc:  # noqa: BLE001 - one item's failure, as in a local worker
        return _Outcome(False, _describe(exc))


class _Sizes(NamedTuple):
    """What the candidate rules need of every indexed text, shipped to the tasks once a run."""

    n_shingles: np.ndarray
    n_samples: np.ndarray
    short_max: int


def _db_path(folder: Path) -> Path:
    """The database whose index folder this is (SegmentFiles: `DB.index`)."""
    return folder.with_name(folder.name.removesuffix(".index"))


class _ContentHashes:
    """doc ids -> content hashes, read from the database (read-only) when a bucket outgrows
    BUCKET_ALL_PAIRS and is chained in content-hash order; opened on first use, closed by the task
    that made it. A connection left open in a long-lived Ray worker is not harmless: SQLite shares
    one view of the WAL index per file among a process's connections, and a later scan's rows were
    then missing from the worker's reads (a KeyError in the chained bucket)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.store = None

    def __call__(self, ids: list[int]) -> dict[int, str]:
        if self.store is None:
            from dedup.store import Store

            self.store = Store(self.db_path, readonly=True)
        return self.store.content_hashes(ids)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


@ray.remote(max_retries=0)
def _map_partition(
    folder: str,
    seg_ids: list[int],
    keys: np.ndarray,
    capped: np.ndarray,
    live: np.ndarray,
    fresh: int,
    batch: np.ndarray,
    sizes: _Sizes,
    params,
    slices: int,
) -> tuple:
    """One key partition of a batch: its rows looked up, paired; the band pairs (codes lo << 32 |
    hi) first, then the shared samples of each pair in `slices` parts by pair (2 x n: codes, counts)."""
    index = Path(folder)
    files = SegmentFiles(_db_path(index))
    segments = [files.open(s) for s in seg_ids]
    found_k, found_v = lookup(segments, keys, live, fresh, capped)
    hashes = _ContentHashes(_db_path(index))
    try:
        text_sizes = TextSizes(sizes.n_shingles, sizes.n_samples, hashes, sizes.short_max)
        found = bucket_pairs(set(batch.tolist()), found_k, found_v, text_sizes, params)
    finally:
        hashes.close()
    band = pair_codes(found.pairs)
    part = found.sample_codes % slices
    out = [np.stack((found.sample_codes[part == j], found.sample_counts[part == j])) for j in range(slices)]
    return (band, *out)


@ray.remote(max_retries=0)
def _reduce_samples(sizes: _Sizes, *parts: np.ndarray) -> np.ndarray:
    """One slice of pairs: their shared samples summed over every key partition, then the sample
    rule; the pairs it keeps (codes)."""
    both = np.concatenate(parts, axis=1) if parts else np.empty((2, 0), np.int64)
    codes, inverse = np.unique(both[0], return_inverse=True)
    counts = np.bincount(inverse, weights=both[1], minlength=len(codes)).astype(np.int64)
    text_sizes = TextSizes(sizes.n_shingles, sizes.n_samples, lambda ids: {}, sizes.short_max)
    kept = sample_pairs(codes, counts, text_sizes)
    return pair_codes(kept)


@ray.remote(max_retries=0)
def _forest(edges: list[Edge]) -> list[tuple[int, int]]:
    """One part of the verified edges: its union-find forest, (document, root) pairs."""
    return edge_forest(edges)


@ray.remote(max_retries=0)
def _group_part(sizes: dict[int, int], copies: dict[int, list[int]], edges: list[Edge], params, db_path: str) -> list:
    """Whole connected components grouped (cluster.group_edges); compilation detection reads the
    few signatures it compares from the database, read-only."""
    from dedup.store import Store

    store = Store(Path(db_path), readonly=True)
    try:
        return group_edges(sizes, copies, edges, params, overlap_of(store, params))
    finally:
        store.close()


def _check_reachable(address: str) -> None:
    """Refuse a host:port where nothing listens, before ray.init: Ray retries an unreachable head
    for minutes inside native code, where neither SIGTERM nor Ctrl-C stops it (the cron contract).
    Other forms ('auto', 'ray://...') are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in host:
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise EngineUnavailable(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (is `ray start --head` running there?)"
        ) from None


class _RunRefs(NamedTuple):
    """Object references the map tasks of one candidate search (match_new_texts) share."""

    sizes: TextSizes  # the run's, by identity: a new one starts a new run
    sizes_ref: Any
    live_ref: Any  # `live` at the run's first batch
    fresh: int  # the run's first segment: its rows and those of later segments are all live


class _RayTasks(NamedTuple):
    """RayEngine.task_pool: each map a run_tasks of its own."""

    engine: RayEngine
    fn: Callable
    jobs: int
    initializer: Callable | None
    initargs: tuple
    timeout: float | None

    def map(self, items: list) -> Iterator[Any | TaskFailure]:
        return self.engine.run_tasks(self.fn, items, self.jobs, self.initializer, self.initargs, self.timeout)

    def close(self) -> None:
        pass


class RayEngine:
    """Stages as Ray tasks on the cluster this process joined (dedup.engine.Engine)."""

    name = "ray"

    def __init__(self, address: str | None = None, jobs: int | None = None) -> None:
        self.address = address
        self.jobs = jobs  # tasks in flight (--jobs); None: every CPU of the cluster
        self.joined = False  # this process is connected to a Ray (joined on first use)
        self.started = False  # this engine started Ray or connected this process (closing undoes it)
        self.tasks = 0  # tasks submitted by run_tasks
        self.pair_tasks = 0  # map and reduce tasks submitted by find_pairs
        self._shared: _RunRefs | None = None  # what the tasks of the current candidate search share

    @classmethod
    def connect(cls, address: str | None = None, jobs: int | None = None) -> RayEngine:
        """An engine for the Ray cluster at `address` (refused at once when nothing listens there),
        or for a Ray started here with `jobs` CPUs (all, without), or the one this process already
        joined. Ray itself is joined or started on first use: a scan with nothing new to read,
        sign or match never starts it."""
        if address and not ray.is_initialized():
            _check_reachable(address)
        return cls(address, jobs)

    def _join(self) -> None:
        """Join the cluster (or start Ray here) unless done. Ray's own logging is kept to errors
        and task output stays on the workers: a quiet scan prints nothing (Ray warns about its
        token authentication at every start)."""
        if self.joined:
            return
        if ray.is_initialized():
            self.joined = True
            return
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        options = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
        try:
            if self.address:
                ray.init(address=self.address, **options)
            else:
                ray.init(num_cpus=self.jobs, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise EngineUnavailable(f"cannot start or reach {where}: {_describe(exc)}") from None
        finally:
            for sig, h in handlers.items():  # the scan's own signal handling stands (cron contract)
                if signal.getsignal(sig) is not h:
                    signal.signal(sig, h)
        self.joined = self.started = True

    def default_jobs(self) -> int:
        """--jobs, else the cluster's CPUs once joined (before: this machine's, which only decides
        whether tiny inputs run in this process; the tasks in flight follow the cluster)."""
        if self.jobs:
            return self.jobs
        if self.joined:
            return max(1, int(ray.cluster_resources().get("CPU", 1)))
        return os.cpu_count() or 1

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
        """fn(item) for every item as Ray tasks, results in input order (see the module's docstring).
        in_process: here, as the local engine does (tiny inputs)."""
        if in_process:
            return run_tasks(fn, items, jobs, initializer, initargs, in_process=True)
        return self._run(fn, items, initializer, initargs, timeout)

    def _run(self, fn, items, initializer, initargs, timeout) -> Iterator[Any | TaskFailure]:
        n = len(items)
        if not n:
            return
        self._join()
        slots = self.default_jobs()
        blob = cloudpickle.dumps((fn, initializer, initargs))
        key = hashlib.sha1(blob).hexdigest()
        box = [ray.put(blob)]
        pending: dict[Any, tuple[int, float | None]] = {}  # reference -> (item index, deadline)
        results: dict[int, Any] = {}
        next_send = next_out = start_failures = 0
        try:
            while next_out < n:
                while len(pending) < slots and next_send < n and next_send - next_out < MAX_BUFFERED:
                    ref = _run_task.remote(box, key, items[next_send])
                    self.tasks += 1
                    # From submission: with at most `slots` tasks in flight each starts at once on
                    # a cluster with as many CPUs (queueing behind other work counts too).
                    pending[ref] = (next_send, time.monotonic() + timeout if timeout else None)
                    next_send += 1
                if next_out in results:
                    yield results.pop(next_out)
                    next_out += 1
                    continue
                deadlines = [d for _, d in pending.values() if d is not None]
                wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else WAIT_SLICE
                wait_for = min(wait_for, WAIT_SLICE)
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=wait_for)
                for ref in ready:
                    i, _ = pending.pop(ref)
                    outcome = self._collect(ref)
                    start_failures = start_failures + 1 if outcome.start_failed else 0
                    if start_failures >= MAX_START_FAILURES:
                        raise RuntimeError(
                            f"Ray workers failed to set up the stage {start_failures} times in a row;"
                            f" last: {outcome.value}"
                        )
                    results[i] = outcome.value if outcome.ok else TaskFailure(outcome.value)
                now = time.monotonic()
                for ref, (i, deadline) in list(pending.items()):
                    if deadline is not None and deadline <= now and ref not in ready:
                        ray.cancel(ref, force=True)
                        del pending[ref]
                        results[i] = TaskFailure(f"timed out after {timeout:g} s (worker killed)")
        finally:
            if pending:  # stopped early: none of its tasks goes on
                for ref in pending:
                    ray.cancel(ref, force=True)
                ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_GRACE)

    @staticmethod
    def _collect(ref) -> _Outcome:
        try:
            return ray.get(ref)
        except RayTaskError as exc:
            return _Outcome(False, _describe(exc.cause or exc))
        except (TaskCancelledError, GetTimeoutError) as exc:
            return _Outcome(False, _describe(exc))
        except RayError as exc:  # WorkerCrashedError, ObjectLostError, a node gone
            return _Outcome(False, f"worker process died ({type(exc).__name__})")

    def partitions(self) -> int:
        """Key partitions of a batch's candidate search: per CPU of the cluster (not --jobs)."""
        self._join()
        return max(MIN_PARTITIONS, PARTITIONS_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))

    def task_pool(self, fn, jobs, initializer=None, initargs=(), timeout=None) -> _RayTasks:
        """run_tasks for each list of items (Ray keeps its workers itself)."""
        return _RayTasks(self, fn, jobs, initializer, initargs, timeout)

    def find_pairs(self, search: PairSearch) -> set[tuple[int, int]]:
        """The batch's candidate pairs, by key partition on Ray (module docstring): the same pairs
        candidates.find_batch_pairs finds."""
        p = self.partitions()
        keys, capped = lookup_keys(search.keys, search.vals)
        if not len(keys):
            return set()
        if self._shared is None or self._shared.sizes is not search.sizes:
            # A new run of match_new_texts: what every batch's tasks read, shipped once (lookup's `fresh`).
            s = search.sizes
            sizes_ref = ray.put(_Sizes(s.n_shingles, s.n_samples, s.short_max))
            self._shared = _RunRefs(s, sizes_ref, ray.put(np.asarray(search.live)), search.segments[-1].id)
        sizes, live, fresh = self._shared.sizes_ref, self._shared.live_ref, self._shared.fresh
        batch = ray.put(np.asarray(search.batch, dtype=np.int64))
        seg_ids = [s.id for s in search.segments]
        part = keys % np.uint64(p)
        maps = []
        for r in range(p):
            mine = part == r
            if mine.any():
                maps.append(
                    _map_partition.options(num_returns=1 + p).remote(
                        str(search.folder),
                        seg_ids,
                        keys[mine],
                        capped[mine],
                        live,
                        fresh,
                        batch,
                        sizes,
                        search.params,
                        p,
                    )
                )
        reduces = [_reduce_samples.remote(sizes, *[m[1 + j] for m in maps]) for j in range(p)]
        self.pair_tasks += len(maps) + len(reduces)
        try:
            refs = [m[0] for m in maps] + reduces
            while ray.wait(refs, num_returns=len(refs), timeout=WAIT_SLICE)[1]:
                pass  # in slices: signals are handled between them
            codes = arrays.unique(np.concatenate(ray.get(refs)))
        except RayError as exc:
            cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause else exc
            raise DedupError(f"the candidate search on Ray failed: {_describe(cause)}") from None
        return code_pairs(codes)

    def group(self, sizes, copies, pairs, params, store) -> list[Group]:
        """The clusters of the verified edges (`pairs`, rows of edges.EDGE_DTYPE), by connected
        component on Ray: a union-find forest for each part of the edges (tasks), united here from
        their (document, root) pairs; then the components, whole, spread over tasks that group them
        (cluster.group_edges); the groups put back in group_pairs' own order
        (cluster.in_grouping_order): the clusters of the local engine."""
        edges = edges_of(pairs)
        if not edges and not copies:
            return []
        p = self.partitions()
        parts = [edges[k::p] for k in range(p) if edges[k::p]]
        forests = self._wait_all([_forest.remote(part) for part in parts], "finding connected components")
        uf = UnionFind()
        for forest in forests:
            for d, root in forest:
                uf.union(d, root)
        # Each involved document's task, its component's: a component goes whole to one task.
        task = {d: uf.find(d) % p for d in uf.parent}
        task.update((d, d % p) for d in copies if d not in task)
        bundles: list[tuple[dict, dict, list]] = [({}, {}, []) for _ in range(p)]
        for d, n in sizes.items():  # in `sizes` order, as group_edges reads it
            if d in task:
                bundles[task[d]][0][d] = n
        for d, c in copies.items():
            bundles[task[d]][1][d] = c
        for e in edges:  # in edge order
            bundles[task[e.a]][2].append(e)
        tasks = [_group_part.remote(*b, params, str(store.path)) for b in bundles if b[0]]
        self.pair_tasks += len(parts) + len(tasks)
        groups = [g for part in self._wait_all(tasks, "grouping the clusters") for g in part]
        return in_grouping_order(groups, sizes)

    def _wait_all(self, refs: list, what: str) -> list:
        """The results of some tasks, waited for in slices (signals are handled between them)."""
        try:
            while refs and ray.wait(refs, num_returns=len(refs), timeout=WAIT_SLICE)[1]:
                pass
            return ray.get(refs)
        except RayError as exc:
            cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause else exc
            raise DedupError(f"{what} on Ray failed: {_describe(cause)}") from None

    def close(self) -> None:
        if self.started:
            ray.shutdown()
        self.started = self.joined = False
