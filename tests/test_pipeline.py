"""The Python API the CLI wraps: scan() on a crawl on disk."""

import json
import os
import random
import sqlite3
from contextlib import closing

import pytest
from click.testing import CliRunner

from dedup.cli import cli
from dedup.errors import DedupError
from dedup.models import Params
from dedup.pipeline import scan
from dedup.store import Store
from tests.test_cron import HANZI

STORY = (
    "青川市今天举行城市公共交通线路调整发布会，新开通的公交线路将连接高铁站与新区，全程约十八公里，"
    "沿途设置站点二十三个，首末班时间分别为早上六点半和晚上十点。市交通运输局有关负责人表示，"
    "新线路开通后将大大方便市民出行，同时缓解新区交通压力，下一步还将优化其他线路的站点布局。"
)


def test_short_documents_never_join(tmp_path):
    crawl = tmp_path / "c"
    (crawl / "a.cn").mkdir(parents=True)
    for i in range(2):
        (crawl / f"a.cn/short{i}.txt").write_text("简讯\n\n今天天气晴。\n", encoding="utf-8")
        (crawl / f"a.cn/long{i}.txt").write_text(f"标题\n\n{STORY}\n", encoding="utf-8")
    db = tmp_path / "d.db"
    summary = scan(crawl, db, Params(), jobs=1)
    assert summary.too_short == 2 and summary.clusters == 1
    rows = {r["path"]: r for r in Store(db, readonly=True).export_rows()}
    assert rows["a.cn/short0.txt"]["cluster"] is None and rows["a.cn/short0.txt"]["role"] == "too_short"
    assert rows["a.cn/short0.txt"]["original"] is False  # never compared: it claims nothing
    assert rows["a.cn/long0.txt"]["cluster"] == rows["a.cn/long1.txt"]["cluster"] is not None


def test_removed_files_leave_the_clusters(tmp_path):
    crawl = tmp_path / "c"
    (crawl / "a.cn").mkdir(parents=True)
    for i in range(3):
        (crawl / f"a.cn/{i}.txt").write_text(f"标题\n\n{STORY}\n", encoding="utf-8")
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    (crawl / "a.cn/2.txt").unlink()
    summary = scan(crawl, db, Params(), jobs=1)
    assert summary.documents == 2
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM files WHERE path = 'a.cn/2.txt'").fetchone()[0] == "gone"
    assert conn.execute("SELECT size FROM clusters WHERE active = 1").fetchall() == [(2,)]


def test_runs_are_recorded(tmp_path, crawl):
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=2)
    conn = sqlite3.connect(db)
    status, params = conn.execute("SELECT status, params FROM runs").fetchone()
    assert status == "done" and '"num_perm": 128' in params


def test_missing_root(tmp_path):
    with pytest.raises(DedupError, match="does not exist"):
        scan(tmp_path / "nope", tmp_path / "d.db", Params())


STORIES = [
    "市教育局今天召开全市中小学春季开学工作会议，部署校园安全、课后服务和教师培训等重点任务，要求各校在开学前完成安全隐患排查。",
    "市农业农村局组织农技专家深入田间地头，指导农户开展春耕备耕，今年全市计划播种早稻面积比去年增加一成左右。",
    "市卫生健康委发布通知，全市二级以上医院将推出夜间门诊服务，覆盖儿科、内科等常见科室，方便上班族就医。",
    "市文化广电旅游局推出春季赏花旅游线路十条，串联全市主要景区和乡村旅游点，并同步发布文明旅游倡议。",
    "市生态环境局通报一季度空气质量情况，全市优良天数比例同比提高，细颗粒物平均浓度继续下降。",
    "市住房和城乡建设局启动老旧小区改造项目，今年计划改造小区四十个，涉及居民一万余户，重点解决加装电梯等问题。",
]
AD = "【推广】关注本站公众号，每天推送本地新鲜资讯，扫码即可领取精美礼品一份！"


