"""Writes behind the scan (dedup.store.writer): order, errors, Ctrl-C, and a scan whose save fails."""

import threading
import time
from contextlib import closing

import pytest

from dedup import ingest
from dedup.errors import StoreError
from dedup.pipeline import scan
from dedup.store import Store
from dedup.store.writer import WriteBehind
from tests.test_cron import small_crawl


def test_calls_are_made_in_order_on_one_other_thread_and_close_waits_for_them():
    made = []

    def call(i):
        time.sleep(0.001)
        made.append((i, threading.get_ident()))

    with WriteBehind() as w:
        for i in range(40):
            w.submit(call, i)
    assert [i for i, _ in made] == list(range(40))  # all made when the block is left
    assert {t for _, t in made} != {threading.get_ident()} and len({t for _, t in made}) == 1


def test_a_failed_call_is_raised_to_the_caller_and_no_later_call_is_made():
    made = []

    def fail():
        raise StoreError("cannot write to d.db: database or disk is full")

    w = WriteBehind()
    w.submit(made.append, 1)
    w.submit(fail)
    with pytest.raises(StoreError, match="disk is full"):
        for i in range(2, 1000):  # the error reaches a later submit, or close
            w.submit(made.append, i)
            time.sleep(0.001)
        w.close()
    w.close()  # raised once: closing again is quiet
    assert made[0] == 1 and len(made) == 1


def test_an_exception_leaving_the_block_abandons_the_queued_calls():
    started, go = threading.Event(), threading.Event()
    made = []

    def first():
        started.set()
        go.wait(10)
        made.append("first")

    with pytest.raises(KeyboardInterrupt), WriteBehind() as w:
        w.submit(first)
        w.submit(made.append, "second")
        w.submit(made.append, "third")
        started.wait(10)
        threading.Timer(1.0, go.set).start()  # the call being made ends after the block is left
        raise KeyboardInterrupt
    assert made == ["first"]  # finished, not cut; the queued ones dropped


def crawl_with_a_copy(root, n):
    """n bulletins of one site (tests/test_cron.py) and one copy of the first on another site."""
    small_crawl(root, n)
    (root / "copy.qcgl.com").mkdir()
    (root / "copy.qcgl.com" / "0.txt").write_text((root / "www.qcgl.gov.cn" / "0.txt").read_text("utf-8"), "utf-8")
    return root


def test_a_scan_whose_save_fails_half_way_reports_it_and_the_next_scan_finishes(tmp_path, monkeypatch):
    crawl = crawl_with_a_copy(tmp_path / "crawl", 60)
    db = tmp_path / "d.db"
    monkeypatch.setattr(ingest, "SAVE_BATCH", 10)
    real = Store.save_files
    calls = []

    def failing(self, batch, run_id, sig_fp):
        calls.append(len(batch))
        if len(calls) == 3:
            raise StoreError(f"cannot write to {db}: database or disk is full")
        return real(self, batch, run_id, sig_fp)

    monkeypatch.setattr(Store, "save_files", failing)
    with pytest.raises(StoreError, match="disk is full"):
        scan(crawl, db, jobs=2)
    assert len(calls) == 3  # nothing saved after the failure
    store = Store(db, readonly=True)
    assert store.db.execute("SELECT count(*) FROM files").fetchone()[0] == 20  # two batches committed
    assert store.db.execute("SELECT status FROM runs").fetchone()[0] == "failed"
    store.close()
    monkeypatch.setattr(Store, "save_files", real)
    again = scan(crawl, db, jobs=2)
    assert again.documents_new == 41  # the rest of the crawl, read this time
    fresh = scan(crawl, tmp_path / "fresh.db", jobs=2)
    with closing(Store(db, readonly=True)) as a, closing(Store(tmp_path / "fresh.db", readonly=True)) as b:
        assert list(a.export_rows()) == list(b.export_rows())
    assert fresh.documents_new == 61


def test_a_small_read_is_saved_in_parts_while_the_workers_read(tmp_path, monkeypatch):
    """Fewer files than SAVE_BATCH x SAVE_PARTS: saved in SAVE_PARTS transactions (and a rest),
    the first ones while files are still being read, not in one after the last file."""
    crawl = crawl_with_a_copy(tmp_path / "crawl", 39)  # 40 files
    monkeypatch.setattr(ingest, "SAVE_BATCH_MIN", 5)
    real = Store.save_files
    calls = []

    def counting(self, batch, run_id, sig_fp):
        calls.append(len(batch))
        return real(self, batch, run_id, sig_fp)

    monkeypatch.setattr(Store, "save_files", counting)
    summary = scan(crawl, tmp_path / "d.db", jobs=2)
    assert calls == [10, 10, 10, 10]
    assert summary.documents_new == 40


def test_a_fork_waits_for_the_call_being_made():
    """A process forked while the writing thread is inside a call (inside SQLite, holding its
    mutexes) could wait on them forever once it opens the database: a fork waits for the call."""
    import os

    started, order = threading.Event(), []

    def call():
        started.set()
        time.sleep(0.3)
        order.append("call ended")

    with WriteBehind() as w:
        w.submit(call)
        assert started.wait(10)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        order.append("forked")
        os.waitpid(pid, 0)
    assert order == ["call ended", "forked"]
