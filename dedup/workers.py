"""Worker processes that one task cannot hang, crash or stop: run_tasks(fn, items, jobs) -> results in order.

Each worker runs the initializer once, then its items one at a time: the parent keeps WORKER_DEPTH
items sent to each worker over its pipe and waits (multiprocessing.connection.wait on every
worker's pipe and process sentinel) for the results, which a thread of the worker sends while it
goes on with the next item; so workers keep working while the parent is busy with what came back.
A task that runs longer than the timeout gets its worker SIGKILLed; a worker that dies (segfault,
os._exit, OOM kill) fails only the item it was running. Either way that item becomes a TaskFailure
and a new worker takes the dead one's place. (When the dead worker held several items, the parent
cannot tell which one it was running: they are all run again, each alone in a worker, and the one
that kills or hangs its worker again is the one that fails.)

Signals: workers ignore SIGINT (Ctrl-C on a terminal reaches the whole process group; the parent
decides) and keep the default SIGTERM. A worker exits by itself when its pipe to the parent closes,
so workers of a parent that was SIGKILLed exit once their current task is done. When an exception
(KeyboardInterrupt, an exception raised by a signal handler) passes through the generator, or the
consumer closes it early, every worker gets SIGTERM, then SIGKILL, and is reaped before it goes on.

Close the generator when stopping early, e.g. ``with contextlib.closing(run_tasks(...)) as results:``:
a generator abandoned in a local variable is only closed (and its workers stopped) when garbage
collected, which an exception's traceback can delay.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import Any

# Seconds a worker gets to exit, after SIGTERM or after its pipe is closed at the end of the run,
# before it is SIGKILLed. Workers have nothing of their own to clean up, so one second is plenty.
TERM_GRACE = 1.0
# Workers that fail to start this many times in a row (initializer raises, process dies before it
# is ready) stop the run with RuntimeError: the initializer is broken, and replacing them forever
# would loop without doing anything.
MAX_START_FAILURES = 3
# With a timeout, starting a worker (the initializer; under spawn/forkserver also the imports) gets
# this long at least, even when the per-task timeout is shorter. A slower start counts as a failure.
MIN_START_TIMEOUT = 10.0
# Seconds to wait for a SIGKILLed worker to be reaped. SIGKILL cannot be caught or ignored: this
# only matters for a process stuck in the kernel (uninterruptible I/O), which is then left behind.
REAP_TIMEOUT = 5.0
# Items sent to a worker at a time: the one it runs and the next ones, which it starts without
# waiting for the parent. A worker holds at most this many results unsent too (its memory stays
# bounded), so more items do not help a parent that stops reading results for long: 16 left the
# read stage's workers as idle as 2 while the parent wrote a transaction (~0.5 s); the scan writes
# on a thread of its own instead (dedup.store.writer).
WORKER_DEPTH = 2
# At most this many results are held back for the input order. Behind a slow or hung task the
# workers go on with at most this many later items, then wait for it: memory stays bounded.
MAX_BUFFERED = 10_000
# A TaskFailure's reason is cut to this many characters (one line).
MAX_REASON = 500

# Messages from a worker: (tag, payload).
_READY = 0  # the initializer ran; payload None
_RESULT = 1  # payload: fn's return value
_ERROR = 2  # payload: one line about the exception fn raised
_START_FAILED = 3  # payload: one line about the exception the initializer raised

# Signals blocked in the parent while it forks a worker, so that none reaches the child before the
# child has set its own handlers (a parent's Python handler running in the child would print a
# traceback there). The child unblocks them.
_FORK_SIGNALS = {signal.SIGINT, signal.SIGTERM}

# The parent's ends of all workers' pipes. A worker started by fork inherits copies of them and
# closes them first thing; otherwise a worker would keep a sibling's pipe open, and the sibling
# would not see end of file when the parent dies.
_PARENT_ENDS: set[Connection] = set()


@dataclass(frozen=True)
class TaskFailure:
    """An item whose task did not return: timed out, its worker died, or fn raised."""

    reason: str  # one line, e.g. "timed out after 60 s (worker killed)"


def _dumps(obj: Any) -> bytes:
    # Plain pickle, not Connection.send's ForkingPickler: items and results are plain data, and it
    # is much quicker for small messages.
    return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)


def _describe(exc: BaseException) -> str:
    """'Type: message' on one line."""
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line[:MAX_REASON]


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
        return f"signal {-exitcode}, {name}"
    return f"exit code {exitcode}"


def _worker_main(conn: Connection, fn: Callable, initializer: Callable | None, initargs: tuple) -> None:
    """A worker process: the initializer, then items from the pipe until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORK_SIGNALS)
    for other in list(_PARENT_ENDS):  # copies inherited through fork; none under spawn/forkserver
        other.close()
    _PARENT_ENDS.clear()
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        try:
            conn.send_bytes(_dumps((_START_FAILED, "initializer failed: " + _describe(exc))))
        except (OSError, ValueError):
            pass
        raise SystemExit(1) from None
    out: queue.Queue[bytes] = queue.Queue(maxsize=WORKER_DEPTH)
    threading.Thread(target=_send_all, args=(conn, out), name="dedup-sender", daemon=True).start()
    out.put(_dumps((_READY, None)))
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent closed the pipe or died
        try:
            item = pickle.loads(data)
        except BaseException as exc:  # noqa: BLE001 - the item does not unpickle here
            msg = (_ERROR, "cannot receive the item: " + _describe(exc))
        else:
            try:
                msg = (_RESULT, fn(item))
            except BaseException as exc:  # noqa: BLE001 - SystemExit and all: the worker goes on
                msg = (_ERROR, _describe(exc))
            del item
        del data
        try:
            data = _dumps(msg)
        except BaseException as exc:  # noqa: BLE001 - the result does not pickle
            data = _dumps((_ERROR, "cannot send the result: " + _describe(exc)))
        del msg
        out.put(data)  # waits while WORKER_DEPTH results are unsent: the parent is not reading
        del data


