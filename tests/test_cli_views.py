"""What people look at in the terminal: `doc`, `query`, the filters of `clusters`, --json / --nl,
80-column output, plain-word reasons and hostile page text, on a real scanned crawl on disk (the
sample crawl plus a story of composed text whose pages carry hostile titles)."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.cells import cell_len
from rich.console import Console

import dedup.cli as cli_module
from dedup.attribute import DocInfo, load_sources, pick_original, profile_sites
from dedup.cli import cli
from dedup.models import ROLE_COPY
from dedup.report import print_cluster, print_clusters, print_doc, print_history, print_query, print_runs, safe
from dedup.store import Store
from tests.conftest import BUS, COMPILATION, FLOOD, SAMPLE, TREES

# A story of composed text (a county's flood drill), published by the county government and
# reposted by Sohu (credited) and, cut after its third sentence, by a content farm.
DRILL = (
    "临溪县应急管理局消息，6月12日上午，临溪县在城南河段组织开展2024年汛期山洪灾害避险转移演练。"
    "演练模拟持续强降雨引发山洪，县防汛办接到预警后立即启动应急响应，各乡镇按照预案组织沿河群众有序转移至安置点。"
    "全县共有12个部门、300余名干部群众参加演练，历时约90分钟，转移路线、预警信号和安置保障逐项得到检验。"
    "县应急管理局负责人表示，将以此次演练为契机，进一步完善预案体系，加强值班值守，提升基层防汛应急处置能力，"
    "确保安全度汛。"
)
HOSTILE = '<script>alert("x")</script> [bold red]临溪县[/bold red] \x1b[31m山洪避险演练\x1b[0m'
GOV = "www.linxi-xian.gov.cn/2024/0612/1.json"
SOHU = "www.sohu.com/2024/0612/778812345_120001234.json"
FARM = "www.wendafarm-example.com/2024/0614/q1.json"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def write_json(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")


def add_drill(crawl: Path) -> None:
    write_json(crawl / GOV, {"url": "https://www.linxi-xian.gov.cn/2024/0612/1.html", "title": HOSTILE,
                             "content": DRILL, "publish_time": "2024-06-12 10:00"})  # fmt: skip
    write_json(crawl / SOHU, {"url": "https://www.sohu.com/a/778812345_120001234", "title": HOSTILE,
                              "content": DRILL + "\n责任编辑：王晓", "publish_time": "2024-06-12 15:30",
                              "source": "临溪县应急管理局"})  # fmt: skip
    cut = "。".join(DRILL.split("。")[:3]) + "。"
    write_json(crawl / FARM, {"url": "https://www.wendafarm-example.com/q1.html", "title": "临溪县山洪演练",
                              "content": cut, "publish_time": "2024-06-14 08:00"})  # fmt: skip


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[Path, Path]:
    """(crawl, db): the sample crawl and the drill story, scanned once for the read-only tests."""
    root = tmp_path_factory.mktemp("views")
    crawl = root / "crawl"
    shutil.copytree(SAMPLE, crawl, ignore=shutil.ignore_patterns("*.md"))
    add_drill(crawl)
    db = root / "d.db"
    r = run("scan", crawl, "--db", db, "--jobs", "1")
    assert r.exit_code == 0, r.output
    return crawl, db


@pytest.fixture(scope="module")
def ids(scanned) -> dict[str, dict]:
    r = run("export", "--db", scanned[1])
    return {row["path"]: row for row in map(json.loads, r.stdout.splitlines())}


def narrow(monkeypatch) -> None:
    """The CLI's console at 80 columns, as on a small terminal."""
    monkeypatch.setattr(cli_module, "_console", lambda: Console(width=80, highlight=False))


def long_lines(text: str, width: int = 80) -> list[str]:
    return [line for line in text.splitlines() if cell_len(line) > width]


