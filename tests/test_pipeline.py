"""The Python API the CLI wraps: scan() on a crawl on disk."""

import sqlite3

import pytest

from dedup.errors import DedupError
from dedup.models import Params
from dedup.pipeline import scan
from dedup.store import Store

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
    rows = {r["path"]: r for r in Store(db, create=False).export_rows()}
    assert rows["a.cn/short0.txt"]["cluster"] is None and rows["a.cn/short0.txt"]["role"] == "too_short"
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