def _send_all(conn: Connection, out: queue.Queue) -> None:
    """A worker's sending thread: its messages, in order, while the worker goes on. A parent that
    is gone ends the worker (its next read of the pipe would tell it too, but it may be busy)."""
    while True:
        data = out.get()
        try:
            conn.send_bytes(data)
        except OSError:
            os._exit(0)
        del data


class _Worker:
    __slots__ = ("proc", "conn", "held", "ready", "broken", "deadline", "start_error")

    def __init__(self, proc, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.held: deque[int] = deque()  # the items sent to it and not answered, in order: it runs the first
        self.ready = False  # the initializer has run
        self.broken = False  # its pipe failed: it gets no more items, its sentinel will tell how it ended
        # time.monotonic() by which it must be ready, or done with its first item: `timeout` after
        # that item was sent or the item before it answered (the item started no later than that)
        self.deadline: float | None = None
        self.start_error = ""


class WorkerPool:
    """`jobs` worker processes, each running `initializer(*initargs)` once, then fn(item) per item.

    Use as a context manager; ``map(items)`` yields fn's results in input order, a TaskFailure for
    an item that timed out, killed its worker or raised. Leaving the ``with`` block normally lets
    the workers exit; leaving it by an exception kills them (SIGTERM, then SIGKILL).
    """

    def __init__(
        self,
        fn: Callable,
        jobs: int = 1,
        initializer: Callable | None = None,
        initargs: tuple = (),
        timeout: float | None = None,
        context: multiprocessing.context.BaseContext | None = None,
    ) -> None:
        self._fn = fn
        self._jobs = max(1, jobs)
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._timeout = timeout
        self._ctx = context or multiprocessing.get_context()
        # Under forkserver the workers are forked by the server, not by this process.
        self._block_on_fork = hasattr(signal, "pthread_sigmask") and self._ctx.get_start_method() != "forkserver"
        self._workers: list[_Worker] = []
        self._start_failures = 0  # in a row
        self._closed = False
        self._items: Sequence = ()
        self._next_send = 0
        self._requeue: deque[int] = deque()  # items taken back from a worker that died holding them
        self._alone: set[int] = set()  # items to run alone in a worker (held by one that died with others)
        self._results: dict[int, Any] = {}
        # What wait() watches: each worker's pipe and process sentinel -> (worker, is sentinel).
        # Rebuilt when a worker starts or goes.
        self._owners: dict[Any, tuple[_Worker, bool]] | None = None
        self._handles: list = []

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.proc.pid for w in self._workers]

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)

    def map(self, items: Iterable) -> Iterator[Any | TaskFailure]:
        """fn(item) for every item, in input order. Stopping early kills the workers (the pool closes)."""
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        items = items if isinstance(items, Sequence) else list(items)
        n = len(items)
        self._items, self._next_send, self._results = items, 0, {}
        self._requeue.clear()
        self._alone.clear()
        finished = False
        try:
            next_out = 0
            while next_out < n:
                if len(self._workers) < self._jobs:
                    self._top_up(n)
                self._dispatch(n, next_out)
                result = self._results.pop(next_out, _MISSING)
                if result is _MISSING:
                    self._wait_and_service(block=True)
                    continue
                if len(self._results) >= self._jobs:
                    # Catching up behind a slow item: take the finished workers' results between
                    # yields, so that they get new items instead of idling until the backlog is out.
                    self._wait_and_service(block=False)
                next_out += 1
                yield result
            finished = True
        finally:
            self._items = ()
            self._results = {}
            if not finished:
                self.close(abort=True)

    def _top_up(self, n: int) -> None:
        """Start workers up to `jobs`, but not more than there is work for."""
        busy = sum(1 for w in self._workers if w.held)
        want = min(self._jobs, n - self._next_send + len(self._requeue) + busy)
        while len(self._workers) < want:
            self._spawn()

    def _spawn(self) -> None:
        parent_end, child_end = self._ctx.Pipe()
        _PARENT_ENDS.add(parent_end)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child_end, self._fn, self._initializer, self._initargs),
            name="dedup-worker",
            daemon=True,  # multiprocessing's exit handler kills it if this process exits without closing the pool
        )
        w = _Worker(proc, parent_end)
        started = False
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _FORK_SIGNALS) if self._block_on_fork else None
        try:
            proc.start()
            started = True
            self._workers.append(w)  # before the signals are unblocked: cleanup must know about it
            self._owners = None
        finally:
            child_end.close()
            if not started:
                _PARENT_ENDS.discard(parent_end)
                parent_end.close()
            if old_mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if self._timeout is not None:
            w.deadline = time.monotonic() + max(self._timeout, MIN_START_TIMEOUT)

    def _dispatch(self, n: int, next_out: int) -> None:
        """Items to the workers: first one to each worker holding none, then more to each, up to
        WORKER_DEPTH, while more are left than workers holding none (still starting, say) could
        take. An item that must run alone goes only to a worker holding none, and nothing after it."""
        for depth in range(1, WORKER_DEPTH + 1):
            for w in self._workers:
                if not w.ready or w.broken or len(w.held) >= depth or (w.held and w.held[0] in self._alone):
                    continue
                if depth > 1:
                    waiting = sum(1 for x in self._workers if not x.held and not x.broken)
                    left = len(self._requeue) + min(n, next_out + MAX_BUFFERED) - self._next_send
                    if left <= waiting or (self._requeue and self._requeue[0] in self._alone):
                        return
                if not self._send_one(w, n, next_out):
                    return

    def _send_one(self, w: _Worker, n: int, next_out: int) -> bool:
        """The next item to worker w; False when there is none to send now."""
        while True:
            if self._requeue:
                if w.held and self._requeue[0] in self._alone:
                    return True  # for another worker
                i = self._requeue.popleft()
            elif self._next_send < n and self._next_send - next_out < MAX_BUFFERED:
                i = self._next_send
                self._next_send += 1
            else:
                return False
            try:
                data = _dumps(self._items[i])
            except Exception as exc:  # noqa: BLE001 - the item does not pickle
                self._results[i] = TaskFailure("cannot send the item: " + _describe(exc))
                continue
            try:
                w.conn.send_bytes(data)
            except OSError:
                # The worker is gone; its sentinel will tell how. The item was not run.
                self._requeue.appendleft(i)
                w.broken = True
                return True
            if not w.held and self._timeout is not None:
                w.deadline = time.monotonic() + self._timeout
            w.held.append(i)
            return True

    def _wait_and_service(self, block: bool) -> None:
        if self._owners is None:
            self._owners = {}
            for w in self._workers:
                self._owners[w.conn] = (w, False)
                self._owners[w.proc.sentinel] = (w, True)
            self._handles = list(self._owners)
        if not self._handles:
            if not block:
                return
            raise RuntimeError("no worker processes left")  # cannot happen: _top_up starts them
        deadline = None
        if self._timeout is not None:
            deadline = min((w.deadline for w in self._workers if w.deadline is not None), default=None)
        owners = self._owners  # _service may reset self._owners
        if not block:
            timeout = 0.0
        elif deadline is not None:
            timeout = max(0.0, deadline - time.monotonic())
        else:
            timeout = None
        ready = wait(self._handles, timeout)
        exited = [owners[h][0] for h in ready if owners[h][1]]
        for h in ready:
            w, is_sentinel = owners[h]
            if w in self._workers and (is_sentinel or w not in exited):
                self._service(w, is_sentinel)
        if deadline is not None:
            self._enforce_deadlines()

    def _service(self, w: _Worker, exited: bool) -> None:
        """Read what the worker sent; if it has exited, account for it."""
        try:
            if not exited:
                self._handle(w, pickle.loads(w.conn.recv_bytes()))  # one message per task
                return
            while w.conn.poll():  # the last words of an exited worker, without blocking
                self._handle(w, pickle.loads(w.conn.recv_bytes()))
        except (EOFError, OSError):
            pass  # the worker closed its pipe: it is exiting
        self._remove(w, f"worker process died ({_exit_reason(_stop(w))})")

    def _handle(self, w: _Worker, msg: tuple) -> None:
        tag, payload = msg
        if tag in (_RESULT, _ERROR):
            if w.held:
                i = w.held.popleft()
                self._results[i] = payload if tag == _RESULT else TaskFailure(payload)
                self._alone.discard(i)
            # The next item started at the latest now.
            w.deadline = time.monotonic() + self._timeout if w.held and self._timeout is not None else None
        elif tag == _READY:
            w.ready = True
            w.deadline = None
            self._start_failures = 0
        elif tag == _START_FAILED:
            w.start_error = payload

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for w in list(self._workers):
            if w.deadline is None or w.deadline > now:
                continue
            if w.conn.poll():  # its answer came at the last moment
                self._service(w, False)
                if w not in self._workers or w.deadline is None or w.deadline > now:
                    continue
            if w.ready:
                reason = f"timed out after {self._timeout:g} s (worker killed)"
            else:
                w.start_error = f"did not start within {max(self._timeout, MIN_START_TIMEOUT):g} s (worker killed)"
                reason = w.start_error
            w.proc.kill()
            _stop(w)
            self._remove(w, reason)

    def _remove(self, w: _Worker, reason: str) -> None:
        """Forget a dead worker; its item fails with `reason`. Too many failed starts raise RuntimeError."""
        self._workers.remove(w)
        self._owners = None
        _close(w)
        if len(w.held) == 1:
            i = w.held[0]
            self._results[i] = TaskFailure(reason)
            self._alone.discard(i)
        elif w.held:
            # Which of them it was running is unknown (the results before it may not have been
            # sent): each runs again alone, first.
            self._alone.update(w.held)
            self._requeue.extendleft(reversed(w.held))
        elif not w.ready:
            self._start_failures += 1
            if self._start_failures >= MAX_START_FAILURES:
                raise RuntimeError(
                    f"worker processes failed to start {self._start_failures} times in a row;"
                    f" last: {w.start_error or reason}"
                )

    def close(self, abort: bool = False) -> None:
        """Stop the workers and reap them. abort: SIGTERM them at once (they may be busy)."""
        self._closed = True
        workers, self._workers = self._workers, []
        try:
            if abort:
                for w in workers:
                    w.proc.terminate()
            for w in workers:
                w.conn.close()  # end of file: an idle worker exits by itself
            left = _await_exit(workers, TERM_GRACE)
            if left and not abort:
                for w in left:
                    w.proc.terminate()
                left = _await_exit(left, TERM_GRACE)
            for w in left:
                w.proc.kill()
            _await_exit(left, REAP_TIMEOUT)
        except BaseException:
            # Interrupted (a second Ctrl-C): no more waiting, but none of them outlives this.
            for w in workers:
                w.proc.kill()
            raise
        finally:
            for w in workers:
                _close(w)


