"""Writes done behind the caller: one thread runs a scan's store calls in order while it goes on.

The read stage's scanning process both takes the workers' results and writes them, 2,000 files a
transaction (fewer, larger transactions write each index page once for more rows). While it
wrote (~0.5 s a batch on the 100k crawl) it fed the workers no new files, and they idled: on that
crawl the stage's scanning process was busy 24 s of 47 and each worker 23 s, one after the other.
With the writes on a thread of their own, it goes on taking results and handing out files while
a batch is written; SQLite releases the GIL while it works.

Only this thread uses the store's connection between the first call submitted and `close` (the
connection is opened for use from any thread, one at a time: dbfile.connect); the caller may read
through another connection meanwhile (attribution does). No process is forked while a call is being
made: a child forked while this thread is inside SQLite would inherit the mutexes it holds (its
memory allocator's, its file locks'), and one that opens the database (attribution's and signing's
workers do) could wait on them forever. A fork (os.register_at_fork, any fork of this process)
waits for the call being made to end; workers are best forked before the first call, as the read
stage's and attribution's are.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

# Calls waiting for the writing thread at most: the caller waits when it is this far ahead (its
# memory stays bounded: a read batch is ~2,000 documents with their texts).
PENDING_WRITES = 2

_STOP = object()

# Held by a writing thread while it makes a call, and by a fork while it forks (see above).
_making = threading.RLock()


def _before_fork() -> None:
    _making.acquire()


def _after_fork_in_parent() -> None:
    _making.release()


def _after_fork_in_child() -> None:
    global _making
    _making = threading.RLock()  # the parent's is held by this fork, whose thread the child lacks


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


class WriteBehind:
    """`submit(fn, *args)` queues a call; one thread makes the calls in order. The first error a call
    raises is raised again to the caller by its next `submit` or by `close` (no later call is made:
    each call is a transaction of its own, so what was committed stands and the rest is done again
    by the next scan). Leaving the `with` block waits for the queued calls, or, when an exception
    is passing through (Ctrl-C), for the one being made only."""

    def __init__(self, pending: int = PENDING_WRITES) -> None:
        self._calls: queue.Queue = queue.Queue(maxsize=pending)
        self._error: BaseException | None = None
        self._abandon = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abandon = True
            self._finish()  # the error passing through is the one to report
        else:
            self.close()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._raise_error()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dedup-writer", daemon=True)
            self._thread.start()
        # The thread never stops before _STOP (after an error it takes calls off without making
        # them), so a full queue always drains: the error is raised by the next submit or close.
        self._calls.put((fn, args))

    def close(self) -> None:
        """Wait for every queued call; raise the first error one raised."""
        self._finish()
        self._raise_error()

    def _finish(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._calls.put(_STOP)
            self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._abandon = True
            raise error

    def _run(self) -> None:
        while True:
            item = self._calls.get()
            if item is _STOP:
                return
            if self._abandon or self._error is not None:
                continue  # taken off the queue, not made: the caller stops or was told of an error
            fn, args = item
            try:
                with _making:
                    fn(*args)
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                self._error = exc