def test_boilerplate_learned_from_the_crawl(tmp_path):
    crawl = tmp_path / "c"
    (crawl / "www.some-portal.cn").mkdir(parents=True)
    for i, story in enumerate(STORIES):
        text = f"标题{i}\n\n{story * 2}\n{AD}\n"
        (crawl / f"www.some-portal.cn/{i}.txt").write_text(text, encoding="utf-8")
    db = tmp_path / "d.db"
    summary = scan(crawl, db, Params(), jobs=1)
    assert summary.boilerplate_sites_changed == 1
    store = Store(db, readonly=True)
    lines = [r["line"] for r in store.learned_rows("www.some-portal.cn")]
    assert lines == ["【推广】关注本站公众号,每天推送本地新鲜资讯,扫码即可领取精美礼品一份!"]
    boiler = json.loads(
        store.db.execute("SELECT boilerplate FROM documents WHERE path = 'www.some-portal.cn/0.txt'").fetchone()[0]
    )
    assert boiler == lines
    store.close()
    # Six stories that share only the ad are not copies of each other.
    assert summary.clusters == 0
    r = CliRunner().invoke(cli, ["boilerplate", "--db", str(db)])
    assert r.exit_code == 0 and "www.some-portal.cn\t6\t100%\t【推广】" in r.output
    # The words stored at signing are those verification would make of the text (learned lines out).
    from dedup.normalize import load_patterns
    from dedup.pipeline import compared_words
    from dedup.shingle import unpack_words

    store = Store(db, readonly=True)
    rows = store.db.execute("SELECT site, text, words FROM documents").fetchall()
    assert len(rows) == len(STORIES) and all(w for _, _, w in rows)
    for site, text, words in rows:
        assert "推广" not in "".join(unpack_words(words))
        assert unpack_words(words) == compared_words(site, text, load_patterns(None), store.learned())
    store.close()


PROMO = "【活动】本站读者节期间订阅电子版，即可参加抽奖赢取本地景区年票一张！"


