"""A crawl that arrives night by night gives the answer a single scan of it gives, and a rescan
verifies only the pairs it has not verified before."""

import json
import shutil
import sqlite3
from collections import defaultdict
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from dedup.attribute import SiteTally
from dedup.models import Params
from dedup.pipeline import scan
from dedup.store import Store
from tests.conftest import SAMPLE


def canonical(db: Path) -> dict[str, tuple]:
    """path -> (the cluster named by its smallest member, original, role, all its clusters so
    named): cluster numbers are row ids, given in the order documents arrived."""
    store = Store(db, readonly=True)
    rows = list(store.export_rows())
    store.close()
    name: dict[int, str] = {}
    for r in sorted(rows, key=lambda r: r["path"]):
        for c in [r["cluster"], *r["contains"]]:
            if c is not None:
                name.setdefault(c, r["path"])
    out = {}
    for r in rows:
        stories = sorted(name[c] for c in [r["cluster"], *r["contains"]] if c is not None)
        if r["role"] == "compilation":  # which of its stories is `cluster` follows the ids: a set
            out[r["path"]] = (None, r["original"], r["role"], stories)
        else:
            out[r["path"]] = (name.get(r["cluster"]), r["original"], r["role"], stories)
    return out


def recount(store) -> dict[str, str]:
    """Every site's tally counted now from its pages."""
    tallies: dict[str, SiteTally] = defaultdict(SiteTally)
    for page in store.site_pages():
        tallies[page.site].add(page.credits, page.boilerplate, page.site_names)
    return {site: t.to_json() for site, t in tallies.items()}


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLE.rglob("*") if p.is_file() and p.suffix != ".md")


