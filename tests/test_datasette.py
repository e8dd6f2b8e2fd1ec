"""Datasette over a scanned crawl: the shipped metadata describes every table and column, every
canned query runs, Chinese search finds 2-character words and phrases in titles (always indexed)
and texts (read one by one, or indexed after `--index-text`) and follows rescans (triggers),
crawled markup is shown as text, and the FTS migrations upgrade an older database."""

import asyncio
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup import browse
from dedup.cli import cli
from dedup.dbfile import APPLICATION_ID, ScanLock
from dedup.errors import DedupError, StoreError
from dedup.models import Params
from dedup.pipeline import scan
from dedup.store import MIGRATIONS, Store
from dedup.store.search import TEXT_TRIGGERS
from tests.conftest import SAMPLE

QUERIES = {
    "search",
    "title_copies",
    "largest_clusters",
    "reposts_per_site",
    "originals_per_publisher",
    "new_clusters_last_run",
}
# Composed for this test in the style of a weather bulletin and its repost (no real page's text).
STORM = (
    "7月15日16时，青川市气象台发布暴雨橙色预警信号：受低涡切变线影响，预计未来6小时内，双河街道、桃源镇、"
    "清溪镇等地将出现暴雨到大暴雨，累计降雨量可达80至120毫米，局地伴有雷电和8级以上短时大风。\n"
    "市防汛抗旱指挥部已于15时启动防汛Ⅳ级应急响应，要求各地加强对中小河流、山洪沟道和地质灾害隐患点的巡查，"
    "提前转移危险区域群众，各类在建工地暂停室外作业。\n"
    "气象专家提醒，暴雨期间请市民尽量减少外出，不要在桥下、涵洞等低洼地带停留，驾车途经积水路段时应减速慢行，"
    "注意收听收看最新预警信息。\n"
    "据统计，今年入汛以来全市平均降水量达到412毫米，较常年同期偏多两成，清溪河青龙段水位已接近警戒线。"
)
HOSTILE_TITLE = "<script>alert(\"青川\")</script>暴雨来袭 & '快讯' <b>加粗</b>"
HOSTILE_URL = 'https://mp.weixin.qq.com/s/storm"><script>alert(2)</script>'
ORIGINAL = "www.qcqx.gov.cn/2023/0715/art_2207_1185.json"
COPY = "mp.weixin.qq.com/2023/0715/qcStorm0715.json"


def write_storm(crawl: Path) -> None:
    """The bulletin on the weather office's site, and a repost with a hostile title and URL."""
    original = {
        "url": f"http://{ORIGINAL.replace('.json', '.html')}",
        "title": "青川市气象台发布暴雨橙色预警信号",
        "content": STORM + "\n来源：青川市气象局",
        "publish_time": "2023-07-15 16:05:00",
    }
    copy = {
        "url": HOSTILE_URL,
        "title": HOSTILE_TITLE,
        "content": "点击蓝字 关注我们\n" + STORM + "\n来源：青川市气象局\n分享 | 点赞 | 在看",
        "publish_time": "2023-07-15 18:40:00",
    }
    for rel, page in ((ORIGINAL, original), (COPY, copy)):
        path = crawl / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(page, ensure_ascii=False), encoding="utf-8")


def make_crawl(root: Path) -> Path:
    crawl = root / "crawl"
    shutil.copytree(SAMPLE, crawl, ignore=shutil.ignore_patterns("*.md"))
    write_storm(crawl)
    return crawl


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    """The sample crawl plus the storm bulletins, scanned once into crawl.db (read by the tests)."""
    root = tmp_path_factory.mktemp("ds")
    crawl = make_crawl(root)
    db = root / "crawl.db"
    scan(crawl, db, Params(), jobs=1)
    return db


def fetch(ds, path: str, **params):
    """One request to a Datasette instance through its ASGI client."""

    async def go():
        return await ds.client.get(path, params=params)

    return asyncio.run(go())


def rows(ds, db: Path, query: str, **params) -> list[dict]:
    r = fetch(ds, f"/{db.stem}/{query}.json", _shape="array", **params)
    assert r.status_code == 200, r.text
    return r.json()


