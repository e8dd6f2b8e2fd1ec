"""End to end: the real CLI on crawls written to disk, a real SQLite file, exact clusters."""

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup.cli import cli
from tests.conftest import COMPILATION, EXAMPLE, EXPECTED_CLUSTERS, UNIQUE


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def export_rows(db: Path) -> dict[str, dict]:
    r = run("export", "--db", db, "--format", "jsonl")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    return {row["path"]: row for row in rows}


def clusters_of(rows: dict[str, dict]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for path, row in rows.items():
        if row["cluster"] is not None and row["role"] != "compilation":
            out.setdefault(row["cluster"], set()).add(path)
    return out


def test_scan_sample_crawl_gives_exact_clusters_and_originals(crawl, tmp_path):
    db = tmp_path / "d.db"
    r = run("scan", crawl, "--db", db, "--jobs", "1")
    assert r.exit_code == 0, r.output
    # Not a terminal (cron, a pipe): one line.
    assert r.output.startswith(
        "dedup: 14 documents (12 files read, 0 unchanged, 0 gone), 3 clusters (3 new, 0 grown, 0 merged), "
        "1 compilation page, 0 skipped"
    )
    rows = export_rows(db)
    got = clusters_of(rows)
    assert sorted(map(sorted, got.values())) == sorted(map(sorted, EXPECTED_CLUSTERS.values()))
    for original in EXPECTED_CLUSTERS:
        cid = rows[original]["cluster"]
        flagged = [p for p, row in rows.items() if row["cluster"] == cid and row["original"]]
        assert flagged == [original]
        assert rows[original]["role"] == "original"
    # The compilation belongs to all three stories and never joins them.
    comp = rows[COMPILATION]
    assert comp["role"] == "compilation" and comp["original"] is False
    assert {comp["cluster"], *comp["contains"]} == {rows[o]["cluster"] for o in EXPECTED_CLUSTERS}
    for path in UNIQUE:
        assert rows[path]["cluster"] is None and rows[path]["original"] is True
    # The five stable keys and the metadata.
    gov = rows["www.qingchuan.gov.cn/2023/0309/art_1021_58731.html"]
    assert list(gov)[:5] == ["path", "cluster", "original", "contains", "role"]
    assert gov["site"] == "www.qingchuan.gov.cn"
    assert gov["published_at"] == "2023-03-09T17:20:00+08:00"
    assert gov["title"] == "青川市举行2023年防汛抢险综合应急演练"


def test_rescan_reads_only_new_files_and_keeps_cluster_ids(crawl, tmp_path):
    db = tmp_path / "d.db"
    assert run("scan", crawl, "--db", db, "--jobs", "1").exit_code == 0
    before = export_rows(db)
    r = run("scan", crawl, "--db", db, "--json")
    summary = json.loads(r.output)
    assert summary["files_new"] == 0 and summary["files_unchanged"] == 12
    assert "cluster" not in summary["stage_seconds"]  # nothing new: the clusters stand
    assert summary["clusters"] == 3 and summary["compilations"] == 1
    assert export_rows(db) == before
    # Other clustering settings recompute the clusters from the stored signatures.
    summary = json.loads(run("scan", crawl, "--db", db, "--json", "--threshold", "0.6").output)
    assert "cluster" in summary["stage_seconds"] and summary["files_new"] == 0
    # A new repost arrives: only it is read, and it joins its story's existing cluster.
    src = crawl / "www.sohu.com/2023/0312/656912345_121118820.html"
    new = crawl / "www.toutiao.com/2023/0313/7210000000000000001.html"
    new.parent.mkdir(parents=True)
    new.write_bytes(src.read_bytes().replace(b"2023-03-12 14:05", b"2023-03-13 09:00"))
    summary = json.loads(run("scan", crawl, "--db", db, "--json").output)
    assert summary["files_new"] == 1
    after = export_rows(db)
    key = "www.toutiao.com/2023/0313/7210000000000000001.html"
    assert after[key]["cluster"] == before["www.qcnews.cn/2023/0312/1000234567.html"]["cluster"]
    assert after[key]["original"] is False


def test_bad_files_are_recorded_and_do_not_stop_the_scan(crawl, tmp_path):
    (crawl / "bad").mkdir()
    (crawl / "bad/binary.html").write_bytes(bytes(range(256)) * 40)
    (crawl / "bad/broken.json").write_text('{"title": "x", ', encoding="utf-8")
    (crawl / "bad/empty.txt").write_bytes(b"")
    good = (crawl / "feeds/crawl-20230315.jsonl").read_text(encoding="utf-8").splitlines()
    (crawl / "bad/feed.jsonl").write_text(good[1] + "\n{not json\n" + good[2] + "\n", encoding="utf-8")
    (crawl / "bad/picture.png").write_bytes(b"\x89PNG")
    db = tmp_path / "d.db"
    r = CliRunner().invoke(cli, ["scan", str(crawl), "--db", str(db), "--jobs", "1", "--quiet"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert "skipped bad/binary.html: binary content (NUL bytes), not a text page" in lines
    assert "skipped bad/empty.txt: empty file" in lines
    assert any(line.startswith("skipped bad/broken.json: ") for line in lines)
    assert any(line.startswith("skipped bad/feed.jsonl#1: line 2: ") for line in lines)
    rows = export_rows(db)
    assert "bad/feed.jsonl#0" in rows and "bad/feed.jsonl#2" in rows
    # The feed's two good lines are exact copies of the sample feed's unique stories.
    assert len(clusters_of(rows)) == 5
    assert rows["bad/feed.jsonl#0"]["cluster"] == rows["feeds/crawl-20230315.jsonl#1"]["cluster"]
    r = run("skipped", "--db", db)
    assert "bad/broken.json" in r.output


def test_clusters_and_show(crawl, tmp_path):
    db = tmp_path / "d.db"
    run("scan", crawl, "--db", db, "--jobs", "1")
    rows = export_rows(db)
    cid = rows["www.qcnews.cn/2023/0312/1000234567.html"]["cluster"]
    r = run("clusters", "--db", db, "--json")
    listed = json.loads(r.output)  # one array
    assert [json.loads(line) for line in run("clusters", "--db", db, "--nl").output.splitlines()] == listed
    assert [c["size"] for c in listed] == sorted((c["size"] for c in listed), reverse=True)
    assert any(c["id"] == cid and c["original_site"] == "www.qcnews.cn" for c in listed)
    r = run("show", cid, "--db", db)
    assert r.exit_code == 0
    assert "original" in r.output and "propagation" in r.output and "www.qcnews.cn" in r.output
    shown = json.loads(run("show", cid, "--db", db, "--json").output)
    assert shown["reasons"] and 0 < shown["confidence"] <= 1
    roles = {m["path"]: m["role"] for m in shown["members"]}
    assert roles["www.qcnews.cn/2023/0312/1000234567.html"] == "original"
    assert roles[COMPILATION] == "compilation"


def test_export_csv_to_file(crawl, tmp_path):
    db = tmp_path / "d.db"
    run("scan", crawl, "--db", db, "--jobs", "1")
    out = tmp_path / "out.csv"
    assert run("export", "--db", db, "--format", "csv", "-o", out).exit_code == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbfpath,")  # a BOM: Excel then reads UTF-8
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 14
    assert rows[0].keys() >= {"path", "cluster", "original", "contains", "role", "site", "url", "title", "published_at"}
    assert {r["original"] for r in rows} == {"true", "false"}
    copies = [r for r in rows if r["role"] == "copy"]
    assert copies and all(r["document_id"] and r["similarity"] and r["confidence"] for r in copies)
    assert any(r["parent_id"] for r in copies)


def test_escaped_ampersands_in_a_records_url_are_undone(tmp_path):
    crawl = tmp_path / "crawl" / "feeds"
    crawl.mkdir(parents=True)
    record = {
        "url": "https://baijiahao.baidu.com/s?id=1780000000000000001&amp;wfr=spider&amp;for=pc",
        "title": "临溪县举行防汛应急演练",
        "content": "临溪县消息 6月5日上午，临溪县在城南河段举行防汛应急演练。" * 5,
    }
    (crawl / "bjh.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "d.db"
    assert run("scan", tmp_path / "crawl", "--db", db, "--jobs", "1").exit_code == 0
    (row,) = export_rows(db).values()
    assert row["url"] == "https://baijiahao.baidu.com/s?id=1780000000000000001&wfr=spider&for=pc"


def test_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["show", "1", "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 1
    assert (
        r.output.strip()
        == f"Error: no database at {tmp_path / 'none.db'}: run `dedup scan CRAWL_DIR --db {tmp_path / 'none.db'}` first"
    )
    r = CliRunner().invoke(cli, ["scan", str(tmp_path / "missing"), "--db", str(tmp_path / "d.db")])
    assert r.exit_code == 2
    assert f"Error: CRAWL_DIR {tmp_path / 'missing'} is not a directory" in r.output


def test_show_unknown_cluster(crawl, tmp_path):
    db = tmp_path / "d.db"
    run("scan", crawl, "--db", db, "--jobs", "1")
    r = CliRunner().invoke(cli, ["show", "999", "--db", str(db)])
    assert r.exit_code == 1
    assert r.output.strip() == "Error: no cluster 999: `dedup clusters` lists them"


def test_every_command_and_option_has_help():
    for name, cmd in cli.commands.items():
        assert cmd.help, name
        for p in cmd.params:
            if p.param_type_name == "option":
                assert p.help, f"{name} {p.name}"


@pytest.mark.skipif(not EXAMPLE.exists(), reason="../shared/examples not beside the checkout")
def test_example_compilation_joins_its_three_stories(tmp_path):
    """The real example page: three 2023 stories reposted together in 2024 on a content farm."""
    text = EXAMPLE.read_text(encoding="utf-8")
    body = text.split("\n\n", 1)[1]
    # Its three stories, cut at their headlines, become three 2023 originals on a publisher site.
    heads = [
        "党建领航 创新未来 ——上饶市科技局推动党建与业务工作同频共振",
        "车间开启“直播带岗”",
        "发扬主人翁精神 干出第一等工作",
    ]
    parts = []
    for i, h in enumerate(heads):
        start = body.index(h) + len(h)
        end = body.index(heads[i + 1]) if i + 1 < len(heads) else body.index("发布于:")
        parts.append((h, body[start:end].strip()))
    crawl = tmp_path / "crawl"
    for i, (h, story) in enumerate(parts):
        p = crawl / f"www.example-daily.cn/2023/070{i + 1}/{i + 1}.html"
        p.parent.mkdir(parents=True)
        paras = "".join(f"<p>{line.strip()}</p>" for line in story.splitlines() if line.strip())
        p.write_text(
            f'<html><head><meta charset="utf-8"><title>{h}_示例日报</title>'
            f'<meta name="publishdate" content="2023-07-0{i + 1} 08:00"></head>'
            f'<body><h1>{h}</h1><div class="content">{paras}</div></body></html>',
            encoding="utf-8",
        )
        # Another platform's copy of each story.
        q = crawl / f"www.163.com/2023/070{i + 2}/c{i}.json"
        q.parent.mkdir(parents=True, exist_ok=True)
        q.write_text(json.dumps({"url": f"https://www.163.com/dy/article/c{i}.html", "title": h, "content": story,
                                 "publish_time": f"2023-07-0{i + 2} 10:00", "source": "示例日报"},
                                ensure_ascii=False), encoding="utf-8")  # fmt: skip
    farm = crawl / "www.zgcwenda-example.com/2024/0523/1.txt"
    farm.parent.mkdir(parents=True)
    shutil.copy(EXAMPLE, farm)
    db = tmp_path / "d.db"
    assert run("scan", crawl, "--db", db, "--jobs", "1").exit_code == 0
    rows = export_rows(db)
    got = clusters_of(rows)
    assert len(got) == 3
    for i in range(3):
        orig = f"www.example-daily.cn/2023/070{i + 1}/{i + 1}.html"
        assert rows[orig]["original"] is True
        assert got[rows[orig]["cluster"]] == {orig, f"www.163.com/2023/070{i + 2}/c{i}.json"}
    ex = rows["www.zgcwenda-example.com/2024/0523/1.txt"]
    assert ex["role"] == "compilation" and ex["original"] is False
    assert {ex["cluster"], *ex["contains"]} == set(got)


def test_traditional_big5_repost_joins_its_simplified_cluster(crawl, tmp_path):
    import opencc

    src = (crawl / "www.qcnews.cn/2023/0312/1000234567.html").read_text(encoding="utf-8")
    trad = opencc.OpenCC("s2t.json").convert(src).replace('charset="utf-8"', 'charset="big5"')
    page = crawl / "www.hk-news.com.hk/2023/0313/1.html"
    page.parent.mkdir(parents=True)
    page.write_bytes(trad.encode("big5hkscs", errors="replace").replace(b"2023-03-12 08:30", b"2023-03-13 10:00"))
    db = tmp_path / "d.db"
    assert run("scan", crawl, "--db", db, "--jobs", "1").exit_code == 0
    rows = export_rows(db)
    key = "www.hk-news.com.hk/2023/0313/1.html"
    assert rows[key]["cluster"] == rows["www.qcnews.cn/2023/0312/1000234567.html"]["cluster"]
    assert rows[key]["original"] is False
    assert "青川" in rows[key]["title"] and "植樹" in rows[key]["title"]  # stored as published


def test_warc_and_gzip_pages_join_their_clusters(crawl, tmp_path):
    import gzip as gz

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    repost = (crawl / "www.sohu.com/2023/0312/656912345_121118820.html").read_bytes()
    bus = (crawl / "www.163.com/2023/0310/HVKQ8E2M0514D8K2.html").read_bytes().removeprefix(b"\xef\xbb\xbf")
    warc = crawl / "warcs/crawl-20230315.warc.gz"
    warc.parent.mkdir()
    with warc.open("wb") as f:
        w = WARCWriter(f, gzip=True)
        for url, body in (("https://m.sohu.com/a/656912345_121118820", repost), ("https://m.163.com/dy/x.html", bus)):
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            rec = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers)
            w.write_record(rec)
    page = crawl / "www.toutiao.com/2023/0313/1.html.gz"
    page.parent.mkdir(parents=True)
    page.write_bytes(gz.compress(repost.replace(b"2023-03-12 14:05", b"2023-03-13 09:00")))
    (crawl / "www.toutiao.com/2023/0313/bomb.html.gz").write_bytes(gz.compress(b"\0" * (70 * 2**20)))
    db = tmp_path / "d.db"
    r = CliRunner().invoke(cli, ["scan", str(crawl), "--db", str(db), "--jobs", "1", "--quiet"])
    assert r.exit_code == 0
    assert (
        "skipped www.toutiao.com/2023/0313/bomb.html.gz: gzip expands beyond 64 MiB (possible gzip bomb); skipped"
        in r.output
    )
    rows = export_rows(db)
    trees = rows["www.qcnews.cn/2023/0312/1000234567.html"]["cluster"]
    bus_cluster = rows["www.qcnews.cn/2023/0310/1000233918.html"]["cluster"]
    assert rows["warcs/crawl-20230315.warc.gz#0"]["cluster"] == trees
    assert rows["warcs/crawl-20230315.warc.gz#0"]["site"] == "m.sohu.com"
    assert rows["warcs/crawl-20230315.warc.gz#0"]["url"] == "https://m.sohu.com/a/656912345_121118820"
    assert rows["warcs/crawl-20230315.warc.gz#1"]["cluster"] == bus_cluster
    conn = sqlite3.connect(db)
    fetched = conn.execute("SELECT fetched_at FROM documents WHERE path = 'warcs/crawl-20230315.warc.gz#0'").fetchone()[
        0
    ]
    assert fetched and fetched.startswith("20")
    assert rows["www.toutiao.com/2023/0313/1.html.gz"]["cluster"] == trees
    assert rows["www.qcnews.cn/2023/0312/1000234567.html"]["original"] is True


def test_many_bad_files_are_summed_up(tmp_path):
    crawl = tmp_path / "c"
    crawl.mkdir()
    for i in range(25):
        (crawl / f"bad{i:02d}.json").write_text("{", encoding="utf-8")
    (crawl / "logo.png").write_bytes(b"\x89PNG")
    db = tmp_path / "d.db"
    r = CliRunner().invoke(cli, ["scan", str(crawl), "--db", str(db), "--quiet"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert len([x for x in lines if x.startswith("skipped bad")]) == 20
    assert lines[-1] == f"skipped 5 more files or records in this run: `dedup skipped --db {db}` lists them all"
    assert len(run("skipped", "--db", db).output.splitlines()) == 25


def test_version_names_the_code_it_runs():
    """A benchmark can run another checkout's dedup: --version says which one was imported."""
    import dedup

    r = run("--version")
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"dedup, version {dedup.__version__} (from ")
    assert f"from {Path(dedup.__file__).resolve().parent}, Python 3." in r.output