def digest_tree(db: Path) -> dict[str, str]:
    """Every file of the database and its index beside it, by name, with a hash of its bytes."""
    out = {}
    for p in sorted(db.parent.rglob("*")):
        rel = p.relative_to(db.parent).as_posix()
        if p.is_file() and rel.startswith(db.name):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    assert any(k.startswith(f"{db.name}.index/seg-") for k in out), out  # the index is there, and checked
    return out


def row_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


# ----------------------------------------------------------------------------- doc


def test_doc_by_id_by_path_and_by_file_on_disk(scanned, ids):
    crawl, db = scanned
    trees = ids[TREES]
    by_id = json.loads(run("doc", trees["document_id"], "--db", db, "--json").stdout)
    assert by_id["role"] == "original" and by_id["path"] == TREES
    for ref in (TREES, crawl / TREES, "1000234567.html"):
        r = run("doc", ref, "--db", db, "--json")
        assert r.exit_code == 0, (ref, r.output)
        assert json.loads(r.stdout) == by_id
    assert by_id["site_names"][:1] == ["青川新闻网"]
    (cluster,) = by_id["clusters"]
    assert cluster["id"] == trees["cluster"] and cluster["original_id"] == trees["document_id"]
    assert cluster["reasons"] and cluster["parent"] is None
    # The copies that name it as their parent, and its verified copies with their similarity.
    sohu = ids["www.sohu.com/2023/0312/656912345_121118820.html"]
    assert sohu["document_id"] in {d["id"] for d in cluster["copied_by"]}
    matches = {m["id"]: m for m in by_id["matches"]}
    assert matches[sohu["document_id"]]["jaccard"] == 1.0  # the same words, the boilerplate aside
    assert all(0 < m["jaccard"] <= 1 and 0 < m["containment"] <= 1 for m in matches.values())
    # A copy: its parent, its role, the evidence against it.
    copy = json.loads(run("doc", sohu["document_id"], "--db", db, "--json").stdout)
    assert copy["role"] == "copy"
    assert copy["clusters"][0]["parent"]["id"] == trees["document_id"]
    assert any(e["kind"] == "credits_other" for e in copy["clusters"][0]["evidence"])
    text = run("doc", sohu["document_id"], "--db", db).stdout
    assert "a copy in cluster" in text and "copied from" in text and "搜狐号 www.sohu.com" in text
    assert "青川新闻网 www.qcnews.cn" in text  # the original, with its site's name


def test_doc_of_a_compilation_a_unique_page_and_what_is_not_one_document(scanned, ids):
    _, db = scanned
    comp = json.loads(run("doc", COMPILATION, "--db", db, "--json").stdout)
    assert comp["role"] == "compilation"
    assert {c["id"] for c in comp["clusters"]} == {ids[p]["cluster"] for p in (TREES, BUS, FLOOD)}
    assert "a compilation page: it carries the stories of clusters" in run("doc", COMPILATION, "--db", db).stdout
    alone = run("doc", "feeds/crawl-20230315.jsonl#2", "--db", db)
    assert alone.exit_code == 0 and "no copy of it was found in the crawl" in alone.stdout
    r = run("doc", "feeds/crawl-20230315.jsonl", "--db", db)
    assert r.exit_code == 1 and "names 3 documents" in r.output and "feeds/crawl-20230315.jsonl#0" in r.output
    r = run("doc", "no/such/page.html", "--db", db)
    assert r.exit_code == 1
    assert (
        r.output.strip() == "Error: no document 'no/such/page.html': give an id, or a path as `dedup export` lists them"
    )


# ----------------------------------------------------------------------------- query