_MISSING = object()


def _stop(w: _Worker) -> int | None:
    """Reap a worker that is exiting (SIGKILL it if it does not) or was SIGKILLed; its exit code."""
    w.proc.join(TERM_GRACE)
    if w.proc.exitcode is None:
        w.proc.kill()
        w.proc.join(REAP_TIMEOUT)
    return w.proc.exitcode


def _await_exit(workers: list[_Worker], seconds: float) -> list[_Worker]:
    """Wait up to `seconds` for the workers to exit and reap them; those still running."""
    deadline = time.monotonic() + seconds
    pending = {w.proc.sentinel: w for w in workers if w.proc.exitcode is None}
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for s in wait(list(pending), remaining):
            pending.pop(s).proc.join()
    return list(pending.values())


def _close(w: _Worker) -> None:
    """Release the pipe and, once reaped, the process handle."""
    _PARENT_ENDS.discard(w.conn)
    w.conn.close()
    if w.proc.exitcode is not None:
        try:
            w.proc.close()
        except ValueError:
            pass


def run_tasks(
    fn: Callable,
    items: list,
    jobs: int,
    initializer: Callable | None = None,
    initargs: tuple = (),
    timeout: float | None = None,
    in_process: bool = False,
) -> Iterator[Any | TaskFailure]:
    """fn(item) for every item, results yielded IN INPUT ORDER, each either fn's return value or a TaskFailure.

    In `jobs` worker processes (at least one, even for jobs <= 1), each running initializer(*initargs)
    once. A task running longer than `timeout` seconds has its worker killed; a task whose worker
    dies or that raises gives a TaskFailure; a replacement worker goes on with the rest. Raises
    RuntimeError when workers fail to start MAX_START_FAILURES times in a row.

    in_process: run fn here, after the initializer, without isolation or timeout (tiny inputs,
    debugging); an exception fn raises still becomes a TaskFailure.

    Stopping early (close the generator) or an exception passing through it kills and reaps the workers.
    """
    if in_process:
        if not items:
            return
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            try:
                result = fn(item)
            except Exception as exc:  # noqa: BLE001 - as in a worker
                result = TaskFailure(_describe(exc))
            yield result
        return
    with WorkerPool(fn, jobs, initializer, initargs, timeout) as pool:
        yield from pool.map(items)