def containing(db: Path, s: str, texts: bool = True) -> set[int]:
    """The live documents whose title, 原标题 or text (or only titles) contain `s` (the truth
    search is held to)."""
    conn = sqlite3.connect(db)
    text = "instr(text, ?)" if texts else "0 AND ?"
    found = {
        i
        for (i,) in conn.execute(
            "SELECT id FROM documents WHERE status != 'gone' AND "
            f"(instr(title, ?) OR instr(coalesce(original_title, ''), ?) OR {text})",
            (s, s, s),
        )
    }
    conn.close()
    return found


def matching(db: Path, index: str, phrase: str) -> set[int]:
    """The rowids a full-text index (documents_fts, texts_fts) gives for a phrase."""
    conn = sqlite3.connect(db)
    quoted = '"' + phrase.replace('"', '""') + '"'
    found = {i for (i,) in conn.execute(f"SELECT rowid FROM {index} WHERE {index} MATCH ?", (quoted,))}
    conn.close()
    return found


def indexed(conn: sqlite3.Connection, index: str) -> list[tuple]:
    """Every (trigram, document, column, offset) a full-text index holds (fts5vocab reads the index
    itself, not the documents)."""
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{index}_vocab USING fts5vocab(main, {index}, instance)")
    return sorted(conn.execute(f"SELECT term, doc, col, offset FROM temp.{index}_vocab"))


def assert_in_sync(db: Path, index: str) -> None:
    """The index holds what rebuilding it from `documents` gives: every current title or text, nothing
    stale. (FTS5's integrity-check does not compare an external-content index with its content
    before SQLite 3.44.)"""
    conn = sqlite3.connect(db, isolation_level=None)
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    conn.backup(fresh)
    conn.execute(f"INSERT INTO {index} ({index}) VALUES ('integrity-check')")
    held = indexed(conn, index)
    fresh.execute(f"INSERT INTO {index} ({index}) VALUES ('rebuild')")
    assert held == indexed(fresh, index), f"{index} is out of step with documents"
    conn.close()
    fresh.close()


def check_text_index(db: Path) -> None:
    """texts_fts holds every document's text, and nothing else; a stretch of every text finds its
    document."""
    assert_in_sync(db, "texts_fts")
    conn = sqlite3.connect(db)
    texts = conn.execute("SELECT id, text FROM documents WHERE length(text) >= 12").fetchall()
    conn.close()
    assert texts
    for i, text in texts:
        assert i in matching(db, "texts_fts", text[-12:]), text[-12:]


def doc_id(db: Path, path: str) -> int:
    conn = sqlite3.connect(db)
    (i,) = conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
    conn.close()
    return i


# ----------------------------------------------------------------------------- the metadata


def test_every_table_and_column_is_described(scanned):
    meta = browse.load_metadata(scanned.stem)
    assert set(meta["databases"]) == {"crawl"}  # re-keyed to the name Datasette gives crawl.db
    tables = meta["databases"]["crawl"]["tables"]
    conn = sqlite3.connect(scanned)
    names = [
        t
        for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        if not t.startswith(("documents_fts", "texts_fts"))  # the indexes and their shadow tables: hidden
    ]
    assert set(names) == set(tables), "describe new tables in dedup/data/datasette.yaml"
    for t in names:
        assert tables[t].get("description") or tables[t].get("description_html"), t
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info([{t}])")]
        assert set(columns) == set(tables[t]["columns"]), f"describe the columns of {t} in datasette.yaml"
        assert all(isinstance(v, str) and v for v in tables[t]["columns"].values()), t
    conn.close()
    assert set(meta["databases"]["crawl"]["queries"]) == QUERIES
    for q in meta["databases"]["crawl"]["queries"].values():
        assert q["title"] and q["description"] and "description_html" not in q


def test_the_metadata_file_ships_in_the_package():
    path = browse.metadata_path()
    assert path.is_file() and path.parent.name == "data" and path.parent.parent.name == "dedup"
    # pyproject's package-data `data/*` puts every file of dedup/data/ in the wheel
    # (tests/test_packaging.py builds one); the default key is the name Datasette gives dedup.db.
    assert set(browse.load_metadata()["databases"]) == {"dedup"}