def test_query_by_file_and_by_text_stores_nothing(scanned, ids):
    crawl, db = scanned
    before = (digest_tree(db), row_counts(db), sorted(p.name for p in db.parent.iterdir()))
    # A crawled copy, asked about as a file: its story's cluster first, an exact copy.
    page = crawl / "www.163.com/2023/0310/HVKQ8E2M0514D8K2.html"
    r = run("query", page, "--db", db, "--json")
    assert r.exit_code == 0, r.output
    found = json.loads(r.stdout)
    assert found[0]["cluster"] == ids[BUS]["cluster"] and found[0]["original_id"] == ids[BUS]["document_id"]
    assert found[0]["similarity"] >= 0.9
    # Part of a story, pasted as text: the story's cluster, the text inside it.
    part = "。".join(DRILL.split("。")[:3]) + "。"
    r = run("query", "--text", part, "--db", db, "--json")
    top = json.loads(r.stdout)[0]
    assert top["cluster"] == ids[GOV]["cluster"] and top["original_id"] == ids[GOV]["document_id"]
    assert top["match"] in ("inside", "exact") and top["containment"] >= 0.8
    lines = run("query", "--text", part, "--db", db, "--nl").stdout.splitlines()
    assert [json.loads(x) for x in lines] == json.loads(r.stdout)
    # A page of the compilation's stories: one row per story it carries.
    r = run("query", crawl / COMPILATION, "--db", db, "--json")
    assert {m["cluster"] for m in json.loads(r.stdout)} >= {ids[p]["cluster"] for p in (TREES, BUS, FLOOD)}
    text = run("query", "--text", part, "--db", db).stdout
    assert "this text copies, most similar first" in text and "临溪县" in text
    short = run("query", "--text", "今天天气很好", "--db", db)
    assert short.exit_code == 0 and "too little text to compare" in short.stdout
    other = (
        "南屏县农业农村局近日发布春耕生产技术指导意见，提醒各地抓住晴好天气抢抓农时，做好水稻育秧和油菜田间管理。"
        "意见要求各乡镇农技人员深入田间地头，指导农户科学施肥、合理用药，防范倒春寒对早稻秧苗的不利影响。"
    )
    unrelated = run("query", "--text", other, "--db", db)
    assert "no stored document or cluster holds a copy" in unrelated.stdout
    assert run("query", "--db", db).exit_code == 2  # a FILE or --text
    assert (digest_tree(db), row_counts(db), sorted(p.name for p in db.parent.iterdir())) == before


def test_query_reads_a_file_as_a_scan_does(scanned, tmp_path):
    _, db = scanned
    fifo = tmp_path / "page.html"
    os.mkfifo(fifo)  # opened, it would block forever
    r = run("query", fifo, "--db", db)
    assert r.exit_code == 1 and r.output.strip() == f"Error: {fifo}: not a regular file (FIFO)"
    odd = tmp_path / "picture.png"
    odd.write_bytes(b"\x89PNG")
    r = run("query", odd, "--db", db)
    assert r.exit_code == 1 and "not a page dedup reads" in r.output


def test_query_without_the_candidate_index_reads_the_stored_signatures(scanned, ids, tmp_path):
    _, db = scanned
    copy = tmp_path / "d.db"
    shutil.copy(db, copy)  # no d.db.index beside it: a lost cache
    r = run("query", "--text", DRILL, "--db", copy, "--json")
    assert json.loads(r.stdout)[0]["cluster"] == ids[GOV]["cluster"]
    assert "candidate index unreadable" in r.stderr and "matched against every stored signature" in r.stderr
    assert not Path(f"{copy}.index").exists()  # not rebuilt: a query writes nothing
    r = run("query", scanned[0] / GOV, "--db", copy, "--json")  # a crawled page: found as itself
    top = json.loads(r.stdout)[0]
    assert top["match"] == "exact" and top["document_id"] == ids[GOV]["document_id"]
    assert "this text is stored as document" in r.stderr


# ----------------------------------------------------------------------------- clusters: filters, totals, JSON