def _call(fn: Callable[[], Any], _item: Any) -> Any:
    return fn()


class SharedCount:
    """A count shared by this process and those it forks after making it (a Background's): each
    takes the next items with `take`, so that every item goes to exactly one of them."""

    def __init__(self) -> None:
        self._value = multiprocessing.get_context("fork").Value("q", 0)

    def take(self, n: int = 1) -> int:
        """The first of the next `n` items, taken (past the end once all are taken)."""
        with self._value.get_lock():
            first = self._value.value
            self._value.value = first + n
        return first

    @property
    def taken(self) -> int:
        return self._value.value


class Background:
    """fn() in one worker process started now (forked: fn is not pickled), while this process
    goes on; result() waits for it: fn's return value, or a TaskFailure when fn raised or the
    worker died. The pool's signal handling and pipe hygiene apply; close() (or leaving a ``with``
    block) stops a worker that still runs. Only where processes are forked (`available`)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._pool = WorkerPool(partial(_call, fn), 1, context=multiprocessing.get_context("fork"))
        self._pool._spawn()
        self._worker = self._pool._workers[0]
        self._worker.conn.send_bytes(_dumps(None))  # the worker reads it once started
        self._worker.held.append(0)
        self._done = False

    @staticmethod
    def available() -> bool:
        return "fork" in multiprocessing.get_all_start_methods()

    def result(self) -> Any | TaskFailure:
        pool = self._pool
        while 0 not in pool._results:
            pool._wait_and_service(block=True)
        self._done = True
        return pool._results.pop(0)

    def close(self) -> None:
        self._pool.close(abort=not self._done)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
