import re
import sqlite3
from contextlib import closing

import pytest

from dedup.errors import NotFoundError, StoreError
from dedup.models import Document, Params
from dedup.store import MIGRATIONS, FileOutcome, Store
from dedup.store.index import INDEX_COLUMNS_SQL


def test_schema_is_created_once_and_versioned(tmp_path):
    db = tmp_path / "d.db"
    Store(db).close()
    Store(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "settings", "files", "documents", "skipped", "sites", "clusters", "memberships"} <= tables


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(NotFoundError, match="run `dedup scan CRAWL_DIR"):
        Store(tmp_path / "none.db", readonly=True)


def test_not_a_database(tmp_path):
    p = tmp_path / "x.db"
    p.write_text("not sqlite at all" * 100)
    with pytest.raises(StoreError, match="is not a dedup database"):
        Store(p)
    assert p.read_text() == "not sqlite at all" * 100


def test_a_file_replaces_its_documents_atomically(tmp_path):
    s = Store(tmp_path / "d.db")
    run = s.start_run("/x", Params())
    d1 = Document(path="f.jsonl#0", file_path="f.jsonl", kind="jsonl", text="甲")
    d2 = Document(path="f.jsonl#1", file_path="f.jsonl", kind="jsonl", text="乙")
    s.save_files([FileOutcome("f.jsonl", "jsonl", 1, 1.0, "h1", "ok", None, [d1, d2], [])], run, "fp")
    s.save_files([FileOutcome("f.jsonl", "jsonl", 1, 2.0, "h2", "ok", None, [d1], [])], run, "fp")
    assert [r["path"] for r in s.export_rows()] == ["f.jsonl#0"]
    s.close()


def test_a_scans_batches_keep_their_statement_journals_in_memory(tmp_path):
    """A batch saved one statement a row (save_files here) runs with temp_store MEMORY, so that
    no statement journal goes to a temporary file; the connection is set back afterwards, also
    when the write fails, and other writes keep SQLite's default."""
    s = Store(tmp_path / "d.db")
    run = s.start_run("/x", Params())
    said: list[str] = []
    s.conn.set_trace_callback(said.append)
    doc = Document(path="a.txt", file_path="a.txt", kind="txt", text="江北区便民信息\n关注江北发布\n")
    s.save_files([FileOutcome("a.txt", "txt", 1, 1.0, "h1", "ok", None, [doc], [])], run, "fp")
    s.save_files([FileOutcome("b.txt", "txt", 1, 1.0, "h2", "ok", None, [], [])], run, "fp")  # the temp table again
    s.conn.set_trace_callback(None)
    pragmas = [q for q in said if "temp_store" in q]
    assert pragmas == ["PRAGMA temp_store = MEMORY", "PRAGMA temp_store = DEFAULT"] * 2
    begin = said.index("BEGIN IMMEDIATE")
    assert said.index("PRAGMA temp_store = MEMORY") < begin < said.index("PRAGMA temp_store = DEFAULT")
    assert s.conn.execute("PRAGMA temp_store").fetchone()[0] == 0
    with pytest.raises(RuntimeError), s.write(small_statements=True):
        assert s.conn.execute("PRAGMA temp_store").fetchone()[0] == 2
        s.conn.execute("UPDATE files SET size = 5")
        raise RuntimeError("a write that fails")
    assert s.conn.execute("PRAGMA temp_store").fetchone()[0] == 0
    assert {r[0] for r in s.conn.execute("SELECT size FROM files")} == {1}
    with s.write():
        assert s.conn.execute("PRAGMA temp_store").fetchone()[0] == 0
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