def test_clusters_filters_and_totals(scanned, ids):
    _, db = scanned
    listed = lambda *a: json.loads(run("clusters", "--db", db, "--json", *a).stdout)  # noqa: E731
    everything = listed()
    assert len(everything) == 4
    qcnews = {ids[TREES]["cluster"], ids[BUS]["cluster"]}
    assert {c["id"] for c in listed("--site", "www.qcnews.cn")} == qcnews
    assert {c["id"] for c in listed("--site", "qcnews.cn")} == qcnews
    assert {c["id"] for c in listed("--site", "青川日报")} == qcnews  # a name of the site
    assert [c["id"] for c in listed("--since", "2024-01-01")] == [ids[GOV]["cluster"]]
    assert {c["id"] for c in listed("--until", "2023-03-10")} == {ids[FLOOD]["cluster"], ids[BUS]["cluster"]}
    assert [c["id"] for c in listed("--since", "2023-03-10 18:00", "--until", "2023-03-10 18:00")] == [
        ids[BUS]["cluster"]
    ]
    assert [c["id"] for c in listed("--min-size", "5")] == [ids[TREES]["cluster"]]
    assert len(listed("--new")) == 4  # the only scan made them all
    r = run("clusters", "--db", db, "-n", "2")
    assert r.stdout.splitlines()[0].startswith("showing 2 of 4 clusters, largest first")
    r = run("clusters", "--db", db, "--site", "qcnews.cn", "-n", "1")
    assert r.stdout.splitlines()[0].startswith("showing 1 of 2 clusters on qcnews.cn, largest first")
    r = run("clusters", "--db", db, "--site", "nowhere.example")
    assert r.exit_code == 1 and "no site of the crawl is called 'nowhere.example'" in r.output
    r = run("clusters", "--db", db, "--since", "March")
    assert r.exit_code == 2 and "is not a date" in r.output
    assert run("clusters", "--db", db, "--min-size", "9").stdout.startswith("0 clusters of 9+ documents")


def test_new_lists_what_the_last_scan_changed(scanned, tmp_path, ids):
    crawl, db = scanned
    crawl2, db2 = tmp_path / "crawl", tmp_path / "d.db"
    shutil.copytree(crawl, crawl2)
    shutil.copy(db, db2)
    shutil.copytree(Path(f"{db}.index"), Path(f"{db2}.index"))
    src = (crawl2 / "www.sohu.com/2023/0310/657034118_120986420.html").read_bytes()
    page = crawl2 / "www.toutiao.com/2023/0311/1.html"
    page.parent.mkdir(parents=True)
    page.write_bytes(src.replace(b"2023-03-10", b"2023-03-11"))
    assert run("scan", crawl2, "--db", db2, "--jobs", "1").exit_code == 0
    new = json.loads(run("clusters", "--db", db2, "--new", "--json").stdout)
    assert [c["id"] for c in new] == [ids[FLOOD]["cluster"]]
    shown = json.loads(run("show", ids[FLOOD]["cluster"], "--db", db2, "--json").stdout)
    assert shown["history"][-1]["detail"] == "+1 document"  # not "1 documents"
    assert "new or changed in run 2" in run("clusters", "--db", db2, "--new").stdout


@pytest.mark.parametrize("command", [["clusters"], ["runs"], ["skipped"], ["boilerplate"]])
def test_json_is_one_array_and_nl_one_object_a_line(scanned, command):
    _, db = scanned
    array = run(*command, "--db", db, "--json")
    assert array.exit_code == 0
    rows = json.loads(array.stdout)
    assert isinstance(rows, list)
    lines = run(*command, "--db", db, "--nl").stdout.splitlines()
    assert [json.loads(x) for x in lines] == rows
    r = run(*command, "--db", db, "--json", "--nl")
    assert r.exit_code == 2 and "choose one" in r.output


def test_empty_skipped_and_boilerplate_say_so(scanned):
    _, db = scanned
    r = run("skipped", "--db", db)
    assert r.stdout == "" and "nothing skipped" in r.stderr
    r = run("boilerplate", "--db", db, "--site", "www.qcnews.cn")
    assert r.stdout == "" and "no boilerplate learned for www.qcnews.cn" in r.stderr
    assert run("skipped", "--db", db, "--json").stdout.strip() == "[]"


def test_runs_heading_counts_them(scanned):
    _, db = scanned
    assert run("runs", "--db", db).stdout.startswith("1 run, newest first")


# ----------------------------------------------------------------------------- 80 columns