def _portal_page(i: int, extra: str = "") -> str:
    # Two of the six stories, in an order of their own: 30 pages that are not all copies.
    a, b = STORIES[i % 6], STORIES[(i // 6 + i + 1) % 6]
    return f"标题{i}\n\n{a}{b}\n{extra}{AD}\n"


def test_pages_of_a_settled_site_are_signed_as_they_are_read(tmp_path):
    """A rescan signs the new pages of a site with enough stored pages as it reads them, with its
    learned lines; pages that carry a line learned only after the read are signed again. Either
    way the stored words and signatures are those of a single scan of the whole crawl."""
    from dedup.ingest import SIGN_AT_READ_MIN_PAGES
    from dedup.normalize import load_patterns
    from dedup.pipeline import compared_words
    from dedup.shingle import unpack_words

    crawl = tmp_path / "c"
    site = crawl / "www.some-portal.cn"
    site.mkdir(parents=True)
    first = SIGN_AT_READ_MIN_PAGES + 2
    for i in range(first):
        (site / f"{i}.txt").write_text(_portal_page(i), encoding="utf-8")
    (crawl / "www.small.cn").mkdir()
    (crawl / "www.small.cn/0.txt").write_text(_portal_page(0), encoding="utf-8")
    db = tmp_path / "d.db"
    night1 = scan(crawl, db, Params(), jobs=1)
    assert night1.documents_signed_read == 0 and night1.documents_signed == first + 1  # a first scan waits

    # Night 2: two pages with the learned ad only (one long enough for windows), six with a
    # promotion that six pages of 30 make learned (20 %), one page of the small site (too few
    # pages: it waits for learning).
    roundup = "".join(f"{k}、{story}\n" for k, story in enumerate(STORIES * 3))
    (site / f"{first}.txt").write_text(_portal_page(first, roundup), encoding="utf-8")
    (site / f"{first + 1}.txt").write_text(_portal_page(first + 1), encoding="utf-8")
    for i in range(first + 2, first + 8):
        (site / f"{i}.txt").write_text(_portal_page(i, PROMO + "\n"), encoding="utf-8")
    (crawl / "www.small.cn/1.txt").write_text(_portal_page(1), encoding="utf-8")
    night2 = scan(crawl, db, Params(), jobs=2)
    assert night2.documents_signed_read == 8
    assert night2.documents_signed == 1 + 6  # the small site's page; the six that carry the new line

    store = Store(db, readonly=True)
    learned = store.learned()
    assert len(learned["www.some-portal.cn"]) == 2
    rows = store.db.execute("SELECT path, site, text, words, boilerplate, status FROM documents").fetchall()
    for path, site_name, text, words, boilerplate, status in rows:
        assert status == "ok", path
        assert unpack_words(words) == compared_words(site_name, text, load_patterns(None), learned), path
        assert ("活动" in boilerplate) == ("活动" in text), path
    store.close()

    # A single scan of the whole crawl stores the same words, signatures and windows.
    def signed(path):
        with sqlite3.connect(path) as conn:
            return {
                r[0]: r[1:]
                for r in conn.execute(
                    "SELECT d.path, d.words, d.signature, d.samples, d.anchors, d.numbers, d.credits, "
                    "(SELECT group_concat(hex(w.signature)) FROM windows w WHERE w.document_id = d.id) "
                    "FROM documents d"
                )
            }

    once = tmp_path / "once.db"
    scan(crawl, once, Params(), jobs=1)
    assert signed(db) == signed(once)
    assert signed(db)[f"www.some-portal.cn/{first}.txt"][-1]  # its windows were compared too


def test_a_large_file_signs_only_part_of_its_records_as_it_is_read(tmp_path, monkeypatch):
    """A crawler's .jsonl file can hold tens of thousands of records: a task signs at most
    SIGN_AT_READ_MAX_DOCS of them as read, the rest in the sign stage, with the same result."""
    import dedup.ingest as ingest

    monkeypatch.setattr(ingest, "SIGN_AT_READ_MAX_DOCS", 3)  # the workers are forked: they see it
    crawl = tmp_path / "c"
    (crawl / "www.some-portal.cn").mkdir(parents=True)
    for i in range(ingest.SIGN_AT_READ_MIN_PAGES):
        (crawl / f"www.some-portal.cn/{i}.txt").write_text(_portal_page(i), encoding="utf-8")
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    records = [
        {"url": f"https://www.some-portal.cn/feed/{i}.html", "title": f"要闻{i}",
         "content": _portal_page(i + 40).split("\n", 2)[2]}
        for i in range(7)
    ]  # fmt: skip
    (crawl / "feed.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                      encoding="utf-8")  # fmt: skip
    night2 = scan(crawl, db, Params(), jobs=2)
    assert night2.documents_new == 7 and night2.documents_signed_read == 3 and night2.documents_signed == 4

    with sqlite3.connect(db) as conn:
        grown = dict(conn.execute("SELECT path, words FROM documents"))
    once = tmp_path / "once.db"
    scan(crawl, once, Params(), jobs=1)
    with sqlite3.connect(once) as conn:
        assert dict(conn.execute("SELECT path, words FROM documents")) == grown


def test_an_interrupted_scan_is_finished_by_the_next(tmp_path, crawl, monkeypatch):
    import dedup.pipeline as pl

    db = tmp_path / "d.db"

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pl, "sign_pending", crash)
    with pytest.raises(KeyboardInterrupt):
        scan(crawl, db, Params(), jobs=1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
    assert conn.execute("SELECT count(*) FROM documents WHERE status = 'pending'").fetchone()[0] == 14
    monkeypatch.undo()
    summary = scan(crawl, db, Params(), jobs=1)
    assert summary.files_new == 0 and summary.clusters == 3
    assert conn.execute("SELECT count(*) FROM documents WHERE status = 'pending'").fetchone()[0] == 0


def _index_schema(db) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return sorted(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))


def test_a_first_scan_fills_the_documents_table_without_the_deferred_indexes(tmp_path, crawl, monkeypatch):
    """A first scan reads its files without the indexes that saving every document would move an
    entry of (schema.DEFERRED_INDEXES), signs with the one it selects documents by, and leaves the
    indexes a fresh database has; a rescan keeps them all. A first scan that fails makes them again,
    and one killed before it could leaves them to the next scan."""
    import dedup.pipeline as pl
    from dedup.store.schema import DEFERRED_INDEXES

    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    seen: dict[str, set[str]] = {}

    def watched(stage, real):
        def run(store, *args, **kwargs):
            seen[stage] = {name for name in DEFERRED_INDEXES if store.has_index(name)}
            return real(store, *args, **kwargs)

        return run

    monkeypatch.setattr(pl, "read_files", watched("read", pl.read_files))
    monkeypatch.setattr(pl, "sign_pending", watched("sign", pl.sign_pending))
    db = tmp_path / "d.db"
    first = scan(crawl, db, Params(), jobs=1)
    assert seen == {"read": set(), "sign": {"documents_not_ok"}}
    assert _index_schema(db) == _index_schema(fresh)
    with closing(Store(db)) as store:
        clusters = {r["path"]: r["cluster"] for r in store.export_rows()}
        assert first.clusters == 3 and len(clusters) == 14
        rows = list(store.export_rows())
    # The same rows as a first scan that keeps its indexes throughout.
    with monkeypatch.context() as m:
        m.setattr(Store, "is_empty", lambda self: False)
        kept = tmp_path / "kept.db"
        scan(crawl, kept, Params(), jobs=1)
    assert seen == {"read": set(DEFERRED_INDEXES), "sign": set(DEFERRED_INDEXES)}
    with closing(Store(kept)) as store:
        assert list(store.export_rows()) == rows

    # A rescan, here with a new copy of a story, keeps every index while it saves.
    copy = crawl / "www.qcnews.cn/2023/0312/1000234567.html"
    (crawl / "www.copy.cn").mkdir()
    (crawl / "www.copy.cn/1.html").write_bytes(copy.read_bytes())
    seen.clear()
    again = scan(crawl, db, Params(), jobs=1)
    assert again.files_new == 1 and seen == {"read": set(DEFERRED_INDEXES), "sign": set(DEFERRED_INDEXES)}
    assert _index_schema(db) == _index_schema(fresh)

    # Killed while it filled the table (the indexes dropped, never made again): the next scan makes them.
    with closing(Store(db)) as store:
        store.drop_deferred_indexes()
        hashes = {h for (h,) in store.conn.execute("SELECT content_hash FROM documents WHERE status = 'ok'")}
        assert hashes and store.signed_texts(hashes) == {}  # no search of every row without it
    scan(crawl, db, Params(), jobs=1)
    assert _index_schema(db) == _index_schema(fresh)
    with closing(Store(db)) as store:
        assert set(store.signed_texts(hashes)) == hashes
        assert {r["path"]: r["cluster"] for r in store.export_rows() if r["path"] in clusters} == clusters

    # A first scan that fails while signing makes them again before it reports the failure.
    def fails(*args, **kwargs):
        raise RuntimeError("signing broke")

    monkeypatch.setattr(pl, "sign_pending", fails)
    other = tmp_path / "other.db"
    with pytest.raises(RuntimeError, match="signing broke"):
        scan(crawl, other, Params(), jobs=1)
    assert _index_schema(other) == _index_schema(fresh)


def test_yuan_biaoti_reaches_attribution(tmp_path):
    crawl = tmp_path / "c"
    (crawl / "www.a-daily.cn").mkdir(parents=True)
    (crawl / "www.b-news.cn").mkdir(parents=True)
    (crawl / "www.a-daily.cn/1.txt").write_text(f"2023-07-03 10:00\n市区新开公交线路\n\n{STORY}\n", encoding="utf-8")
    # A retitled copy with an earlier (skewed) clock that names the original title.
    (crawl / "www.b-news.cn/1.txt").write_text(
        f"2023-07-03 08:00\n好消息！出行更方便了\n\n原标题：市区新开公交线路\n{STORY}\n", encoding="utf-8"
    )
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    rows = {r["path"]: r for r in Store(db, readonly=True).export_rows()}
    assert rows["www.a-daily.cn/1.txt"]["original"] is True
    assert rows["www.b-news.cn/1.txt"]["original"] is False


def test_a_touched_but_unchanged_file_is_not_read_again(tmp_path, crawl):
    import os

    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    page = crawl / "www.qcnews.cn/2023/0312/1000234567.html"
    os.utime(page, (page.stat().st_atime, page.stat().st_mtime + 60))
    summary = scan(crawl, db, Params(), jobs=1)
    assert summary.files_changed == summary.files_read == 1 and summary.documents_new == 0
    assert "cluster" not in summary.stage_seconds and summary.clusters == 3


def test_attribution_in_slices_gives_the_same_clusters(tmp_path, crawl, monkeypatch):
    """Attribution reads its documents' metadata a slice of clusters at a time; one cluster a slice
    must give what one slice of all of them gives."""
    import dedup.attributing as at

    scan(crawl, tmp_path / "whole.db", Params())
    monkeypatch.setattr(at, "ATTRIBUTE_SLICE", 1)
    scan(crawl, tmp_path / "sliced.db", Params())
    whole, sliced = _attributions(tmp_path / "whole.db"), _attributions(tmp_path / "sliced.db")
    assert sum(1 for r in whole if r["role"] == "original") >= 2
    assert sliced == whole


def _attributions(db) -> list[dict]:
    keys = ("path", "cluster", "original", "role", "parent_id")
    return [{k: r[k] for k in keys} for r in Store(db, readonly=True).export_rows()]


def _cluster_rows(db) -> list[tuple]:
    """Every active cluster as saved: its original, why, and its evidence."""
    conn = sqlite3.connect(db)
    try:
        clusters = conn.execute(
            "SELECT id, key, size, title, original_id, external_source, confidence, reasons, first_published, sites "
            "FROM clusters WHERE active = 1 ORDER BY id"
        ).fetchall()
        evidence = conn.execute("SELECT * FROM evidence ORDER BY cluster_id, document_id, kind").fetchall()
    finally:
        conn.close()
    return clusters + evidence


@pytest.mark.parametrize("slices", ["one", "many"])
def test_attribution_in_worker_processes_gives_what_this_process_gives(tmp_path, crawl, monkeypatch, caplog, slices):
    """Many changed clusters are attributed in worker processes, each reading its documents
    itself; a cluster a task there must give what the scanning process gives, and a task that
    fails in its worker is done again here. Slice after slice (one connected component each),
    saved by a thread while the next is attributed, the workers are those forked for the first."""
    import dedup.attributing as at
    from dedup import pipeline

    if slices == "many":  # the sample's stories are one component (its compilation page): add others
        for i in range(6):
            rnd = random.Random(i)
            phrase = lambda: "".join(rnd.choice(HANZI) for _ in range(12))  # noqa: B023, E731
            body = "。".join(f"{phrase()}，{phrase()}，{phrase()}" for _ in range(8)) + "。"
            for site in ("www.qcgl.gov.cn", "www.sohu.com"):
                (crawl / site / "bulletins").mkdir(parents=True, exist_ok=True)
                (crawl / site / "bulletins" / f"{i}.txt").write_text(f"通告第{i}号\n\n{body}\n", encoding="utf-8")
        monkeypatch.setattr(pipeline, "CLUSTER_SLICE", 1)
    scan(crawl, tmp_path / "here.db", Params(), jobs=2)
    monkeypatch.setattr(at, "ATTRIBUTE_IN_WORKERS", 0)
    monkeypatch.setattr(at, "ATTRIBUTE_CHUNK", 1)
    done_in = tmp_path / "tasks"
    done_in.mkdir()
    real = at.attribute_task

    def spied(groups):  # in a worker: forked, it has this test's patches
        if 1 in groups[0].members:
            os._exit(3)  # the cluster of document 1 kills its worker, alone too: it is done here
        (done_in / f"{os.getpid()}-{min(groups[0].members)}").touch()
        return real(groups)

    monkeypatch.setattr(at, "attribute_task", spied)
    # A slice is grouped while the workers attribute the slice before (Attributor.rows' meanwhile).
    from dedup.engine import LocalEngine

    grouped_during: list[bool] = []
    attributing: list[bool] = []
    real_rows, real_group = at.Attributor.rows, LocalEngine.group

    def rows(self, store, groups, meanwhile=None):
        attributing.append(True)
        try:
            return real_rows(self, store, groups, meanwhile)
        finally:
            attributing.pop()

    def group(self, *args):
        grouped_during.append(bool(attributing))
        return real_group(self, *args)

    monkeypatch.setattr(at.Attributor, "rows", rows)
    monkeypatch.setattr(LocalEngine, "group", group)
    summary = scan(crawl, tmp_path / "workers.db", Params(), jobs=2)
    assert grouped_during[0] is False and all(grouped_during[1:])  # the first slice before any attributing
    if slices == "many":
        assert len(grouped_during) == 7  # a slice a component: the sample's and the six added
    in_workers = list(done_in.iterdir())
    assert summary.clusters_attributed >= (3 if slices == "one" else 9)
    assert len(in_workers) == summary.clusters_attributed - 1  # one task a cluster, but document 1's
    assert any("attributing 1 clusters failed in a worker" in r.getMessage() for r in caplog.records)
    pids = {int(p.name.split("-")[0]) for p in in_workers}
    assert pids - {os.getpid()}
    assert len(pids) <= 2 + 2  # the two workers, and one for each time document 1's cluster killed one
    assert _cluster_rows(tmp_path / "workers.db") == _cluster_rows(tmp_path / "here.db")
    assert _attributions(tmp_path / "workers.db") == _attributions(tmp_path / "here.db")


def _site_state(db) -> tuple:
    """The sites as profiled and saved: their tallies, roles and names, and the queue of pages added."""
    conn = sqlite3.connect(db)
    try:
        tallies = conn.execute("SELECT site, tally FROM site_tallies ORDER BY site").fetchall()
        sites = conn.execute("SELECT * FROM sites ORDER BY 1").fetchall()
        queued = conn.execute("SELECT count(*) FROM site_tally_added").fetchone()[0]
    finally:
        conn.close()
    return tallies, sites, queued


@pytest.mark.parametrize("dies", [False, True])
def test_sites_profiled_in_a_forked_process_as_here(tmp_path, crawl, monkeypatch, caplog, dies):
    """With worker processes, the sites are profiled in a forked process while the new texts are
    matched (pipeline._count_sites_apart), on a first scan and on a rescan that adds a page to a
    site with a stored tally: the same tallies, site roles and clusters as profiled here. If that
    process dies, they are profiled here (the scan goes on)."""
    from dedup import pipeline

    def add_page(root):
        src = root / "www.sohu.com/2023/0310/657034118_120986420.html"
        (root / "www.sohu.com/2023/0311").mkdir(parents=True, exist_ok=True)
        (root / "www.sohu.com/2023/0311/again.html").write_bytes(src.read_bytes().replace(b"2023-03-10", b"2023-03-11"))

    here = tmp_path / "here.db"
    monkeypatch.setattr(pipeline.Background, "available", staticmethod(lambda: False))
    scan(crawl, here, Params(), jobs=2)
    monkeypatch.undo()
    pids = tmp_path / "pids"
    pids.mkdir()
    real = pipeline._count_sites_apart

    def spied(db_path, known_sources):  # forked: it has this test's patches
        (pids / str(os.getpid())).touch()
        if dies:
            os._exit(3)
        return real(db_path, known_sources)

    monkeypatch.setattr(pipeline, "_count_sites_apart", spied)
    apart = tmp_path / "apart.db"
    scan(crawl, apart, Params(), jobs=2)
    assert _site_state(apart) == _site_state(here)
    add_page(crawl)
    monkeypatch.setattr(pipeline.Background, "available", staticmethod(lambda: False))
    scan(crawl, here, Params(), jobs=2)
    monkeypatch.setattr(pipeline.Background, "available", staticmethod(lambda: True))
    scan(crawl, apart, Params(), jobs=2)
    state = _site_state(apart)
    assert state == _site_state(here) and state[0] and state[2] == 0
    assert _cluster_rows(apart) == _cluster_rows(here)
    assert _attributions(apart) == _attributions(here)
    assert len(list(pids.iterdir())) == 2 and str(os.getpid()) not in {p.name for p in pids.iterdir()}
    failed = [r for r in caplog.records if "profiling the sites failed in its process" in r.getMessage()]
    assert len(failed) == (2 if dies else 0)


def test_attribution_tasks_hold_whole_clusters_by_their_documents():
    """Work for the attribution workers is counted in documents (a story has ~5 copies in one crawl,
    ~64 in another): tasks of whole clusters, in order, each closed once it holds ATTRIBUTE_CHUNK
    documents."""
    from dedup.attributing import _tasks
    from dedup.cluster import Group

    sizes = ((1, 3), (4, 1), (5, 5), (10, 2), (12, 2))  # (first document, documents)
    groups = [Group(members={d: "copy" for d in range(first, first + n)}) for first, n in sizes]
    tasks = _tasks(groups, 4)
    assert [[len(g.members) for g in t] for t in tasks] == [[3, 1], [5], [2, 2]]
    assert [g for t in tasks for g in t] == groups
    assert [len(t) for t in _tasks(groups, 1)] == [1] * 5


def _signed_columns(db, path):
    conn = sqlite3.connect(db)
    cols = "id, content_hash, n_tokens, n_shingles, signature, samples, words, anchors, status"
    row = conn.execute(f"SELECT {cols} FROM documents WHERE path = ?", [path]).fetchone()
    windows = conn.execute("SELECT seq, n_shingles, signature FROM windows WHERE document_id = ? ORDER BY seq",
                           [row[0]]).fetchall()  # fmt: skip
    return row[1:], windows


def test_copies_with_the_same_words_are_signed_once(tmp_path, monkeypatch):
    """A document whose words equal those of a document signed before takes what signing made of
    them (signature, windows, samples, anchors, words) instead of signing them again; what it
    stores is what signing it would have stored."""
    from dedup import ingest

    # Long enough for windows (2 x 240 shingles), with numbers and place names for anchors.
    body = "\n".join(f"{s}第{k}批项目涉及青川市{k + 3}个乡镇。" for k in range(12) for s in STORIES[:4])
    crawl = tmp_path / "c"
    for site, wrap in (("a.cn", "{}"), ("b.com", "来源：青川日报\n{}\n责任编辑：王明")):
        (crawl / site).mkdir(parents=True)
        (crawl / site / "1.txt").write_text(f"青川市部署春季重点工作\n\n{wrap.format(body)}\n", encoding="utf-8")
    (crawl / "a.cn/2.txt").write_text(f"青川市发布夜间门诊通知\n\n{STORIES[2]}\n{STORY}\n", encoding="utf-8")
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    first, first_windows = _signed_columns(db, "a.cn/1.txt")
    assert len(first_windows) >= 2 and first[-1] == "ok" and first[-2]  # windows and anchors
    assert _signed_columns(db, "b.com/1.txt") == (first, first_windows)  # same words: same columns

    conn = sqlite3.connect(db)
    ids = dict(conn.execute("SELECT path, id FROM documents"))
    fresh = {}  # what signing makes of each, as scan stored it
    for path in ("b.com/1.txt", "a.cn/2.txt"):
        fresh[path] = _signed_columns(db, path)
    conn.execute("UPDATE documents SET status = 'pending' WHERE path IN ('b.com/1.txt', 'a.cn/2.txt')")
    conn.commit()
    signed = []
    real = ingest.sign_tokens
    monkeypatch.setattr(ingest, "sign_tokens", lambda doc, *a: signed.append(doc.path) or real(doc, *a))
    ingest.init_worker(Params(), None, {}, str(db))
    rows = ingest.sign_chunk([ids["b.com/1.txt"], ids["a.cn/2.txt"]])
    assert signed == ["a.cn/2.txt"]  # the copy was not signed again; the other story was
    copy = rows[0]
    assert (copy.content_hash, copy.n_tokens, copy.n_shingles, copy.signature, copy.samples, copy.words,
            copy.anchors, copy.status) == fresh["b.com/1.txt"][0]  # fmt: skip
    assert [(k, n, s) for k, (n, s) in enumerate(copy.windows)] == fresh["b.com/1.txt"][1]
    assert json.loads(copy.credits) == ["青川日报"]  # its own credits, not the other's

    # Two documents with the same words in one chunk, none stored: signed once.
    conn.execute("UPDATE documents SET status = 'pending' WHERE path IN ('a.cn/1.txt', 'b.com/1.txt')")
    conn.commit()
    signed.clear()
    rows = ingest.sign_chunk([ids["a.cn/1.txt"], ids["b.com/1.txt"]])
    assert signed == ["a.cn/1.txt"]
    assert rows[0][5:] == rows[1][5:] and rows[0].boilerplate == rows[1].boilerplate == "[]"


def _scanned(tmp_path, pages: dict[str, str]):
    """The pages written as .txt files of a crawl and scanned: (database, a connection, ids by path)."""
    crawl = tmp_path / "c"
    for path, text in pages.items():
        (crawl / path).parent.mkdir(parents=True, exist_ok=True)
        (crawl / path).write_text(text, encoding="utf-8")
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    conn = sqlite3.connect(db)
    return db, conn, dict(conn.execute("SELECT path, id FROM documents"))


def test_equal_texts_are_signed_together_and_tokenized_once(tmp_path, monkeypatch):
    """The sign stage takes the documents in the order of their ids, but a text equal to an earlier
    one's (by its stored key, schema migration 23) right after that one; a worker normalizes and
    tokenizes such a text once, and each document keeps its own credits."""
    from dedup import ingest

    x, y = "\n".join(STORIES[:3]), "\n".join(STORIES[3:])
    pages = {  # in the order of their paths, the order they are saved in
        "a.cn/1.txt": f"市里部署春季工作\n\n{x}\n",
        "b.cn/1.txt": f"全市一季度生态环境通报\n\n{y}\n",
        "c.org/1.txt": f"春季工作部署(转载)\n来源：青川日报\n\n{x}\n",
        "d.net/1.txt": f"生态环境通报\n\n{y}\n",
    }
    db, conn, ids = _scanned(tmp_path, pages)
    stored = {p: _signed_columns(db, p) for p in pages}
    assert stored["a.cn/1.txt"] == stored["c.org/1.txt"] and stored["b.cn/1.txt"] == stored["d.net/1.txt"]
    keys = dict(conn.execute("SELECT path, text_key FROM documents"))
    assert keys["a.cn/1.txt"] == keys["c.org/1.txt"] != keys["b.cn/1.txt"] == keys["d.net/1.txt"]

    conn.execute("UPDATE documents SET status = 'pending'")
    conn.commit()
    with closing(Store(db)) as store:
        order = store.docs_to_sign({})
    assert order == [ids[p] for p in ("a.cn/1.txt", "c.org/1.txt", "b.cn/1.txt", "d.net/1.txt")]
    # A document saved before there were keys (NULL) keeps its place by id.
    conn.execute("UPDATE documents SET text_key = NULL WHERE path = 'c.org/1.txt'")
    conn.commit()
    with closing(Store(db)) as store:
        assert store.docs_to_sign({}) == [ids[p] for p in ("a.cn/1.txt", "b.cn/1.txt", "d.net/1.txt", "c.org/1.txt")]

    normalized = []
    real = ingest._prepare_text
    monkeypatch.setattr(ingest, "_prepare_text", lambda text, *a: normalized.append(text) or real(text, *a))
    monkeypatch.setattr(ingest, "_PREPARED", {})
    ingest.init_worker(Params(), None, {}, str(db))
    rows = dict(zip(order, ingest.sign_chunk(order), strict=True))
    assert normalized == [x, y]  # each text once: the copies took what their first gave
    for path in pages:
        row = rows[ids[path]]
        got = (row.content_hash, row.n_tokens, row.n_shingles, row.signature, row.samples, row.words,
               row.anchors, row.status)  # fmt: skip
        assert got == stored[path][0], path  # what signing it alone stored
    assert json.loads(rows[ids["c.org/1.txt"]].credits) == ["青川日报"]
    assert json.loads(rows[ids["a.cn/1.txt"]].credits) == []  # not the copy's credit
    # A site with other learned lines: its copy of the text is normalized with them, not taken
    # from the other site's; the other site's is still known.
    normalized.clear()
    monkeypatch.setitem(ingest.worker_state, "learned", {"c.org": frozenset({"某行"})})
    ingest.sign_chunk([ids["a.cn/1.txt"], ids["c.org/1.txt"]])
    assert normalized == [x]


def test_copies_that_share_lines_are_signed_together_and_their_lines_normalized_once(tmp_path, monkeypatch):
    """Two copies of a story whose texts differ in short lines (a wrapper) share their key (the
    least CRC of their long lines): the sign stage hands them out together, and a worker folds
    and tokenizes a line it met in the last texts only once. What each document gets is what
    signing it alone gives, its site's learned lines included."""
    from dedup import ingest

    x, y = "\n".join(STORIES[:3]), "\n".join(STORIES[3:])
    pages = {
        "a.cn/1.txt": f"市里部署春季工作\n\n{x}\n",
        "b.cn/1.txt": f"全市一季度生态环境通报\n\n{y}\n",
        "c.org/1.txt": f"春季工作部署(转载)\n\n编者按：春季工作\n{x}\n图片来自网络\n",
    }
    db, conn, ids = _scanned(tmp_path, pages)
    texts = dict(conn.execute("SELECT path, text FROM documents"))
    assert texts["a.cn/1.txt"] != texts["c.org/1.txt"]
    keys = dict(conn.execute("SELECT path, text_key FROM documents"))
    assert keys["a.cn/1.txt"] == keys["c.org/1.txt"] != keys["b.cn/1.txt"]
    stored = {p: _signed_columns(db, p) for p in pages}
    conn.execute("UPDATE documents SET status = 'pending'")
    conn.commit()
    with closing(Store(db)) as store:
        order = store.docs_to_sign({})
    assert order == [ids[p] for p in ("a.cn/1.txt", "c.org/1.txt", "b.cn/1.txt")]

    folded: list[list[str]] = []
    real = ingest.line_parts
    monkeypatch.setattr(ingest, "line_parts", lambda raws, *a: folded.append(list(raws)) or real(raws, *a))
    monkeypatch.setattr(ingest, "_PREPARED", {})
    monkeypatch.setattr(ingest, "_LINES", ingest.OrderedDict())
    ingest.init_worker(Params(), None, {}, str(db))
    rows = dict(zip(order, ingest.sign_chunk(order), strict=True))
    assert folded[0] == texts["a.cn/1.txt"].split("\n")
    assert folded[1] == ["编者按：春季工作", "图片来自网络"]  # only the lines a.cn's text had not
    assert not set(folded[2]) & set(folded[0])
    for path in pages:
        row = rows[ids[path]]
        got = (row.content_hash, row.n_tokens, row.n_shingles, row.signature, row.samples, row.words,
               row.anchors, row.status)  # fmt: skip
        assert got == stored[path][0], path

    # A line c.org learned as boilerplate is taken out of its text only, though met on a.cn first.
    learned = {"c.org": frozenset({STORIES[1].replace("，", ",")})}  # as folded (NFKC)
    monkeypatch.setitem(ingest.worker_state, "learned", learned)
    warm = ingest.sign_chunk([ids["a.cn/1.txt"], ids["c.org/1.txt"]])
    ingest._LINES.clear()
    ingest._PREPARED.clear()
    alone = [ingest.sign_chunk([ids[p]])[0] for p in ("a.cn/1.txt", "c.org/1.txt")]
    assert warm == alone
    assert warm[1].n_tokens < warm[0].n_tokens and json.loads(warm[1].boilerplate)


def test_a_scan_sets_the_garbage_collector_back_as_it_found_it(crawl, tmp_path):
    """A scan collects less often while it runs (pipeline.SCAN_GC_THRESHOLD), and gives the
    calling process its own settings back, after a scan and after one that failed."""
    import gc

    from dedup.pipeline import SCAN_GC_THRESHOLD

    before = gc.get_threshold()
    seen = []

    def note(stage, done, total):
        seen.append((gc.get_threshold(), gc.get_freeze_count() > 0))

    scan(crawl, tmp_path / "d.db", progress=note, jobs=1)
    assert seen and set(seen) == {(SCAN_GC_THRESHOLD, True)}
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0

    def fail(stage, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan(crawl, tmp_path / "e.db", progress=fail, jobs=1)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