def test_a_crawl_scanned_in_slices_equals_one_scan(tmp_path):
    whole = tmp_path / "whole.db"
    crawl = tmp_path / "crawl"
    shutil.copytree(SAMPLE, crawl, ignore=shutil.ignore_patterns("*.md"))
    scan(crawl, whole, Params(), jobs=1)

    # The same files arriving in three nights, newest pages first.
    growing = tmp_path / "growing"
    sliced = tmp_path / "sliced.db"
    files = sorted(sample_files(), key=lambda p: p.name, reverse=True)
    for night in range(3):
        for f in files[night::3]:
            dest = growing / f.relative_to(SAMPLE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        scan(growing, sliced, Params(), jobs=1)
    assert canonical(sliced) == canonical(whole)
    for db in (whole, sliced):  # SQLite does not check them as scans write (dbfile.ENFORCE_FOREIGN_KEYS)
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_rescan_verifies_only_the_new_pairs(crawl, tmp_path):
    """The new page is matched against the stored index: only its own pairs are looked at, and
    the clusters equal a fresh scan's."""
    import sqlite3

    db = tmp_path / "d.db"
    repost = crawl / "www.163.com/2023/0312/HVQ3K9QF05149C8E.html"
    kept = repost.read_bytes()
    repost.unlink()
    first = scan(crawl, db, Params(), jobs=1)
    assert first.pairs_verified > 0 and first.pairs_known == 0
    repost.write_bytes(kept)
    again = scan(crawl, db, Params(), jobs=1)
    assert 0 < again.pairs_verified < first.pairs_verified
    # Every file seen: those as stored kept without being read, the new one read.
    assert again.files_seen == first.files_seen + 1 and again.files_unchanged == first.files_seen
    assert again.files_new == again.files_read == 1 and again.files_changed == again.files_gone == 0
    with closing(sqlite3.connect(db)) as conn:
        (new_id,) = conn.execute(
            "SELECT id FROM documents WHERE path = 'www.163.com/2023/0312/HVQ3K9QF05149C8E.html'"
        ).fetchone()
        pairs = conn.execute("SELECT lo, hi FROM verdicts").fetchall()
    assert len(pairs) == first.pairs_verified + again.pairs_verified
    assert sum(1 for p in pairs if new_id in p) == again.pairs_verified
    fresh = tmp_path / "fresh.db"
    scan(crawl, fresh, Params(), jobs=1)
    assert canonical(db) == canonical(fresh)


def test_a_rescan_walked_in_two_processes_plans_what_one_walk_plans(crawl, tmp_path, monkeypatch, caplog):
    """A rescan walks the crawl's folders in this process and a forked helper at once
    (ingest._walk_in_two): its plan (files to read, kept, gone, problems, counts) is the one a
    single walk makes, and when the helper fails the folders it took are walked here. What the
    scan gives this process to do meanwhile (preload_signing) runs once, here, once the helper is
    started and before this process walks a folder."""
    import multiprocessing
    import os

    from dedup import ingest
    from dedup.models import RunSummary, ScanOptions

    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    (crawl / "www.163.com/2023/0312/HVQ3K9QF05149C8E.html").unlink()  # gone
    changed = next((crawl / "www.sohu.com").rglob("*.html"))
    changed.write_text(changed.read_text(encoding="utf-8") + "<p>更正</p>", encoding="utf-8")
    (crawl / "www.qcnews.cn/new.html").write_text("<html><body><p>新的一页</p></body></html>", encoding="utf-8")
    (crawl / "www.qcnews.cn/logo.png").write_bytes(b"\x89PNG")
    os.mkfifo(crawl / "mp.weixin.qq.com/pipe.html")

    meanwhile: list[tuple[int, int]] = []  # (process, folders walked here) when called

    def busy_here():
        meanwhile.append((os.getpid(), len(walked_here)))

    def plan(split: bool):
        summary = RunSummary(run_id=0, root=str(crawl))
        with closing(Store(db)) as store:
            got = ingest.plan_files(store, crawl, ScanOptions(), summary, reread_all=False, walk_in_two=split,
                                    meanwhile=busy_here)  # fmt: skip
        return (sorted(sf.path for sf in got.todo), sorted(got.unchanged), got.unsupported, got.problems,
                sorted(got.gone), summary.files_seen, summary.files_new, summary.files_changed)  # fmt: skip

    one = plan(False)
    assert meanwhile == []  # one walk: nothing runs beside it
    assert one[0] == sorted([changed.relative_to(crawl).as_posix(), "www.qcnews.cn/new.html"])
    assert one[4] == ["www.163.com/2023/0312/HVQ3K9QF05149C8E.html"] and len(one[3]) == 1 and one[2]
    parts: list[str] = []
    list(ingest.discover_files(crawl, subdirs=parts))
    assert len(parts) >= ingest.SPLIT_WALK_MIN_DIRS
    here, real, walked_here = os.getpid(), ingest._walk_part, []
    helper_fails = False
    # Each walker, once it holds a folder, waits until the other holds one: both walk some folders
    # however the two processes are scheduled (a loaded machine once let this one take them all).
    started = {
        "here": multiprocessing.get_context("fork").Event(),
        "helper": multiprocessing.get_context("fork").Event(),
    }

    def walk_part(root, part, *a):
        me, other = ("here", "helper") if os.getpid() == here else ("helper", "here")
        first = not started[me].is_set()
        started[me].set()
        if me == "helper" and helper_fails:
            raise OSError("the helper's walk failed")
        if first:
            started[other].wait(30)
        if me == "here":
            walked_here.append(part)
        return real(root, part, *a)

    monkeypatch.setattr(ingest, "_walk_part", walk_part)
    assert plan(True) == one
    assert 0 < len(walked_here) < len(parts)  # the helper walked the others
    assert meanwhile == [(here, 0)]
    meanwhile.clear()
    walked_here.clear()
    helper_fails = True
    for event in started.values():
        event.clear()
    assert plan(True) == one
    assert len(walked_here) == len(parts)  # its folders walked here after it failed
    assert "walking the crawl in a second process failed" in caplog.text


def test_a_first_scan_walks_in_two_processes_too(crawl, tmp_path, monkeypatch):
    """A first scan, and one that reads every file again, split their walk as a rescan does
    (no file kept, none stat'ed twice): the same files to read, problems and counts as one walk,
    with the helper walking some of the folders and what the scan gives this process to do
    meanwhile run here."""
    import multiprocessing
    import os

    from dedup import ingest
    from dedup.models import RunSummary, ScanOptions

    (crawl / "www.qcnews.cn/logo.png").write_bytes(b"\x89PNG")
    os.mkfifo(crawl / "mp.weixin.qq.com/pipe.html")
    here, real, walked_here, meanwhile = os.getpid(), ingest._walk_part, [], []
    stat_calls: list[str] = []
    real_unchanged = ingest.discover_files.__globals__["_unchanged"]
    parts: list[str] = []
    list(ingest.discover_files(crawl, subdirs=parts))
    fork = multiprocessing.get_context("fork")
    started = {"here": fork.Event(), "helper": fork.Event()}

    def walk_part(root, part, *a):
        # Each walker, once it holds a folder, waits until the other holds one (as in the test above).
        me, other = ("here", "helper") if os.getpid() == here else ("helper", "here")
        first = not started[me].is_set()
        started[me].set()
        if first:
            started[other].wait(30)
        if me == "here":
            walked_here.append(part)
        return real(root, part, *a)

    def unchanged(*a):
        stat_calls.append(a[1])
        return real_unchanged(*a)

    monkeypatch.setattr(ingest, "_walk_part", walk_part)
    monkeypatch.setitem(ingest.discover_files.__globals__, "_unchanged", unchanged)

    def plan(db, split: bool, reread_all: bool):
        summary = RunSummary(run_id=0, root=str(crawl))
        with closing(Store(db)) as store:
            got = ingest.plan_files(store, crawl, ScanOptions(), summary, reread_all=reread_all, walk_in_two=split,
                                    meanwhile=lambda: meanwhile.append(os.getpid()))  # fmt: skip
        return ([sf.path for sf in got.todo], got.unchanged, got.unsupported, got.problems, summary.files_seen,
                summary.files_new)  # fmt: skip

    empty = tmp_path / "first.db"
    one = plan(empty, False, False)
    assert one[0] and not one[1] and one[2] and len(one[3]) == 1 and one[5] == len(one[0])
    assert plan(empty, True, False) == one
    assert 0 < len(walked_here) < len(parts) and meanwhile == [here]
    assert stat_calls == []  # no test of unchanged files: each file stat'ed once
    scanned = tmp_path / "scanned.db"
    scan(crawl, scanned, Params(), jobs=1)
    walked_here.clear()
    for event in started.values():
        event.clear()
    again = plan(scanned, True, True)  # every file read again: all of them to read
    assert sorted(again[0]) == sorted(one[0]) and again[1] == [] and stat_calls == []
    assert 0 < len(walked_here) < len(parts)


def test_documents_a_changed_file_no_longer_holds_are_deleted_with_what_refers_to_them(crawl, tmp_path):
    """A feed that loses a record and a page that loses its article text (a site's new layout):
    their documents are deleted, with their memberships, evidence and windows, and the clusters
    and memberships that named them as original or parent no longer do. No reference is left
    dangling (SQLite does not check them while a scan writes: dbfile.ENFORCE_FOREIGN_KEYS), the
    short lines' counts equal a count of the live pages, and the clusters are a fresh scan's."""
    from collections import Counter

    from dedup.normalize import learnable_lines
    from dedup.store.files import line_key
    from tests.conftest import TREES

    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    with closing(sqlite3.connect(db)) as conn:
        (trees_id,) = conn.execute("SELECT id FROM documents WHERE path = ?", (TREES,)).fetchone()
        assert conn.execute("SELECT count(*) FROM clusters WHERE original_id = ?", (trees_id,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM memberships WHERE parent_id = ?", (trees_id,)).fetchone()[0] >= 1
        assert conn.execute("SELECT count(*) FROM evidence WHERE document_id = ?", (trees_id,)).fetchone()[0] >= 1
    feed = crawl / "feeds/crawl-20230315.jsonl"
    records = feed.read_text(encoding="utf-8").splitlines()
    feed.write_text("\n".join(records[:2]) + "\n", encoding="utf-8")  # its third record gone
    (crawl / TREES).write_text("<html><head><title>页面已更新</title></head><body></body></html>", encoding="utf-8")
    scan(crawl, db, Params(), jobs=1)

    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        paths = {p for (p,) in conn.execute("SELECT path FROM documents")}
        assert TREES not in paths and "feeds/crawl-20230315.jsonl#2" not in paths
        assert "feeds/crawl-20230315.jsonl#1" in paths
        for table, column in (("memberships", "document_id"), ("memberships", "parent_id"), ("evidence", "document_id"),
                              ("windows", "document_id"), ("clusters", "original_id")):  # fmt: skip
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", (trees_id,)).fetchone()[0] == 0
        texts = [(site or "", text) for site, text in conn.execute("SELECT site, text FROM documents")]
        rows = {(a, b): n for a, b, n in conn.execute("SELECT site, line, n_docs FROM site_lines WHERE n_docs > 0")}
        once = {k for (k,) in conn.execute("SELECT key FROM site_lines_once")}
    fresh_lines = Counter((site, line) for site, text in texts for line in learnable_lines(text))
    assert {k: n for k, n in fresh_lines.items() if n >= 2} == {k: n for k, n in rows.items() if n >= 2}
    assert once == {line_key(*k) for k, n in fresh_lines.items() if n == 1 and k not in rows}
    fresh = tmp_path / "fresh.db"
    scan(crawl, fresh, Params(), jobs=1)
    assert canonical(db) == canonical(fresh)


def test_cluster_history_records_what_each_run_did(crawl, tmp_path):
    import json
    import sqlite3

    from click.testing import CliRunner

    from dedup.cli import cli
    from tests.conftest import BUS, TREES

    db = tmp_path / "d.db"
    copy = crawl / "www.sohu.com/2023/0312/656912345_121118820.html"
    kept = copy.read_bytes()
    copy.unlink()
    scan(crawl, db, Params(), jobs=1)
    copy.write_bytes(kept)
    grown = scan(crawl, db, Params(), jobs=1)
    assert grown.clusters_grown == 1
    bus_before = {r["path"]: r for r in Store(db, readonly=True).export_rows()}[BUS]["cluster"]
    for path in ("www.163.com/2023/0310/HVKQ8E2M0514D8K2.html", "www.lvyewenda.com/2023/0314/q8812034.txt"):
        (crawl / path).unlink()
    scan(crawl, db, Params(), jobs=1)
    rows = {r["path"]: r for r in Store(db, readonly=True).export_rows()}
    trees = rows[TREES]["cluster"]
    shown = json.loads(CliRunner().invoke(cli, ["show", str(trees), "--db", str(db), "--json"]).stdout)
    assert [(h["run_id"], h["event"]) for h in shown["history"]] == [(1, "new"), (2, "grown")]
    assert shown["history"][1]["detail"] == "+1 document"
    conn = sqlite3.connect(db)
    run3 = conn.execute("SELECT cluster_id, event, detail FROM cluster_history WHERE run_id = 3").fetchall()
    assert run3 == [(bus_before, "shrunk", "-2 documents")]
    # The bus story lost two of its copies: the same cluster, shrunk (the original and the
    # compilation that carries it stay), not a new one.
    assert rows[BUS]["cluster"] == bus_before
    table = CliRunner().invoke(cli, ["show", str(trees), "--db", str(db)])
    assert table.exit_code == 0 and "history" in table.stdout and "grown" in table.stdout


def test_new_attribution_code_reattributes_every_cluster_without_verifying_pairs(tmp_path, crawl, monkeypatch):
    """A change to attribution (its wording, its rules) works every cluster's original out again;
    the verified pairs stand (no pair is verified again)."""
    import dedup.pipeline as pl

    db = tmp_path / "d.db"
    first = scan(crawl, db, Params())
    assert first.clusters >= 2 and first.pairs_verified > 0
    monkeypatch.setattr(pl, "ATTRIBUTE_VERSION", pl.ATTRIBUTE_VERSION + 1)
    again = scan(crawl, db, Params())
    assert again.pairs_verified == 0
    assert again.clusters_attributed == again.clusters == first.clusters
    assert any("attribution changed" in n for n in again.notes), again.notes
    third = scan(crawl, db, Params())
    assert third.clusters_attributed == 0 and not third.notes


def test_stored_site_tallies_are_those_a_fresh_count_gives(crawl, tmp_path):
    """A site's tally is kept between scans until one of its pages is added, removed or changes;
    after such rescans every stored tally equals a count of the site's pages made now, and a
    rescan of unchanged files counts no site again."""
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    page = crawl / "www.lvyewenda.com/2023/0314/q8812034.txt"
    gone = crawl / "www.sohu.com/2023/0312/656912345_121118820.html"
    page.write_text(page.read_text(encoding="utf-8") + "\n来源:测试日报\n", encoding="utf-8")
    gone.unlink()
    scan(crawl, db, Params(), jobs=1)
    with closing(Store(db, readonly=True)) as store:
        stored = store.site_tallies()
        assert stored == recount(store)
        assert json.loads(stored["www.sohu.com"])["n"] == 1  # one of its two pages is gone
        assert json.loads(stored["www.lvyewenda.com"])["credited"].get("测试日报") == 1
    with closing(Store(db)) as store:  # a tally the next scan must not recount: marked
        store.save_site_tallies({"www.qcnews.cn": stored["www.qcnews.cn"].replace('"n": ', '"n": 1000', 1)})
    page.write_text(page.read_text(encoding="utf-8") + "\n来源:另一日报\n", encoding="utf-8")
    third = scan(crawl, db, Params(), jobs=1)  # another site changed: sites are profiled again
    assert third.clusters_attributed > 0
    with closing(Store(db, readonly=True)) as store:
        tallies = store.site_tallies()
        assert '"n": 1000' in tallies["www.qcnews.cn"]  # not counted again: none of its pages changed
        assert json.loads(tallies["www.lvyewenda.com"])["credited"].get("另一日报") == 1


def test_a_page_added_to_a_site_is_added_to_its_stored_tally(crawl, tmp_path):
    """A new page joins its site's stored tally (the store queues it) instead of the site's pages
    being counted again: the tally is the one a fresh count gives, and a mark left in it stays;
    the queue is empty after the scan."""
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    site = "www.lvyewenda.com"
    with closing(Store(db)) as store:  # a mark a count of the site's pages would not keep
        marked = json.loads(store.site_tallies()[site])
        marked["n"] += 1000
        store.save_site_tallies({site: json.dumps(marked, ensure_ascii=False)})
    page = crawl / "www.lvyewenda.com/2023/0314/q8812034.txt"
    added = page.with_name("q8812099.txt")
    added.write_text(page.read_text(encoding="utf-8") + "\n来源:新增日报\n", encoding="utf-8")
    again = scan(crawl, db, Params(), jobs=1)
    assert again.files_new == 1 and again.clusters_attributed > 0
    with closing(Store(db, readonly=True)) as store:
        stored = json.loads(store.site_tallies()[site])
        fresh = json.loads(recount(store)[site])
        assert stored["n"] == fresh["n"] + 1000 == marked["n"] + 1
        assert {**stored, "n": 0} == {**fresh, "n": 0}
        assert stored["credited"]["新增日报"] == 1
        assert store.conn.execute("SELECT count(*) FROM site_tally_added").fetchone()[0] == 0
        others = {s: t for s, t in recount(store).items() if s != site}
        assert {s: json.loads(t) for s, t in others.items()} == {
            s: json.loads(t) for s, t in store.site_tallies().items() if s != site
        }
    added.unlink()  # a removed page drops its site's tally: counted again
    scan(crawl, db, Params(), jobs=1)
    with closing(Store(db, readonly=True)) as store:
        assert json.loads(store.site_tallies()[site]) == json.loads(recount(store)[site])


# A story of its own (no page of the sample crawl shares its wording): a component apart.
LIBRARY = (
    "青川县图书馆新馆今天正式对外开放，新馆位于城北文化中心，建筑面积约一万二千平方米，设有少儿阅览区、"
    "地方文献室和自助借还区，馆藏图书四十五万册。县文化和旅游局有关负责人介绍，新馆每周开放七十个小时，"
    "读者凭身份证即可免费办理借阅证，下一步还将在各乡镇设立二十个分馆，推动全民阅读走进基层。"
)


def test_a_clustering_saved_a_component_at_a_time_equals_one_piece(crawl, tmp_path, monkeypatch):
    """Clusters grouped, attributed and saved one connected component at a time (the slices a
    million-page scan is cut into, pipeline.CLUSTER_SLICE) are those of all at once, cluster ids
    included, over nights that add a page (a cluster grows), remove two (one shrinks) and put
    them back; and so are the runs' changes and the history they record."""
    import sqlite3

    import dedup.pipeline as pipeline

    copy = "www.sohu.com/2023/0312/656912345_121118820.html"
    removed = ["www.163.com/2023/0310/HVKQ8E2M0514D8K2.html", "www.lvyewenda.com/2023/0314/q8812034.txt"]
    # The story's publisher and two reposts: one more component, whose first page sorts between
    # those of the sample's stories (new clusters are numbered by component, not by first page).
    library = {
        "news.qingchuan.cn/2023/0316/58802.txt": f"青川县图书馆新馆开放\n2023-03-16 09:30 来源：青川新闻网\n{LIBRARY}",
        "www.sohu.com/2023/0316/657003311_1211.txt": f"县图书馆新馆开放了\n2023-03-16 搜狐号\n{LIBRARY}\n编辑：王丽",
        "www.lvyewenda.com/2023/0317/q8814410.txt": f"青川县图书馆新馆开放 发布于：青川县\n{LIBRARY}\n声明：来自网络",
    }  # fmt: skip
    late = "www.163.com/2023/0318/HW0L5N3D0514R9T1.txt"  # comes on night 2, goes with the others
    library[late] = f"青川：县图书馆新馆迎来首批读者\n2023-03-18 网易号\n{LIBRARY}"
    slice_counts: list[int] = []
    slices = pipeline._slices

    def counted(*args):
        out = slices(*args)
        slice_counts.append(len(out))
        return out

    monkeypatch.setattr(pipeline, "_slices", counted)

    def nights(slice_docs: int, name: str) -> tuple[list, list, list]:
        monkeypatch.setattr(pipeline, "CLUSTER_SLICE", slice_docs)
        root = tmp_path / name
        shutil.copytree(crawl, root)
        for path, text in library.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
        db = tmp_path / f"{name}.db"
        kept = {p: (root / p).read_bytes() for p in [copy, late, *removed]}
        (root / copy).unlink()
        (root / late).unlink()
        states, changes = [], []
        for night in range(4):
            if night == 1:
                for p in (copy, late):
                    (root / p).write_bytes(kept[p])
            elif night == 2:
                for p in (*removed, late):
                    (root / p).unlink()
            elif night == 3:
                for p in (*removed, late):
                    (root / p).write_bytes(kept[p])
            s = scan(root, db, Params(), jobs=1)
            changes.append((s.clusters_new, s.clusters_grown, s.clusters_merged, s.clusters_split,
                            s.originals_changed, s.clusters_attributed))  # fmt: skip
            with closing(Store(db, readonly=True)) as store:  # cluster ids as they are
                ids = sorted((r["path"], r["cluster"], tuple(sorted(r["contains"]))) for r in store.export_rows())
            states.append((canonical(db), ids))
        with closing(sqlite3.connect(db)) as conn:
            history = sorted(conn.execute("SELECT run_id, cluster_id, event, other_id, detail FROM cluster_history"))
        return states, changes, history

    whole = nights(1_000_000, "whole")
    assert set(slice_counts) == {1}
    slice_counts.clear()
    by_component = nights(1, "by_component")
    assert min(slice_counts) >= 2  # every night saved in parts
    assert by_component == whole
    assert len({c for _, c, _ in whole[0][0][1] if c is not None}) == 4  # the library story its own
    assert whole[1][1][1] == 2  # night 2: two clusters grew
    assert any(event == "shrunk" for _, _, event, _, _ in whole[2])


def test_a_run_stopped_before_its_clusters_are_saved_leaves_the_sites_as_they_were(crawl, tmp_path, monkeypatch):
    """Site profiles are saved with the clusters: a run stopped while attributing leaves both as
    they were, so the next run still sees which sites changed and re-attributes their clusters,
    ending where a run never stopped ends (reasons included)."""
    import dedup.attributing as attributing

    gone = ["www.163.com/2023/0310/HVKQ8E2M0514D8K2.html", "www.qcnews.cn/2023/0313/1000234801.html"]

    def reasons(db: Path) -> list:
        with closing(Store(db, readonly=True)) as store:
            rows = store.conn.execute("SELECT key, original_id, reasons FROM clusters WHERE active = 1 ORDER BY key")
            return [tuple(r) for r in rows]

    def nights(name: str, stop: bool) -> tuple:
        root = tmp_path / name
        shutil.copytree(crawl, root)
        db = tmp_path / f"{name}.db"
        scan(root, db, Params(), jobs=1)
        for p in gone:  # sites lose pages: their page counts, and so the reasons, change
            (root / p).unlink()
        if stop:
            with monkeypatch.context() as m:

                def stopped(*args, **kwargs):
                    raise KeyboardInterrupt

                m.setattr(attributing, "pick_original", stopped)
                with pytest.raises(KeyboardInterrupt):
                    scan(root, db, Params(), jobs=1)
        scan(root, db, Params(), jobs=1)
        return canonical(db), reasons(db)

    stopped, straight = nights("stopped", True), nights("straight", False)
    assert stopped == straight


def reference_scope(db: Path, seeds: set[int]) -> set[int]:
    """regroup_scope worked out the slow way, from whole tables: the seeds closed under verified
    copy pairs, same content (documents 'ok') and membership of an active cluster."""
    with closing(sqlite3.connect(db)) as con:
        pairs = con.execute("SELECT lo, hi FROM verdicts WHERE kind IS NOT NULL").fetchall()
        docs = con.execute("SELECT id, content_hash, status FROM documents").fetchall()
        members = con.execute(
            "SELECT m.cluster_id, m.document_id FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
            "WHERE c.active = 1"
        ).fetchall()
    links: dict[int, set[int]] = defaultdict(set)
    for lo, hi in pairs:
        links[lo].add(hi)
        links[hi].add(lo)
    by_hash: dict[str, set[int]] = defaultdict(set)
    for d, h, status in docs:
        if h is not None and status == "ok":
            by_hash[h].add(d)
    for d, h, _ in docs:
        links[d] |= by_hash.get(h, set())
    by_cluster: dict[int, set[int]] = defaultdict(set)
    for c, d in members:
        by_cluster[c].add(d)
    for group in by_cluster.values():
        for d in group:
            links[d] |= group
    scope, todo = set(), list(seeds)
    while todo:
        d = todo.pop()
        if d not in scope:
            scope.add(d)
            todo.extend(links[d] - scope)
    return scope


def test_the_regroup_scope_follows_pairs_same_content_and_clusters(crawl, tmp_path):
    db = tmp_path / "d.db"
    # Exact copies of one bulletin on a mirror, one of them gone by the next night (not 'ok': it
    # keeps its content hash but joins nothing).
    page = crawl / "www.qcnews.cn/2023/0313/1000234801.html"
    (crawl / "mirror").mkdir()
    for name in ("a.html", "b.html", "c.html"):
        shutil.copy2(page, crawl / "mirror" / name)
    scan(crawl, db, Params(), jobs=1)
    (crawl / "mirror/c.html").unlink()
    scan(crawl, db, Params(), jobs=1)
    with closing(Store(db, readonly=True)) as store:
        ids = {path: d for d, path in store.db.execute("SELECT id, path FROM documents")}
        gone = ids["mirror/c.html"]
        assert store.db.execute("SELECT status FROM documents WHERE id = ?", [gone]).fetchone()[0] != "ok"
        reads = {d: store.regroup_scope({d}) for d in ids.values()}
        scopes = {d: read.ids for d, read in reads.items()}
        # What the closure read of the scope is what reading it again gives.
        for read in reads.values():
            assert (read.sizes, read.copies) == store.representatives(read.ids)
            assert read.current == store.active_memberships(read.ids)
            assert sorted(read.edges.rows_among(np.array(sorted(read.ids)))) == sorted(store.copy_edges(read.ids))
    assert {d: reference_scope(db, {d}) for d in ids.values()} == scopes
    copies = scopes[ids["mirror/a.html"]]
    assert {ids["mirror/b.html"], ids[str(page.relative_to(crawl))]} <= copies and gone not in copies
    assert len({frozenset(s) for s in scopes.values()}) > 2  # not one scope for everything