def test_everything_fits_80_columns_and_keeps_the_original_site(scanned, ids, monkeypatch):
    crawl, db = scanned
    narrow(monkeypatch)
    outputs = {
        "clusters": run("clusters", "--db", db).stdout,
        "runs": run("runs", "--db", db).stdout,
        "query": run("query", crawl / SOHU, "--db", db).stdout,
    }
    for path in (TREES, BUS, FLOOD, GOV):
        outputs[f"show {path}"] = run("show", ids[path]["cluster"], "--db", db).stdout
    for path in (TREES, COMPILATION, SOHU, "feeds/crawl-20230315.jsonl#2"):
        outputs[f"doc {path}"] = run("doc", path, "--db", db).stdout
    for name, out in outputs.items():
        assert out.strip(), name
        assert not long_lines(out), (name, long_lines(out))
        assert "origin…" not in out and "publi…" not in out, name
    # The original's site, whole, with its Chinese name.
    assert "www.qingchuan.gov.cn" in outputs["clusters"] and "青川市人民政府" in outputs["clusters"]
    assert "www.qingchuan.gov.cn" in outputs[f"show {FLOOD}"]
    assert "original: 青川市人民政府 www.qingchuan.gov.cn" in outputs[f"show {FLOOD}"]
    assert "www.linxi-xian.gov.cn" in outputs["clusters"]
    # The same views straight from the report functions, on a recording console.
    console = Console(width=80, record=True)
    store = Store(db, readonly=True)
    try:
        rows, total = store.cluster_page(2)
        print_clusters(console, rows, total)
        for c in store.clusters():
            full = store.cluster(c["id"])
            print_cluster(console, full)
            print_history(console, store.history(c["id"]), c["id"])
        print_runs(console, store.runs(), store.run_count())
        print_doc(console, store.document_story(ids[COMPILATION]["document_id"]))
    finally:
        store.close()
    text = console.export_text()
    assert not long_lines(text), long_lines(text)
    assert text.startswith("showing 2 of 4 clusters, largest first")


def test_cells_not_characters_are_counted():
    assert safe("青川市林业局启动春季义务植树", 9).plain == "青川市林…"  # 8 cells and the ellipsis
    assert cell_len(safe("青川市林业局启动春季义务植树", 9).plain) <= 9
    assert safe("abc", 9).plain == "abc"


# ----------------------------------------------------------------------------- words


def test_reasons_and_evidence_read_in_plain_words(scanned, ids, monkeypatch):
    _, db = scanned
    shown = json.loads(run("show", ids[FLOOD]["cluster"], "--db", db, "--json").stdout)
    reasons = " | ".join(shown["reasons"])
    assert "the earliest publish time of the cluster, 2023-03-09 17:20" in reasons and "(time)" not in reasons
    assert "next best: " in reasons  # the runner-up is named
    narrow(monkeypatch)
    text = run("show", ids[FLOOD]["cluster"], "--db", db).stdout
    assert "+0.0" not in text  # evidence that weighs nothing is not a row
    assert "confidence 0.99 (high)" in text


def test_a_credited_source_in_the_crawl_is_not_said_to_be_outside_it():
    def doc(i, site, credits=()):
        return DocInfo(i, f"{site}/{i}.html", site, f"https://{site}/{i}", "", "标题", "2023-07-03T10:00:00+08:00",
                       1.0, list(credits), [])  # fmt: skip

    copies = [doc(1, "www.sohu.com", ["青川日报"]), doc(2, "www.163.com", ["青川日报"])]
    paper = doc(3, "www.qcnews.cn")
    by_site = {d.site: [d] for d in [*copies, paper]}
    profiles = profile_sites(by_site, {"www.qcnews.cn": [["青川日报"]]}, load_sources())
    a = pick_original({d.doc_id: ROLE_COPY for d in copies}, {d.doc_id: d for d in copies}, profiles)
    assert a.external_source == "青川日报"
    assert a.reasons[0] == "2 copies credit 青川日报, which is a site of the crawl (www.qcnews.cn) that holds no copy"