def test_cluster_ids_follow_their_stories():
    from dedup.store.results import ClusterChanges, claim_ids

    def cluster(key, *docs):
        return {"key": key, "members": [{"document_id": d, "role": "copy"} for d in docs]}

    before = {7: (frozenset({1, 2}), 1, None), 9: (frozenset({3, 4}), 3, None), 12: (frozenset({5, 6, 8}), 5, None)}
    # 7 and 9 merge (the older id, 7, survives); 12 splits (its larger part keeps 12).
    new = [cluster("doc:1", 1, 2, 3, 4), cluster("doc:6", 6, 8, 11), cluster("doc:5", 5, 10)]
    claimed = claim_ids(new, {d: k for k, v in before.items() for d in v[0]}, set())
    assert claimed == {0: 7, 1: 12}
    after = {
        7: (frozenset({1, 2, 3, 4}), 1, None),
        12: (frozenset({6, 8, 11}), 6, None),
        13: (frozenset({5, 10}), 5, None),
    }
    changes = ClusterChanges.between(before, after)
    events = {(e.key, e.event, e.other) for e in changes.events}
    assert {(7, "grown", None), (9, "merged", 7), (12, "split", 13), (13, "new", None)} <= events
    assert (12, "original_changed", None) in events
    assert changes.merged == 1 and changes.split == 1 and changes.new == 1


def test_a_queued_page_drops_no_site_tally(crawl, tmp_path):
    """A page added to a site with a stored tally is queued for it (schema migration 17) and is in
    no stored tally: its changes and its removal leave the tally; another page's change drops it."""
    from dedup.pipeline import scan

    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    site, path = "www.lvyewenda.com", "www.lvyewenda.com/2023/0314/q8812034.txt"
    store = Store(db)
    tallied = lambda: site in store.site_tallies()  # noqa: E731
    queued = lambda: [r[0] for r in store.conn.execute("SELECT document_id FROM site_tally_added")]  # noqa: E731
    assert tallied() and queued() == []
    # A new page as the read stage saves it (the one writer of new documents): queued, unattributed,
    # its title searchable.
    added = "www.lvyewenda.com/2023/0315/q8812090.txt"
    page = Document(path=added, file_path=added, kind="txt", site=site, title="绿叶问答:江北区暴雨预警何时解除",
                    text="江北区气象台今晨发布暴雨橙色预警。", status="pending")  # fmt: skip
    store.save_files([FileOutcome(added, "txt", 60, 1.0, "f" * 40, "ok", None, [page], [])], 1, "x")
    (new,) = store.conn.execute("SELECT id FROM documents WHERE path = ?", [added]).fetchone()
    waiting = store.conn.execute("SELECT 1 FROM unattributed WHERE document_id = ?", [new]).fetchall()
    assert queued() == [new] and tallied() and waiting == [(1,)]
    fts = "SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?"
    assert store.conn.execute(fts, ['"暴雨预警何时"']).fetchall() == [(new,)]
    with store.write():
        store.conn.execute("UPDATE documents SET credits = '[\"某报\"]', status = 'ok' WHERE id = ?", [new])
    assert tallied()
    with store.write():
        store.conn.execute("DELETE FROM documents WHERE id = ?", [new])
    assert tallied()
    with store.write():
        store.conn.execute("UPDATE documents SET credits = '[\"某报\"]' WHERE path = ?", [path])
    assert not tallied()
    store.save_site_tallies({})
    assert queued() == []
    store.close()