def test_tables_are_described_and_internal_ones_hidden(scanned):
    ds = browse.make_datasette(scanned)
    r = fetch(ds, f"/{scanned.stem}.json")
    assert r.status_code == 200
    hidden = {t["name"] for t in r.json()["tables"] if t["hidden"]}
    assert {"windows", "verdicts", "index_segments", "site_lines", "documents_fts", "texts_fts"} <= hidden
    assert not hidden & {"documents", "clusters", "memberships", "sites", "evidence", "runs", "cluster_history"}
    html = fetch(ds, f"/{scanned.stem}/clusters").text
    assert "One row per story with copies" in html
    assert "Confidence in the original" in html  # column descriptions are shown


# ----------------------------------------------------------------------------- canned queries


def test_every_canned_query_runs_and_returns_rows(scanned):
    ds = browse.make_datasette(scanned)
    params = {
        "search": {"q": "暴雨"},
        "title_copies": {"title": "防汛抢险"},
    }
    for name in sorted(QUERIES):
        found = rows(ds, scanned, name, **params.get(name, {}))
        assert found, name
    largest = rows(ds, scanned, "largest_clusters")
    assert [r["size"] for r in largest] == sorted((r["size"] for r in largest), reverse=True)
    storm = rows(ds, scanned, "title_copies", title="青川市气象台发布")
    assert {r["document"] for r in storm} == {doc_id(scanned, ORIGINAL), doc_id(scanned, COPY)}
    assert next(r for r in largest if r["cluster"] == storm[0]["cluster"])["size"] == 2
    # Where was the drill's title copied: every page of its cluster, retitled copies included.
    copied = rows(ds, scanned, "title_copies", title="防汛抢险")
    assert {r["role"] for r in copied} == {"original", "copy", "compilation"}
    assert {r["site"] for r in copied} >= {"www.qingchuan.gov.cn", "www.sohu.com", "mp.weixin.qq.com"}
    unique = rows(ds, scanned, "title_copies", title="油菜花节")  # a story nobody copied
    assert [(r["role"], r["site"]) for r in unique] == [("no copies", "www.nanping-xian.cn")]
    per_site = {r["site"]: r for r in rows(ds, scanned, "reposts_per_site")}
    assert per_site["www.sohu.com"]["copies"] == 2
    # Every cluster has one original, on a site of the crawl or outside it ('external: ...').
    publishers = {r["publisher"]: r["originals"] for r in rows(ds, scanned, "originals_per_publisher")}
    assert sum(publishers.values()) == len(largest) and publishers["www.qcnews.cn"] == 2
    assert len(rows(ds, scanned, "new_clusters_last_run")) == 4  # the first run found every cluster


def test_titles_are_indexed_and_texts_are_not_by_default(scanned):
    conn = sqlite3.connect(scanned)
    assert conn.execute("SELECT value FROM settings WHERE key = 'text_search'").fetchall() == []
    triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'texts_fts_%'"
    assert conn.execute(triggers).fetchall() == []
    conn.close()
    assert not Store(scanned, readonly=True).text_search_enabled()
    titles = containing(scanned, "气象台发布暴雨", texts=False)
    assert matching(scanned, "documents_fts", "气象台发布暴雨") == titles and titles
    assert matching(scanned, "documents_fts", "橙色预警信号：受低涡") == set()  # a stretch of text only
    assert matching(scanned, "texts_fts", "橙色预警信号：受低涡") == set()  # empty until enabled


def test_search_finds_chinese_words_and_phrases(scanned):
    ds = browse.make_datasette(scanned)
    storm = {doc_id(scanned, ORIGINAL), doc_id(scanned, COPY)}
    # Texts are read one by one (LIKE): a phrase in no title is found all the same.
    assert {r["document"] for r in rows(ds, scanned, "search", q="受低涡切变线影响")} == storm
    for q in ("暴雨", "防汛", "防汛抢险综合应急演练", "青川市气象台", "大暴雨", "雨"):
        found = {r["document"] for r in rows(ds, scanned, "search", q=q)}
        assert found == containing(scanned, q) and found, q
    assert {r["document"] for r in rows(ds, scanned, "search", q="暴雨")} == storm
    hit = rows(ds, scanned, "search", q="橙色预警")[0]
    assert "橙色预警" in hit["context"] and hit["cluster"] is not None
    # LIKE's and FTS5's special characters are plain characters; an empty query finds nothing.
    assert rows(ds, scanned, "search", q="") == []
    for q in ('"', "%", "_", '"%_\\', "'快讯'"):
        assert {r["document"] for r in rows(ds, scanned, "search", q=q)} == containing(scanned, q), q
    assert {r["document"] for r in rows(ds, scanned, "search", q='"')} == {doc_id(scanned, COPY)}
    # Datasette's own search box on the documents table: titles and 原标题, three characters or more.
    r = fetch(ds, f"/{scanned.stem}/documents.json", _search="防汛抢险", _shape="array")
    assert {d["id"] for d in r.json()} == containing(scanned, "防汛抢险", texts=False) != set()


