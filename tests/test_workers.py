"""dedup.workers: results in order, and no task can hang, crash or stop the run, or leave processes behind.

Timings are generous (a slow, noisy 2-core machine): a task that would sleep 60 s is cut at 2 s, and
no test asserts how fast anything is beyond "well before that task would have finished".
"""

import contextlib
import faulthandler
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dedup.workers import TaskFailure, run_tasks

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="checks processes through /proc")

_STATE: dict = {}


# Task functions: top level, so that the workers can find them.
def _init(value):
    _STATE["value"] = value
    _STATE["inits"] = _STATE.get("inits", 0) + 1


def _with_state(x):
    return _STATE.get("value"), x


def _jitter(x):
    time.sleep((x * 7919 % 5) / 1000)  # 0-4 ms, so that items finish out of order
    return x * x


def _task(x):
    if x == "hang":
        time.sleep(60)
    elif x == "segv":
        faulthandler.disable()  # pytest enables it; the dump would only clutter the output
        os.kill(os.getpid(), signal.SIGSEGV)
    elif x == "exit3":
        os._exit(3)
    elif x == "raise":
        raise ValueError("bad item\nsecond line")
    elif x == "unpicklable":
        return lambda: None
    return x


def _pid(_x):
    return os.getpid()


def _broken_init():
    raise OSError("no boilerplate file")


def _our_workers() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "dedup-worker"]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie has exited