def test_a_tie_says_so(monkeypatch):
    console = Console(width=80, record=True)
    row = {"id": 7, "size": 2, "original_id": 3, "original_site": "www.a-daily.cn", "original_site_names": ["甲日报"],
           "title": "两家同时发布", "first_published": "2023-07-03T10:00:00+08:00", "confidence": 0.5, "tie": True,
           "sites": ["www.a-daily.cn", "www.b-daily.cn"]}  # fmt: skip
    print_clusters(console, [row])
    text = console.export_text()
    assert " tie " in text and "甲日报" in text and "www.a-daily.cn" in text


# ----------------------------------------------------------------------------- hostile page text


def test_hostile_titles_are_printed_as_plain_text(scanned, ids, monkeypatch):
    crawl, db = scanned
    cid = ids[GOV]["cluster"]
    views = {
        "clusters": run("clusters", "--db", db).stdout,
        "show": run("show", cid, "--db", db).stdout,
        "doc": run("doc", GOV, "--db", db).stdout,
        "query": run("query", crawl / SOHU, "--db", db).stdout,
    }
    narrow(monkeypatch)
    views["show 80"] = run("show", cid, "--db", db).stdout
    views["doc 80"] = run("doc", GOV, "--db", db).stdout
    for name, out in views.items():
        assert "\x1b" not in out, name  # the page's escape is gone, and nothing else styles a pipe
        assert "[/bold red]" in out and "[31m" in out, name  # rich markup and the rest as text
    for name in ("show", "doc", "query", "clusters"):
        assert '<script>alert("x")</script>' in views[name], name
    # On a terminal rich styles its own words, never the page's.
    console = Console(width=80, force_terminal=True, color_system="truecolor", record=True)
    store = Store(db, readonly=True)
    try:
        print_cluster(console, store.cluster(cid))
        print_doc(console, store.document_story(ids[GOV]["document_id"]))
        print_query(console, [{"query": "x", "title": HOSTILE, "status": "ok", "note": "", "matches": []}])
    finally:
        store.close()
    plain = console.export_text(styles=False)
    assert "[bold red]临溪县[/bold red]" in plain and "\x1b[31m山洪" not in console.export_text(styles=True)


# ----------------------------------------------------------------------------- help, logging, progress


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from dedup.cli import cli\n"
        "for args in ([], ['clusters'], ['show'], ['doc'], ['query'], ['scan'], ['runs']):\n"
        "    try:\n"
        "        cli.main([*args, '--help'], prog_name='dedup', standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('numpy', 'scipy', 'datasketch', 'sqlite_utils', 'rich', 'jieba', 'opencc', 'dedup.pipeline',\n"
        "         'dedup.store')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_every_command_of_these_views_has_examples():
    for name in ("scan", "clusters", "show", "doc", "query", "export", "skipped", "boilerplate", "runs"):
        cmd = cli.commands[name]
        assert "Example" in (cmd.epilog or "") + (cmd.help or ""), name


def test_verbose_logs_stage_timings_to_stderr(tmp_path):
    crawl = tmp_path / "crawl"
    add_drill(crawl)
    r = run("-v", "scan", crawl, "--db", tmp_path / "d.db", "--jobs", "1", "--quiet")
    assert r.exit_code == 0
    assert "INFO dedup.cli: stage read:" in r.stderr and "INFO dedup.cli: stage cluster:" in r.stderr
    assert "INFO dedup.cli: read: started at +" in r.stderr
    assert r.stdout == ""
    quiet = run("scan", crawl, "--db", tmp_path / "e.db", "--jobs", "1", "--quiet")
    assert quiet.stderr == ""


def test_progress_bar_spins_for_a_stage_of_unknown_size():
    with cli_module._progress_bar(Path("crawl"), cli_module._StageLog()) as progress:
        progress("read", 1, 2)
        progress("read", 2, 2)
        progress("cluster", 0, 1)  # clustering: no count, a spinner and its elapsed time
        progress("cluster", 1, 1)