# ----------------------------------------------------------------------------- hostile pages


def test_hostile_titles_and_urls_are_shown_as_text(scanned):
    ds = browse.make_datasette(scanned)
    copy = doc_id(scanned, COPY)
    db = scanned.stem
    pages = [
        f"/{db}/documents",
        f"/{db}/documents/{copy}",
        f"/{db}/memberships",  # the document's label (its title) beside the id
        f"/{db}/search?q=暴雨",
        f"/{db}/title_copies?title=暴雨来袭",
        f"/{db}/largest_clusters",
    ]
    for path in pages:
        r = fetch(ds, path)
        assert r.status_code == 200, path
        html = r.text
        assert "<script>alert(" not in html and "<b>加粗</b>" not in html, path
        assert '"><script>' not in html, path
    html = fetch(ds, f"/{db}/documents/{copy}").text
    assert "&lt;script&gt;alert(" in html and "&lt;b&gt;加粗&lt;/b&gt;" in html


# ----------------------------------------------------------------------------- kept in sync


# Searched before and after the texts are indexed: words, phrases in titles and in texts only, none.
PHRASES = ("暴雨", "雨", "受低涡切变线影响", "青川市气象台", "防汛抢险综合应急演练", "油菜花", "来源：", '"%_\\')


@pytest.mark.parametrize("text_search", [False, True], ids=["texts-read", "texts-indexed"])
def test_search_follows_a_rescan_that_changes_and_removes_files(tmp_path, text_search):
    crawl = make_crawl(tmp_path)
    db = tmp_path / "crawl.db"
    scan(crawl, db, Params(), jobs=1)
    assert len(containing(db, "暴雨")) == 2
    if text_search:
        ds = browse.make_datasette(db)
        before = {q: rows(ds, db, "search", q=q) for q in PHRASES}
        assert before["受低涡切变线影响"] and len(before["来源："]) > 2  # phrases of texts only
        r = invoke("--db", db, "--index-text", "--index-only")
        n = sqlite3.connect(db).execute("SELECT count(*) FROM documents").fetchone()[0]
        assert r.exit_code == 0, r.output
        assert r.output.startswith(f"dedup: texts of {n:,} documents indexed for search in "), r.output
        assert r.output.count("\n") == 1
        check_text_index(db)
        # The same rows, in the same order, whichever way the texts are searched.
        ds = browse.make_datasette(db)
        assert {q: rows(ds, db, "search", q=q) for q in PHRASES} == before
        assert matching(db, "texts_fts", "受低涡切变线影响") == {doc_id(db, ORIGINAL), doc_id(db, COPY)}
    # The repost is edited (暴雨 -> 豪雨), the original deleted, a feed record dropped.
    page = json.loads((crawl / COPY).read_text(encoding="utf-8"))
    page["content"] = page["content"].replace("暴雨", "豪雨")
    page["title"] = "青川豪雨来袭"
    (crawl / COPY).write_text(json.dumps(page, ensure_ascii=False), encoding="utf-8")
    (crawl / ORIGINAL).unlink()
    feed = crawl / "feeds" / "crawl-20230315.jsonl"
    feed.write_text("".join(feed.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    scan(crawl, db, Params(), jobs=1)

    ds = browse.make_datasette(db)
    assert rows(ds, db, "search", q="暴雨") == []
    assert [r["document"] for r in rows(ds, db, "search", q="豪雨")] == [doc_id(db, COPY)]
    assert [r["document"] for r in rows(ds, db, "title_copies", title="豪雨来袭")] == [doc_id(db, COPY)]
    assert rows(ds, db, "search", q="油菜花节") == []
    conn = sqlite3.connect(db)
    # The index holds exactly what the documents table holds: the dropped record is out of it, the
    # deleted file's document (kept, status gone) in it, and it equals a fresh rebuild.
    match = "SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?"
    assert conn.execute(match, ('"油菜花节"',)).fetchall() == []
    assert conn.execute(match, ('"暴雨橙色预警"',)).fetchall() == [(doc_id(db, ORIGINAL),)]
    for i, title in conn.execute("SELECT id, title FROM documents").fetchall():
        quoted = '"' + title.replace('"', '""') + '"'
        hits = {r for (r,) in conn.execute("SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?", (quoted,))}
        assert i in hits, title
    conn.close()
    assert_in_sync(db, "documents_fts")
    # The texts' index: filled and kept in sync only when enabled; searched the same either way.
    assert matching(db, "texts_fts", "豪雨") == set()  # too short for a trigram: LIKE finds it above
    if text_search:
        check_text_index(db)
        assert matching(db, "texts_fts", "暴雨期间") == {doc_id(db, ORIGINAL)}  # kept, status gone
        assert matching(db, "texts_fts", "豪雨期间") == {doc_id(db, COPY)}  # the edited text, not the old one
        assert matching(db, "texts_fts", "万亩花海景区") == set()  # the dropped record
    else:
        assert matching(db, "texts_fts", "暴雨期间") == set()
    assert {r["document"] for r in rows(ds, db, "search", q="豪雨期间")} == {doc_id(db, COPY)}
    assert rows(ds, db, "search", q="暴雨期间") == []


# ----------------------------------------------------------------------------- the migration


def migration(made: str) -> int:
    """The index of the migration that made a table."""
    return next(n for n, m in enumerate(MIGRATIONS) if f"CREATE VIRTUAL TABLE {made} " in m)


def old_database(db: Path, version: int) -> Path:
    """A dedup database made by the first `version` migrations, holding one document."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for n in range(version):
        conn.executescript(MIGRATIONS[n])
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO files (path, status) VALUES ('a.json', 'ok')")
    conn.execute(
        "INSERT INTO documents (path, file_path, kind, title, text, status) "
        "VALUES ('a.json', 'a.json', 'json', '上饶暴雨预警', '上饶市气象台发布暴雨蓝色预警。', 'ok')"
    )
    conn.close()
    return db


@pytest.mark.parametrize("made", ["documents_fts", "texts_fts"])
def test_the_migrations_upgrade_a_database_made_before_them(tmp_path, made):
    db = old_database(tmp_path / "old.db", migration(made))
    # A read-only open (Datasette's) refuses it with the advice to scan once; nothing changes.
    with pytest.raises(StoreError, match="run `dedup scan` on it once"):
        browse.check_database(db)
    store = Store(db)  # a scan opens it for writing: migrated, the titles indexed, not the texts
    assert not store.text_search_enabled()
    store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()
    assert matching(db, "documents_fts", "暴雨预警") == {1}
    assert matching(db, "texts_fts", "气象台发布") == set()
    browse.check_database(db)
    ds = browse.make_datasette(db)
    assert [r["document"] for r in rows(ds, db, "search", q="暴雨")] == [1]
    assert [r["document"] for r in rows(ds, db, "search", q="蓝色预警")] == [1]  # read from the text
    assert browse.index_texts(db).documents == 1
    assert matching(db, "texts_fts", "气象台发布") == {1}
    ds = browse.make_datasette(db)
    assert [r["document"] for r in rows(ds, db, "search", q="蓝色预警")] == [1]  # from the index


def test_text_search_is_enabled_once_and_can_be_disabled(tmp_path, scanned):
    db = tmp_path / "crawl.db"
    shutil.copy(scanned, db)
    store = Store(db)
    try:
        (n,) = store.conn.execute("SELECT count(*) FROM documents").fetchone()
        assert store.enable_text_search() == n and store.text_search_enabled()
        assert store.enable_text_search() == n  # nothing rebuilt, nothing doubled
        check_text_index(db)
        triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'texts_fts_%'"
        assert {t for (t,) in store.conn.execute(triggers)} == set(TEXT_TRIGGERS) and len(TEXT_TRIGGERS) == 3
        storm = {doc_id(db, ORIGINAL), doc_id(db, COPY)}
        assert matching(db, "texts_fts", "受低涡切变线影响") == storm
        store.disable_text_search()
        assert not store.text_search_enabled() and store.conn.execute(triggers).fetchall() == []
        assert matching(db, "texts_fts", "受低涡切变线影响") == set()
        ds = browse.make_datasette(db)
        assert {r["document"] for r in rows(ds, db, "search", q="受低涡切变线影响")} == storm  # read again
        assert store.enable_text_search() == n
        check_text_index(db)
    finally:
        store.close()


# ----------------------------------------------------------------------------- the command


def invoke(*args, **kw):
    return CliRunner().invoke(cli, ["datasette", *map(str, args)], **kw)


def test_metadata_path_and_print_metadata(tmp_path):
    r = invoke("--metadata-path")
    assert r.exit_code == 0 and Path(r.output.strip()) == browse.metadata_path()
    r = invoke("--print-metadata", "--db", tmp_path / "nightly.db")
    assert r.exit_code == 0, r.output
    meta = json.loads(r.output)
    assert set(meta["databases"]) == {"nightly"} and "search" in meta["databases"]["nightly"]["queries"]


def test_without_datasette_one_line_says_how_to_install(scanned, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasette.app", None)  # as if it were not installed
    r = invoke("--db", scanned)
    assert r.exit_code == 1
    assert r.output == "Error: Datasette is not installed: pip install 'crawl-dedup-zh[datasette]'\n"
    with pytest.raises(DedupError, match="pip install 'crawl-dedup-zh"):
        browse.make_datasette(scanned)


def test_a_missing_database_is_one_line(tmp_path):
    r = invoke("--db", tmp_path / "none.db")
    assert r.exit_code == 1 and r.output.startswith("Error: no database at") and r.output.count("\n") == 1
    assert not (tmp_path / "none.db").exists()


def test_index_text_enables_then_serves(tmp_path, scanned, monkeypatch):
    db = tmp_path / "crawl.db"
    shutil.copy(scanned, db)
    served = []
    monkeypatch.setattr(browse, "serve", lambda *a: served.append((a, browse.index_texts)))
    r = invoke("--db", db, "--index-text", "-p", 9999)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("dedup: texts of ") and r.output.count("\n") == 1
    assert served and served[0][0] == (db, "127.0.0.1", 9999)
    r = invoke("--db", db, "--index-text", "--index-only")
    n = sqlite3.connect(db).execute("SELECT count(*) FROM documents").fetchone()[0]
    assert r.exit_code == 0 and r.output == f"dedup: texts already searchable ({n:,} documents)\n"
    assert len(served) == 1


def test_index_text_errors_are_one_line(tmp_path, scanned):
    r = invoke("--db", tmp_path / "none.db", "--index-text", "--index-only")
    assert r.exit_code == 1 and r.output.startswith("Error: no database at") and r.output.count("\n") == 1
    assert not (tmp_path / "none.db").exists()
    r = invoke("--db", scanned, "--index-only")
    assert r.exit_code == 2 and r.output.endswith("Error: --index-only needs --index-text\n")
    r = invoke("--db", scanned, "--index-text", "--print-metadata")
    assert r.exit_code == 2 and "cannot be combined" in r.output
    db = tmp_path / "crawl.db"
    shutil.copy(scanned, db)
    with ScanLock(db).acquire():  # a scan is running
        r = invoke("--db", db, "--index-text", "--index-only")
    assert r.exit_code == 75
    assert r.output == f"Error: a dedup scan is running on {db}: index the texts when it has ended\n"
    assert not Store(db, readonly=True).text_search_enabled()


def test_the_command_serves_the_database(scanned, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = scanned.read_bytes()
    cmd = [sys.executable, "-m", "dedup", "datasette", "--db", str(scanned), "-p", str(port)]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/{scanned.stem}/search.json?_shape=array&q=%E6%9A%B4%E9%9B%A8"  # 暴雨
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    found = json.loads(resp.read())
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "serve.log").read_text(errors="replace")) from None
                time.sleep(0.2)
        assert {r["site"] for r in found} == {"www.qcqx.gov.cn", "mp.weixin.qq.com"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert scanned.read_bytes() == before  # served read-only