def test_a_clustering_leaves_unattributed_only_the_documents_not_ok(crawl, tmp_path):
    """Saving a clustering clears `unattributed` of every document that is 'ok' (its partial index
    of the others, ClusterSaving.finish); a page too short to join a cluster stays in it until it
    grows into a story."""
    from dedup.pipeline import scan

    db = tmp_path / "d.db"
    short = crawl / "www.qcnews.cn/2023/0316/brief.txt"
    short.parent.mkdir(parents=True, exist_ok=True)
    short.write_text("江北区今晨有雨\n\n江北区气象台今晨发布消息，全区出现小雨，市民出行请带伞。\n", encoding="utf-8")
    scan(crawl, db, Params(), jobs=1)
    waiting = "SELECT document_id FROM unattributed ORDER BY 1"
    not_ok = "SELECT id FROM documents WHERE status != 'ok' ORDER BY 1"
    with closing(Store(db)) as store:
        path = short.relative_to(crawl).as_posix()
        (brief,) = store.conn.execute("SELECT id FROM documents WHERE path = ?", [path]).fetchone()
        assert store.conn.execute(waiting).fetchall() == store.conn.execute(not_ok).fetchall() == [(brief,)]
    grown = [
        "江北区气象台今晨6时发布暴雨蓝色预警信号，预计未来6小时内全区将出现短时强降雨。",
        "受强降雨影响，城区部分低洼路段出现积水，交警部门已在多个路口安排警力疏导交通。",
        "区应急管理局提醒市民减少不必要的外出，驾车途经涵洞和下穿通道时注意观察水位。",
        "截至上午10时，全区平均降雨量为28.6毫米，最大降雨量出现在江北新城，为61.2毫米。",
        "区防汛办已启动防汛四级应急响应，各街道组织人员对山塘水库和地质灾害点开展巡查。",
        "气象部门预计，此次降雨过程将持续到明天夜间，后天起全区天气转为多云到阴。",
    ]
    short.write_text("江北区今晨有雨\n\n" + "\n".join(grown) + "\n", encoding="utf-8")
    scan(crawl, db, Params(), jobs=1)
    with closing(Store(db)) as store:
        assert store.conn.execute(not_ok).fetchall() == []
        assert store.conn.execute(waiting).fetchall() == []


def test_line_counts_equal_a_fresh_count_as_pages_come_change_and_go(tmp_path):
    """Short lines on one page are keys in site_lines_once, on two or more rows of site_lines
    (schema migration 18): after pages are added, changed and removed, the two equal a count of
    the live pages' lines, and boilerplate is learned from them as from a full count."""
    from collections import Counter

    from dedup.models import Params
    from dedup.normalize import learnable_lines
    from dedup.pipeline import scan
    from dedup.store.files import line_key

    crawl = tmp_path / "crawl"
    site = crawl / "www.jbqx.cn"
    site.mkdir(parents=True)

    def page(i: int, extra: str = "") -> str:
        return (
            f"江北区第{i}期便民信息\n关注江北发布 获取更多资讯\n责任编辑：林晓雯\n"
            f"本期提示：{'周末' if i % 2 else '工作日'}出行注意安全{extra}\n"
            f"江北区第{i}期便民信息发布，涉及供水、供电、交通等多个方面，请市民及时了解相关安排，"
            f"合理安排出行，编号JB{i * 37}。\n"
        )

    for i in range(12):
        (site / f"{i}.txt").write_text(page(i), encoding="utf-8")
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    (site / "3.txt").write_text(page(3, "，带好雨具"), encoding="utf-8")  # a line changed
    (site / "4.txt").unlink()
    (site / "5.txt").unlink()
    for i in range(12, 15):
        (site / f"{i}.txt").write_text(page(i), encoding="utf-8")
    scan(crawl, db, Params(), jobs=1)
    # The changed line on one page so far: a second page moves it from site_lines_once to site_lines.
    (site / "15.txt").write_text(page(15, "，带好雨具"), encoding="utf-8")
    scan(crawl, db, Params(), jobs=1)

    s = Store(db, readonly=True)
    assert s.db.execute("PRAGMA foreign_key_check").fetchall() == []  # pages added, changed, removed
    live = "SELECT site, text FROM documents WHERE status != 'gone'"
    texts = [(site or "", text) for site, text in s.db.execute(live)]
    rows = {(a, b): n for a, b, n in s.db.execute("SELECT site, line, n_docs FROM site_lines WHERE n_docs > 0")}
    once = {k for (k,) in s.db.execute("SELECT key FROM site_lines_once")}
    learned = s.learned()
    s.close()
    fresh = Counter((st, line) for st, text in texts for line in learnable_lines(text))
    assert {k: n for k, n in fresh.items() if n >= 2} == {k: n for k, n in rows.items() if n >= 2}
    assert all(fresh[k] == 1 for k, n in rows.items() if n == 1)
    assert once == {line_key(*k) for k, n in fresh.items() if n == 1 and k not in rows}
    assert len(once) >= 10  # the numbered lines of each page
    assert rows[("www.jbqx.cn", "本期提示:周末出行注意安全,带好雨具")] == 2
    assert "关注江北发布 获取更多资讯" in learned["www.jbqx.cn"]