def _wait_gone(pids, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        left = [p for p in pids if _alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_results_come_in_input_order():
    items = list(range(300))
    assert list(run_tasks(_jitter, items, jobs=3)) == [x * x for x in items]
    assert list(run_tasks(_jitter, items, jobs=2, timeout=30)) == [x * x for x in items]
    assert not _our_workers()


def test_no_items_starts_no_worker():
    assert list(run_tasks(_task, [], jobs=2, timeout=5)) == []
    assert not _our_workers()


def test_a_hanging_task_is_killed_after_the_timeout_and_the_others_complete():
    items = [0, 1, "hang", *range(3, 500)]  # the later ones wait behind it, then come in order
    t0 = time.monotonic()
    out = list(run_tasks(_task, items, jobs=2, timeout=2))
    assert time.monotonic() - t0 < 30  # the hanging task would take 60 s
    assert out[2] == TaskFailure("timed out after 2 s (worker killed)")
    assert out[:2] + out[3:] == [0, 1, *range(3, 500)]
    assert not _our_workers()


def test_one_worker_with_a_timeout_is_still_a_separate_process():
    out = list(run_tasks(_task, [1, "hang", 3], jobs=1, timeout=2))
    assert out[0] == 1 and out[2] == 3
    assert isinstance(out[1], TaskFailure)
    assert os.getpid() not in run_tasks(_pid, [0], jobs=1, timeout=5)


def test_a_worker_that_dies_fails_only_its_item():
    items = [0, "segv", 2, "exit3", 4, 5, "segv", 7, 8, 9]
    out = list(run_tasks(_task, items, jobs=2))
    assert out[1] == TaskFailure("worker process died (signal 11, SIGSEGV)")
    assert out[3] == TaskFailure("worker process died (exit code 3)")
    assert out[6] == out[1]
    assert [out[i] for i in (0, 2, 4, 5, 7, 8, 9)] == [0, 2, 4, 5, 7, 8, 9]
    # One worker: each death is replaced, and the rest still completes.
    out = list(run_tasks(_task, ["exit3", "segv", 2], jobs=1))
    assert [type(r) for r in out[:2]] == [TaskFailure, TaskFailure] and out[2] == 2
    assert not _our_workers()


def test_an_exception_in_fn_becomes_a_one_line_task_failure():
    out = list(run_tasks(_task, [0, "raise", 2, "unpicklable", 4], jobs=2, timeout=30))
    assert out[1] == TaskFailure("ValueError: bad item second line")
    assert out[3].reason.startswith("cannot send the result: ")
    assert [out[0], out[2], out[4]] == [0, 2, 4]
    assert all("\n" not in r.reason for r in out if isinstance(r, TaskFailure))


def test_the_initializer_runs_in_every_worker():
    out = list(run_tasks(_with_state, list(range(20)), jobs=2, initializer=_init, initargs=("params",)))
    assert out == [("params", x) for x in range(20)]
    assert "value" not in _STATE  # it ran in the workers, not here


def test_workers_that_cannot_start_raise_instead_of_looping():
    with pytest.raises(RuntimeError, match=r"failed to start .*initializer failed: OSError: no boilerplate file"):
        list(run_tasks(_task, list(range(10)), jobs=2, initializer=_broken_init))
    assert not _our_workers()


def test_in_process_runs_here_after_the_initializer():
    _STATE.clear()
    try:
        out = list(run_tasks(_with_state, [1, 2], jobs=4, initializer=_init, initargs=("here",), in_process=True))
        assert out == [("here", 1), ("here", 2)]
        assert list(run_tasks(_pid, [0], jobs=4, in_process=True)) == [os.getpid()]
        assert list(run_tasks(_task, ["raise"], jobs=1, in_process=True)) == [
            TaskFailure("ValueError: bad item second line")
        ]
    finally:
        _STATE.clear()
    assert not _our_workers()


def test_closing_the_generator_early_leaves_no_process():
    gen = run_tasks(_task, [0, "hang", "hang", "hang", 4], jobs=3, timeout=60)
    assert next(gen) == 0
    pids = [p.pid for p in _our_workers()]
    assert len(pids) == 3
    t0 = time.monotonic()
    gen.close()
    assert time.monotonic() - t0 < 20  # SIGTERM, not the 60 s tasks or timeout
    assert not _our_workers()
    assert _wait_gone(pids) == []


def test_an_exception_in_the_consumer_leaves_no_process():
    with pytest.raises(KeyError), contextlib.closing(run_tasks(_task, [0, "hang", "hang"], jobs=2)) as results:
        for _ in results:
            raise KeyError("consumer failed")
    assert not _our_workers()


class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm


def test_an_exception_from_a_signal_handler_stops_the_workers():
    old = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(_Alarm):
            for _ in run_tasks(_task, ["hang", "hang", 2], jobs=2, timeout=60):
                pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not _our_workers()


SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from dedup.workers import run_tasks

    class Terminated(Exception):
        pass

    def on_term(signum, frame):
        raise Terminated

    def slow(x):
        # the worker's pid, for the test, in one write so two workers' lines cannot interleave
        os.write(1, f"{os.getpid()}\\n".encode())
        time.sleep(float(sys.argv[1]))
        return x

    if __name__ == "__main__":
        signal.signal(signal.SIGTERM, on_term)
        # Ctrl-C as on a terminal: a test run started in the background (`pytest &` from a
        # script) passes SIGINT on ignored, and Python then installs no KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            for _ in run_tasks(slow, [0, 1], jobs=2, timeout=120):
                pass
        except (Terminated, KeyboardInterrupt) as exc:
            print("stopped by", type(exc).__name__, flush=True)
            sys.exit(1)
        print("done", flush=True)
    """
)


def _start_script(tmp_path, sleep: float) -> subprocess.Popen:
    script = tmp_path / "scan.py"
    script.write_text(SCRIPT, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), str(sleep)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a cron job or a terminal would give it
    )


def _read_pids(proc: subprocess.Popen, count: int, seconds: float = 30.0) -> set[int]:
    """The worker pids the script prints, without blocking past `seconds`."""
    pids: set[int] = set()
    buf = b""
    deadline = time.monotonic() + seconds
    fd = proc.stdout.fileno()
    while len(pids) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            pytest.fail(f"the script printed {pids} only")
        if not select.select([fd], [], [], remaining)[0]:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            proc.kill()
            pytest.fail(f"the script ended early: {proc.communicate()[1].decode(errors='replace')}")
        buf += chunk
        *lines, buf = buf.split(b"\n")
        pids.update(int(line) for line in lines if line.strip().isdigit())
    return pids


@pytest.mark.parametrize("how", ["SIGTERM to the parent", "SIGINT to the process group"])
def test_a_signalled_scan_leaves_no_worker_and_no_traceback(tmp_path, how):
    proc = _start_script(tmp_path, sleep=60)
    try:
        pids = _read_pids(proc, 2)
        if how.startswith("SIGTERM"):
            proc.send_signal(signal.SIGTERM)
            expected = b"stopped by Terminated"
        else:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on a terminal does
            expected = b"stopped by KeyboardInterrupt"
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert expected in out, err
    assert b"Traceback" not in err, err.decode(errors="replace")
    assert proc.returncode == 1
    assert _wait_gone(pids) == []


def test_workers_of_a_killed_parent_exit_after_their_task(tmp_path):
    proc = _start_script(tmp_path, sleep=1)
    try:
        pids = _read_pids(proc, 2)
        proc.kill()  # no cleanup at all: the workers see their pipe close
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = _wait_gone(pids, seconds=15)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []


def test_background_runs_a_function_in_a_forked_worker_and_tells_how_it_ended():
    import os

    from dedup.workers import Background

    with Background(os.getpid) as job:
        assert job.result() != os.getpid()
    with Background(lambda: 1 / 0) as job:
        failed = job.result()
        assert isinstance(failed, TaskFailure) and failed.reason.startswith("ZeroDivisionError")
    with Background(lambda: os._exit(3)) as job:
        died = job.result()
        assert isinstance(died, TaskFailure) and "exit code 3" in died.reason
    job = Background(lambda: time.sleep(60))
    pid = job._worker.proc.pid
    t0 = time.monotonic()
    job.close()  # still running: stopped, not waited for
    assert time.monotonic() - t0 < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _marked(x):
    folder, i, size = x
    Path(folder, f"done-{i}").write_text("")
    return b"x" * size


def test_a_worker_goes_on_while_the_consumer_is_busy_with_a_result(tmp_path):
    """A worker holds WORKER_DEPTH items and sends its results from a thread: while the consumer
    works on one result, the worker runs the next items, even when their results are larger than a
    pipe holds and nobody reads them yet."""
    items = [(str(tmp_path), i, 4 << 20) for i in range(3)]
    with contextlib.closing(run_tasks(_marked, items, jobs=1)) as results:
        assert next(results) == b"x" * (4 << 20)
        deadline = time.monotonic() + 30
        while not (tmp_path / "done-2").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # asking for nothing more meanwhile
        assert (tmp_path / "done-2").exists(), "the worker waited for the consumer"
        assert list(results) == [b"x" * (4 << 20)] * 2
    assert not _our_workers()


def test_items_held_by_a_worker_that_dies_run_again_and_only_the_deadly_one_fails(tmp_path):
    """A worker that dies holding several items: which one it was running is unknown, so each runs
    again alone; the one that kills its worker again fails, the others complete (each ran at least
    once in a worker that finished it)."""
    out = list(run_tasks(_task, [0, "exit3", 2, 3, "segv", 5], jobs=1, timeout=30))
    assert out[1] == TaskFailure("worker process died (exit code 3)")
    assert out[4] == TaskFailure("worker process died (signal 11, SIGSEGV)")
    assert [out[i] for i in (0, 2, 3, 5)] == [0, 2, 3, 5]
    assert not _our_workers()
