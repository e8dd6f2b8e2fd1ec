import sqlite3

import pytest

from dedup.errors import NotFoundError, StoreError
from dedup.models import Document, Params
from dedup.store import MIGRATIONS, Store


def test_schema_is_created_once_and_versioned(tmp_path):
    db = tmp_path / "d.db"
    Store(db).close()
    Store(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "settings", "files", "documents", "skipped", "sites", "clusters", "memberships"} <= tables


def test_signatures_of_other_parameters_are_refused(tmp_path):
    s = Store(tmp_path / "d.db")
    s.start_run("/x", Params())
    s.check_params(Params(jaccard_threshold=0.6))  # clustering knobs may change
    with pytest.raises(StoreError, match="other shingling/MinHash parameters"):
        s.check_params(Params(shingle_size=4))
    s.close()


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(NotFoundError, match="run `dedup scan CRAWL_DIR"):
        Store(tmp_path / "none.db", create=False)


def test_not_a_database(tmp_path):
    p = tmp_path / "x.db"
    p.write_text("not sqlite at all" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        Store(p)


def test_a_file_replaces_its_documents_atomically(tmp_path):
    s = Store(tmp_path / "d.db")
    run = s.start_run("/x", Params())
    d1 = Document(path="f.jsonl#0", file_path="f.jsonl", kind="jsonl", text="甲")
    d2 = Document(path="f.jsonl#1", file_path="f.jsonl", kind="jsonl", text="乙")
    s.save_file("f.jsonl", "jsonl", 1, 1.0, "h1", "ok", None, run, [d1, d2], [], "fp")
    s.save_file("f.jsonl", "jsonl", 1, 2.0, "h2", "ok", None, run, [d1], [], "fp")
    assert [r["path"] for r in s.export_rows()] == ["f.jsonl#0"]
    s.close()


def test_a_busy_database_is_a_clear_error(tmp_path):
    db = tmp_path / "d.db"
    first = Store(db)
    second = Store(db)
    second.conn.execute("PRAGMA busy_timeout = 50")
    with first.write(), pytest.raises(StoreError, match="is another dedup scan running on it"), second.write():
        pass
    first.close()
    second.close()