def test_a_database_of_schema_18_keeps_its_index_and_attributions(crawl, tmp_path):
    """Migration 19 moves which documents the candidate index holds (and in which segment) and
    which wait to be attributed out of `documents` into tables of their own: a database scanned
    before it is rescanned with nothing to do, and a page added later is matched against its
    index, joins its story's cluster and is attributed."""
    from dedup.pipeline import scan

    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    with closing(Store(db)) as store:
        indexed = store.indexed()
        clusters = {r["path"]: r["cluster"] for r in store.export_rows()}
    assert indexed and len(set(clusters.values()) - {None}) >= 3
    # The database as schema 18 left it: two columns of `documents` and their partial index, the
    # insert triggers that migration 20 drops, and no text keys (migration 23).
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript("""
        BEGIN;
        DROP INDEX documents_not_ok;
        ALTER TABLE documents DROP COLUMN text_key;
        CREATE INDEX documents_not_ok ON documents(status, id) WHERE status != 'ok';
        DROP INDEX verdicts_hi_kind;
        CREATE INDEX verdicts_hi ON verdicts(hi);
        CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
            INSERT INTO documents_fts (rowid, title, original_title) VALUES (new.id, new.title, new.original_title);
        END;
        CREATE TRIGGER site_tallies_insert AFTER INSERT ON documents WHEN new.status != 'gone' BEGIN
            INSERT OR IGNORE INTO site_tally_added (document_id)
            SELECT new.id WHERE EXISTS (SELECT 1 FROM site_tallies WHERE site = COALESCE(new.site, ''));
        END;
        DROP TRIGGER documents_bookkeeping_delete;
        DROP INDEX documents_index_rows;
        ALTER TABLE documents ADD COLUMN index_segment INTEGER;
        ALTER TABLE documents ADD COLUMN attributed INTEGER;
        UPDATE documents SET index_segment = (SELECT segment FROM indexed_documents WHERE document_id = documents.id);
        UPDATE documents SET attributed = 1 WHERE id NOT IN (SELECT document_id FROM unattributed);
        DROP TABLE indexed_documents;
        DROP TABLE unattributed;
        CREATE INDEX documents_unattributed ON documents(id) WHERE status = 'ok' AND attributed IS NULL;
        PRAGMA user_version = 18;
        COMMIT;
    """)
    conn.close()

    again = scan(crawl, db, Params(), jobs=1)
    assert (again.files_read, again.documents_regrouped, again.clusters_attributed) == (0, 0, 0)
    with closing(Store(db)) as store:
        assert store.indexed() == indexed and store.unattributed() == set()
        assert {r["path"]: r["cluster"] for r in store.export_rows()} == clusters
        columns = {r[1] for r in store.conn.execute("PRAGMA table_info(documents)")}
        triggers = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert not {"index_segment", "attributed"} & columns
    assert not {"documents_fts_insert", "site_tallies_insert", "documents_unattributed_insert"} & triggers

    drill = "www.sohu.com/2023/0310/657034118_120986420.html"
    page = (crawl / drill).read_text(encoding="utf-8")
    cut = re.sub(r"<p>副市长.*?</p>", "", page)  # a copy cut short: other content, the same story
    assert cut != page
    copy = crawl / "www.farm-news.net/2023/0311/drill.html"
    copy.parent.mkdir(parents=True)
    copy.write_text(cut, encoding="utf-8")
    third = scan(crawl, db, Params(), jobs=1)
    assert third.files_new == 1 and third.pairs_verified >= 1
    with closing(Store(db)) as store:
        rows = {r["path"]: r for r in store.export_rows()}
        assert store.unattributed() == set() and store.indexed().keys() >= indexed.keys()
    assert rows["www.farm-news.net/2023/0311/drill.html"]["cluster"] == rows[drill]["cluster"] is not None


def test_line_keys_open_with_the_site_and_a_database_keyed_whole_stays_so(tmp_path):
    """Schema migration 24: site_lines_once keys open with a hash of their site (a batch of one
    site's pages touches a few pages of the table); a database holding keys made the old way
    (the whole (site, line) hashed) is marked by the migration and goes on making them, so a line
    its one page had is still found when a second page carries it."""
    from collections import Counter

    from dedup.normalize import learnable_lines
    from dedup.pipeline import scan
    from dedup.store.files import SITE_KEY_BITS, line_key, whole_line_key

    crawl = tmp_path / "crawl"
    site = crawl / "www.xsxw.gov.cn"
    site.mkdir(parents=True)
    shared = "本周六上午九时在文化广场举行义诊活动"

    def page(i: int, extra: str) -> str:
        return (
            f"新市镇卫生院第{i}期健康简讯\n{extra}\n责任编辑：周雨桐\n"
            f"新市镇卫生院第{i}期健康简讯发布，内容包括秋冬季流感预防、老年人慢病随访安排和家庭医生签约服务，"
            f"请居民关注，编号XS{i * 41}。\n"
        )

    (site / "1.txt").write_text(page(1, shared), encoding="utf-8")
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)

    def once_lines(conn) -> set[tuple[str, str]]:
        counts = Counter(
            (st or "", line)
            for st, text in conn.execute("SELECT site, text FROM documents WHERE status != 'gone'")
            for line in learnable_lines(text)
        )
        rows = {(a, b) for a, b in conn.execute("SELECT site, line FROM site_lines")}
        return {k for k, n in counts.items() if n == 1 and k not in rows}

    conn = sqlite3.connect(db, isolation_level=None)
    lines = once_lines(conn)
    assert ("www.xsxw.gov.cn", shared) in lines
    keys = {k for (k,) in conn.execute("SELECT key FROM site_lines_once")}
    assert keys == {line_key(*k) for k in lines} != {whole_line_key(*k) for k in lines}
    assert len({k >> (64 - SITE_KEY_BITS) for k in keys}) == 1  # one site: one high part
    assert conn.execute("SELECT value FROM settings WHERE key = 'line_keys'").fetchall() == []
    # The database as a dedup before migration 24 left it: the same lines, keyed whole.
    conn.execute("DELETE FROM site_lines_once")
    conn.executemany("INSERT INTO site_lines_once (key) VALUES (?)", [(whole_line_key(*k),) for k in lines])
    conn.execute("PRAGMA user_version = 23")
    conn.close()

    (site / "2.txt").write_text(page(2, shared), encoding="utf-8")
    scan(crawl, db, Params(), jobs=1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM settings WHERE key = 'line_keys'").fetchall() == [("whole",)]
    assert conn.execute("SELECT n_docs FROM site_lines WHERE line = ?", [shared]).fetchall() == [(2,)]
    lines = once_lines(conn)
    assert ("www.xsxw.gov.cn", shared) not in lines and len(lines) == 2  # each page's numbered paragraph
    keys = {k for (k,) in conn.execute("SELECT key FROM site_lines_once")}
    conn.close()
    assert keys == {whole_line_key(*k) for k in lines}


def test_rows_written_keep_plain_values_and_store_lists_and_dicts_as_json(tmp_path):
    """store.results._values: the values of each column in order; lists and dicts as JSON, as
    sqlite-utils stores them, whichever rows of a column hold them; other values as they are."""
    from dedup.store.results import _values

    rows = [
        {"a": 1, "b": "上饶", "c": None, "d": b"\x00", "e": 0.5},
        {"a": 2, "b": ["上饶日报", "信江"], "c": {"k": 1}, "d": b"", "e": True},
    ]
    assert _values(rows, ("e", "a", "b", "c", "d")) == [
        (0.5, 1, "上饶", None, b"\x00"),
        (True, 2, '["上饶日报", "信江"]', '{"k": 1}', b""),
    ]
    assert _values(rows, ("a",)) == [(1,), (2,)]


def test_json_text_is_what_json_dumps_writes():
    """store.files.json_text, used for the lists saved with each document, gives json.dumps's text."""
    import json

    from dedup.store.files import json_text

    for value in ([], ["上饶日报", "新华社"], ["12.5", "3"], {"来源": ["信江"]}, (), "江北", None):
        assert json_text(value) == json.dumps(value, ensure_ascii=False)


def test_what_matching_reads_of_every_document_is_read_from_an_index(tmp_path, monkeypatch):
    """index_columns, read by every run that matches new texts, is answered from the covering index
    of migration 21, not from the ~3.5 KB rows of the table; its columns are the table's, a few ids
    at a time, and IndexState takes the first document of each content across those reads."""
    from dedup import candidates
    from dedup.store import index

    s = Store(tmp_path / "d.db")
    run = s.start_run("/x", Params())
    docs = [Document(path=f"f{i}.txt", file_path=f"f{i}.txt", kind="txt", text="甲乙" * 500) for i in range(5)]
    files = [FileOutcome(d.path, "txt", 1, 1.0, f"h{i}", "ok", None, [d], []) for i, d in enumerate(docs)]
    s.save_files(files, run, "fp")
    s.db.execute(
        "UPDATE documents SET status = 'ok', content_hash = 'c' || id, n_shingles = 10 * id, "
        "samples = x'0000000011111111'"
    )
    s.db.execute("UPDATE documents SET status = 'gone', content_hash = NULL, n_shingles = NULL WHERE id = 2")
    s.db.execute("UPDATE documents SET content_hash = 'c1' WHERE id = 4")  # an exact copy of 1
    s.db.execute("INSERT INTO indexed_documents (document_id, segment) VALUES (2, 7), (3, 7)")
    plan = " ".join(r[3] for r in s.db.execute("EXPLAIN QUERY PLAN " + INDEX_COLUMNS_SQL, (0, 10)))
    assert "USING COVERING INDEX documents_index_rows" in plan or "USING INDEX documents_index_rows" in plan
    (cols,) = s.index_columns()
    assert cols.ids.tolist() == [1, 2, 3, 4, 5]
    assert cols.content_hashes == ["c1", "", "c3", "c1", "c5"]
    assert (cols.n_shingles.tolist(), cols.n_samples.tolist()) == ([10, 0, 30, 40, 50], [2, 2, 2, 2, 2])
    assert (cols.segments.tolist(), cols.ok.tolist()) == ([0, 7, 7, 0, 0], [True, False, True, True, True])
    monkeypatch.setattr(index, "INDEX_COLUMNS_IDS", 2)  # ids [0, 2), [2, 4), [4, 6): 4 copies 1, read before
    assert [c.ids.tolist() for c in s.index_columns()] == [[1], [2, 3], [4, 5]]
    for ids_a_read in (2, 1):  # 1: the gone document's read holds it alone, with no hash
        monkeypatch.setattr(index, "INDEX_COLUMNS_IDS", ids_a_read)
        state = candidates.IndexState.read(s)
        assert state.reps.tolist() == [1, 3, 5]
        assert state.indexed.tolist() == [[2, 7], [3, 7]]
        assert state.texts.tolist() == [[1, 10, 2], [3, 30, 2], [4, 40, 2], [5, 50, 2]]
    assert [c.content_hashes for c in s.index_columns()] == [["c1"], [""], ["c3"], ["c1"], ["c5"]]
    assert sorted((t.doc_id, t.n_shingles, t.n_samples) for t in s.text_sizes()) == [
        (1, 10, 2), (3, 30, 2), (4, 40, 2), (5, 50, 2)
    ]  # fmt: skip
    reps = s.representatives()
    assert (reps.sizes, reps.copies) == ({1: 10, 3: 30, 5: 50}, {1: [4]})
    # The counts by status search the documents that are not 'ok' by their status.
    count = "SELECT count(*) FROM documents WHERE status != 'ok' AND status = ?"
    plan = " ".join(r[3] for r in s.db.execute("EXPLAIN QUERY PLAN " + count, ["gone"]))
    assert "documents_not_ok (status=?)" in plan
    assert s.stats()["documents"] == 4
    s.close()


def test_a_sites_live_pages_are_counted_from_indexes(tmp_path):
    """Learning a site's boilerplate counts its pages that are not gone (the share a line needs):
    all its pages from the site index, less its gone ones found by status, no table row read."""
    from dedup.store.signing import LIVE_PAGES

    s = Store(tmp_path / "d.db")
    run = s.start_run("/x", Params())
    docs = [
        Document(path=f"{site}/{i}.txt", file_path=f"{site}/{i}.txt", kind="txt", site=site, text="甲乙")
        for site, n in (("a.cn", 4), ("b.cn", 2))
        for i in range(n)
    ]
    files = [FileOutcome(d.path, "txt", 1, 1.0, f"h{i}", "ok", None, [d], []) for i, d in enumerate(docs)]
    s.save_files(files, run, "fp")
    s.mark_gone(["a.cn/0.txt", "a.cn/1.txt", "b.cn/0.txt"], run)
    assert (s._live_pages("a.cn"), s._live_pages("b.cn"), s._live_pages("c.cn")) == (2, 1, 0)
    plans = [" ".join(r[3] for r in s.db.execute("EXPLAIN QUERY PLAN " + q, ["a.cn"])) for q in LIVE_PAGES]
    assert "COVERING INDEX documents_site" in plans[0] and "documents_not_ok (status=?)" in plans[1]
    s.close()


def test_the_regroup_scope_reads_pairs_from_indexes_and_as_arrays(tmp_path):
    """Regrouping follows the copy pairs by their higher end from the index of migration 22 alone
    (their kind is in it), and keeps the pairs it read as one array; a pair of a kind the store
    does not know is refused when saved, not read back as another."""
    import numpy as np

    s = Store(tmp_path / "d.db")
    with s.write():
        s._insert_verdicts({
            (1, 2): (1, 2, 0.92, 0.95, "similar"),
            (2, 3): (3, 2, 0.31, 0.9, "contained"),
            (3, 4): None,  # verified: not copies
            (4, 5): (5, 4, 0.2, 0.85, "aligned"),
        })  # fmt: skip
    plan = " ".join(
        r[3]
        for r in s.db.execute("EXPLAIN QUERY PLAN SELECT lo FROM verdicts WHERE kind IS NOT NULL AND hi IN (?)", [2])
    )
    assert "COVERING INDEX verdicts_hi_kind" in plan
    read = s.regroup_scope({3})
    assert read.ids == {1, 2, 3}  # 3-4 is no copy pair: 4 and 5 stay out
    assert sorted(read.edges.rows_among(np.array([1, 2, 3]))) == [
        (1, 2, 0.92, 0.95, "similar"),
        (3, 2, 0.31, 0.9, "contained"),
    ]
    assert list(read.edges.rows_among(np.array([1, 3]))) == []
    assert s.regroup_scope({5}).edges.pairs.tolist() == [(5, 4, 0.2, 0.85, 2)]
    with pytest.raises(ValueError, match="not in store.index.PAIR_KINDS"), s.write():
        s._insert_verdicts({(6, 7): (6, 7, 0.9, 0.9, "paraphrase")})
    s.close()


def test_packed_anchors_unpack_to_the_hashes_that_pack_the_same():
    from dedup.store.files import pack_anchors, unpack_anchors

    anchors = [(5, 7), (2**32 - 1, 2**32 - 2), (5, 7), (0, 1)]
    blob = pack_anchors(anchors)
    assert unpack_anchors(blob) == sorted(set(anchors))
    assert pack_anchors(unpack_anchors(blob)) == blob
