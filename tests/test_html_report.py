"""`dedup report --html`: the static report, through the real CLI on crawls written to disk."""

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup.cli import cli
from dedup.html_report import TimeAxis, clean, diff_texts, epoch, link_url, script_json
from dedup.store.results import SiteRole
from tests.conftest import BUS, COMPILATION, EXPECTED_CLUSTERS, FLOOD, SAMPLE, TREES


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    """The sample crawl scanned once for the whole module."""
    tmp = tmp_path_factory.mktemp("sample")
    crawl = tmp / "crawl"
    shutil.copytree(SAMPLE, crawl, ignore=shutil.ignore_patterns("*.md"))
    db = tmp / "d.db"
    r = run("scan", crawl, "--db", db, "--jobs", "1", "--quiet")
    assert r.exit_code == 0, r.output
    return db


def exported(db: Path) -> dict[str, dict]:
    r = run("export", "--db", db)
    return {row["path"]: row for row in map(json.loads, r.stdout.splitlines())}


def test_report_of_the_sample_crawl(sample_db, tmp_path):
    out = tmp_path / "report"
    r = run("report", "--html", out, "--db", sample_db)
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"dedup: report of 3 clusters written to {out / 'index.html'} (4 files, ")
    assert files_under(out) == {"index.html", "c", "c/1.html", "c/2.html", "c/3.html"}
    rows = exported(sample_db)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in index and "共 3 个聚类" in index
    blob = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', index).group(1))
    assert sorted(row["id"] for row in blob["rows"]) == [1, 2, 3]
    by_id = {row["id"]: row for row in blob["rows"]}
    for original in EXPECTED_CLUSTERS:
        cid = rows[original]["cluster"]
        row = by_id[cid]
        assert row["orig"] == original.split("/")[0] and row["conf"] > 0.9
        assert f'href="c/{cid}.html"' in index  # the first page is in the HTML too, for browsers without JS
        page = (out / f"c/{cid}.html").read_text(encoding="utf-8")
        # The verdict first, in plain words, with the site's Chinese name.
        verdict = re.search(r'<div class="verdict" id="verdict">(.*?)</div>', page).group(1)
        name = {"www.qcnews.cn": "青川新闻网", "www.qingchuan.gov.cn": "青川市人民政府"}[row["orig"]]
        assert verdict.startswith(f"<strong>原始来源: {name}")
        assert "可信度高" in verdict and " — 因为 " in verdict
        # The original's row is marked; every member is listed; the compilation is under each story.
        doc_id = rows[original]["document_id"]
        assert re.search(rf'<tr class="original" id="m{doc_id}">.*?★ 原始来源', page)
        for path in EXPECTED_CLUSTERS[original]:
            assert f"{path}</td>" in page
        assert rows[COMPILATION]["document_id"] in {
            int(m) for m in re.findall(r'<tr class="compilation" id="m(\d+)"', page)
        }
        others = {rows[o]["cluster"] for o in EXPECTED_CLUSTERS} - {cid}
        compilations = page[page.index('id="compilations"') : page.index('id="propagation"')]
        assert all(f'href="{k}.html"' in compilations for k in others)
        # Propagation, timeline and one diff per other member.
        assert '<ul class="tree">' in page and "<svg" in page and page.count('<circle class="dot') == row["size"]
        assert page.count('<details class="diff"') == row["size"] - 1
    # The truncated and retitled copy of the tree story: the diff says so and marks the words.
    trees = (out / f"c/{rows[TREES]['cluster']}.html").read_text(encoding="utf-8")
    diff = trees[trees.index(f'id="diff-{rows["www.163.com/2023/0312/HVQ3K9QF05149C8E.html"]["document_id"]}"') :]
    diff = diff[: diff.index("</details>")]
    assert "标题改动" in diff and "结尾截去 1 段" in diff and "<del>" in diff and "<ins>" in diff
    assert '<tr class="d-cut">' in diff and '<tr class="d-same">' in diff
    # The Sohu repost adds its 原标题 line and platform boilerplate.
    sohu = trees[trees.index(f'id="diff-{rows["www.sohu.com/2023/0312/656912345_121118820.html"]["document_id"]}"') :]
    sohu = sohu[: sohu.index("</details>")]
    assert '<tr class="d-boilerplate">' in sohu and "原标题" in sohu


def test_english_labels(sample_db, tmp_path):
    out = tmp_path / "en"
    assert run("report", "--html", out, "--lang", "en", "--db", sample_db).exit_code == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in index and "3 clusters" in index and "个聚类" not in index
    cid = exported(sample_db)[BUS]["cluster"]
    page = (out / f"c/{cid}.html").read_text(encoding="utf-8")
    verdict = (
        r'<strong>Original source: 青川新闻网 <span class="host">www.qcnews.cn</span></strong> '
        r'\(<span class="badge high">high confidence 0\.\d\d</span>\) — because publisher site'
    )
    assert re.search(verdict, page)
    assert "Against the original" in page and "原始来源" not in page


def test_a_second_report_replaces_the_first(sample_db, tmp_path):
    out = tmp_path / "report"
    (out / "c").mkdir(parents=True)
    (out / "c/999.html").write_text("a cluster that is gone", encoding="utf-8")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert run("report", "--html", out, "--db", sample_db).exit_code == 0
    assert run("report", "--html", out, "--db", sample_db).exit_code == 0
    assert files_under(out) == {"index.html", "notes.txt", "c", "c/1.html", "c/2.html", "c/3.html"}


def test_refuses_to_write_through_a_symbolic_link(sample_db, tmp_path):
    out, elsewhere = tmp_path / "report", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "c").symlink_to(elsewhere)
    r = run("report", "--html", out, "--db", sample_db)
    assert r.exit_code == 1
    assert r.output == f"Error: {out / 'c'} is a symbolic link: the report is written only inside its folder\n"
    assert not any(elsewhere.iterdir()) and not (out / "index.html").exists()


def test_errors_are_one_line(tmp_path):
    r = run("report", "--html", tmp_path / "r", "--db", tmp_path / "missing.db")
    assert r.exit_code == 1 and r.output.startswith("Error: ") and r.output.count("\n") == 1
    r = run("report", "--db", tmp_path / "missing.db")
    assert r.exit_code == 2 and "Missing option '--html'" in r.output
    (tmp_path / "file").write_text("x", encoding="utf-8")
    r = run("report", "--html", tmp_path / "file", "--db", tmp_path / "missing.db")
    assert r.exit_code == 2


# ---------------------------------------------------------------------------- a hostile crawl

STORY = [
    "本报讯 3月18日上午，青川市在滨江广场举行2024年“全民读书月”启动仪式，"
    "市图书馆、市新华书店和各区县文化馆共设展位46个。",
    "据市文化广电旅游局介绍，读书月期间全市将举办名家讲座12场、亲子阅读活动80余场，"
    "新建“城市书房”9处，全部免费向市民开放。",
    "市图书馆馆长李文静表示，今年的新书借阅实行“你选书、我买单”，"
    "市民在合作书店选购图书后可直接办理借阅，读完归还图书馆即可。",
    "启动仪式上，主办方还为15个“书香家庭”和8个“书香社区”颁发了证书。活动将持续到4月23日世界读书日。",
]
HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_NAME = "<img src=x onerror=alert(2)>"


def html_page(title: str, paragraphs: list[str], published: str, canonical: str = "", site_name: str = "") -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    meta = f'<meta property="og:site_name" content="{site_name}">' if site_name else ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>{link}{meta}'
        f'<meta name="publishdate" content="{published}"></head><body><div class="article">'
        f"<h1>{title}</h1>{body}</div></body></html>"
    )


def write_hostile_crawl(crawl: Path) -> None:
    """A story whose original has a <script> title and a hostile site name, its copies a
    javascript: canonical link, a title with quotes and markup, and terminal escapes."""
    pages = {
        "www.qcwh.gov.cn/2024/0318/art_1.html": html_page(
            HOSTILE_TITLE, STORY, "2024-03-18 10:00", "http://www.qcwh.gov.cn/2024/0318/art_1.html", HOSTILE_NAME
        ),
        "www.sohu.com/2024/0318/a_1.html": html_page(
            "青川“全民读书月”启动 &lt;b&gt;新建&lt;/b&gt;城市书房9处 &amp; \x1b[31m红字\x1b[0m",
            ["来源：青川市文化广电旅游局", *STORY, "返回搜狐，查看更多"],
            "2024-03-18 15:00",
            "javascript://www.sohu.com/%0Aalert(3)",
        ),
        "www.163.com/2024/0319/b_1.html": html_page(
            '青川启动全民读书月\', "quoted" &lt;!-- x --&gt; ]]>',
            STORY[:3],
            "2024-03-19 09:00",
            "javascript:alert(1)",
        ),
    }
    for rel, text in pages.items():
        (crawl / rel).parent.mkdir(parents=True, exist_ok=True)
        (crawl / rel).write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The hostile crawl scanned and reported: (the work folder, the database, OUT_DIR)."""
    tmp = tmp_path_factory.mktemp("hostile")
    crawl = tmp / "crawl"
    write_hostile_crawl(crawl)
    db = tmp / "d.db"
    assert run("scan", crawl, "--db", db, "--jobs", "1", "--quiet").exit_code == 0
    before = files_under(tmp)
    out = tmp / "out"
    r = run("report", "--html", out, "--db", db)
    assert r.exit_code == 0, r.output
    # Nothing written outside OUT_DIR (but SQLite's own -wal/-shm files beside the database, which any
    # reader of a WAL database makes).
    new = {f for f in files_under(tmp) - before if not f.startswith("d.db-")}
    assert new == {"out", *(f"out/{f}" for f in files_under(out))}
    return tmp, db, out


def test_hostile_pages_are_shown_as_text(hostile):
    tmp, db, out = hostile
    rows = exported(db)
    assert rows["www.qcwh.gov.cn/2024/0318/art_1.html"]["title"] == HOSTILE_TITLE  # the crawl kept it as text
    assert rows["www.sohu.com/2024/0318/a_1.html"]["url"] == "javascript://www.sohu.com/%0Aalert(3)"
    (cid,) = {r["cluster"] for r in rows.values()}
    assert files_under(out) == {"index.html", "c", f"c/{cid}.html"}  # file names from integer ids only
    for path in (out / "index.html", out / f"c/{cid}.html"):
        page = path.read_text(encoding="utf-8")
        lower = page.lower()
        assert HOSTILE_TITLE not in page and "alert(1)</script>" not in page
        assert "<img" not in lower and "<b>" not in lower and "<!-- x" not in page and "\x1b" not in page
        assert "javascript" not in lower  # not a link, and not shown: the title stands for the page
        # Only the report's own scripts: a JSON blob and the index script, allowed by their hash.
        assert lower.count("<script") == (2 if path.name == "index.html" else 0)
        assert "content=\"default-src 'none'; style-src 'sha256-" in page
    page = (out / f"c/{cid}.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # the site's name, from its og:site_name
    assert "&lt;b&gt;新建&lt;/b&gt;" in page and "[31m红字[0m" in page
    assert "&#x27;, &quot;quoted&quot; &lt;!-- x --&gt; ]]&gt;" in page
    # The http link is a link; the javascript: ones are text or nothing.
    assert '<a href="http://www.qcwh.gov.cn/2024/0318/art_1.html" rel="noopener noreferrer nofollow"' in page
    index = (out / "index.html").read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', index).group(1)
    assert "<" not in blob and ">" not in blob and "&" not in blob
    assert json.loads(blob)["rows"][0]["title"] == HOSTILE_TITLE
    assert "\\u003cimg src=x onerror=alert(2)\\u003e" in blob


def test_only_http_links(tmp_path):
    for bad in ("javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
                "java\nscript:alert(1)", "\x01javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
                "vbscript:msgbox(1)", "file:///etc/passwd", "//evil.example/x", "http://", "http:///x", "", None,
                "http://[::1", "ftp://example.com/"):  # fmt: skip
        assert link_url(bad) is None, repr(bad)
    assert link_url("https://www.sohu.com/a/1?x=1&y=2") == "https://www.sohu.com/a/1?x=1&y=2"
    assert link_url("HTTP://Example.com/\n") == "HTTP://Example.com/"


def test_json_in_a_script_cannot_end_it():
    s = script_json({"t": "</script><script>alert(1)</script><!-- & \u2028\u2029"})
    assert "<" not in s and ">" not in s and "&" not in s and "\u2028" not in s and "\u2029" not in s
    assert json.loads(s) == {"t": "</script><script>alert(1)</script><!-- & \u2028\u2029"}


def test_clean_strips_controls_and_bidi():
    assert clean("a\x1b[31mb\u202ec\x00d\ud800e\nf") == "a[31mbcd\ufffde f"


def test_diff_of_a_copy():
    original = "\n".join(STORY)
    copy = "\n".join(["来源：青川市文化广电旅游局", STORY[0], STORY[1].replace("12场", "十二场"), STORY[2], "阅读原文"])
    rows, stats = diff_texts(original, copy, boilerplate=["阅读原文"])
    assert [k for k, _, _ in rows] == ["boilerplate", "same", "changed", "same", "cut", "boilerplate"]
    assert stats.added == 2 and stats.boilerplate == 2 and stats.changed == 1
    assert stats.truncated == 0 and stats.cut == 1  # the last paragraph is cut, but boilerplate follows it
    changed = rows[2]
    assert "<del>12</del>" in changed[1] and "<ins>十二</ins>" in changed[2]
    rows, stats = diff_texts(original, "\n".join(STORY[:2]))
    assert stats.truncated == 2 and stats.cut == 0 and not stats.identical
    # Width and spacing are not changes: full-width punctuation against half-width.
    rows, stats = diff_texts("市民：你好，世界。", "市民: 你好,世界。")
    assert stats.identical and rows[0][0] == "same"
    # Markup in a page's text stays text.
    rows, _ = diff_texts("甲", "<script>alert(1)</script>")
    assert rows[-1] == ("added", "", "&lt;script&gt;alert(1)&lt;/script&gt;")


def test_the_timeline_cuts_long_empty_stretches():
    day = 86400.0
    t0 = epoch("2023-03-12T08:30:00+08:00")
    assert epoch("2023-03-12T08:30:00") == t0 and epoch("2023-03-12") is not None and epoch("soon") is None
    axis = TimeAxis.of([t0, t0 + 0.2 * day, t0 + day, t0 + 460 * day])
    assert len(axis.breaks) == 1
    # The three reposts of the first day fill most of the axis; the late compilation sits past the break.
    assert axis.x(t0) == 0 and axis.x(t0 + 460 * day) == 1 and axis.x(t0 + day) > 0.8
    labels = [label for _, label, _ in axis.ticks()]
    assert labels[0] == "2023-03-12 08:30" and labels[-1] == "2024-06-14 08:30"
    assert TimeAxis.of([t0]).x(t0) == 0.5 and TimeAxis.of([t0, t0 + 3600]).breaks == []


def test_reasons_are_put_into_chinese():
    from dedup.html_report import Words

    zh = Words("zh")
    assert zh.reason("another member credits 青川日报, which is this site") == "另一篇转载注明来源为 青川日报，即本站"
    publisher = "发布方网站（站内 4 篇，0 篇注明其他来源）"
    assert zh.reason("publisher site (4 pages, 0 crediting another source)") == publisher
    assert zh.reason("next best: www.sohu.com (score -1.5 against 9.5)") == "次优：www.sohu.com（得分 -1.5，本篇 9.5）"
    assert zh.reason("a reason worded otherwise") == "a reason worded otherwise"
    assert Words("en").reason("it credits 经济日报") == "it credits 经济日报"


def test_compilation_is_listed_under_each_story(sample_db, tmp_path):
    out = tmp_path / "r"
    assert run("report", "--html", out, "--db", sample_db).exit_code == 0
    rows = exported(sample_db)
    for story in (TREES, BUS, FLOOD):
        page = (out / f"c/{rows[story]['cluster']}.html").read_text(encoding="utf-8")
        assert COMPILATION in page and '<span class="badge compilation">合辑</span>' in page


def test_the_report_files_are_package_data():
    """The wheel carries the templates: pyproject's package-data covers every file the report reads."""
    import fnmatch
    import tomllib

    from tests.conftest import ROOT

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"][
        "dedup"
    ]
    files = [p.relative_to(ROOT / "dedup").as_posix() for p in (ROOT / "dedup/data/report").iterdir()]
    assert {"data/report/page.html", "data/report/report.css", "data/report/index.js"} <= set(files)
    for f in files:
        # setuptools' globs do not cross folders: "data/*" does not take data/report/x.
        assert any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs), f


def test_a_cluster_whose_original_is_outside_the_crawl():
    from dedup.html_report import ClusterView, Page, Sites, Words, cluster_page

    members = [
        {"id": 7, "role": "copy", "similarity": 1.0, "parent_id": None, "path": "www.sohu.com/a.html",
         "site": "www.sohu.com", "url": "https://www.sohu.com/a/1", "title": "读书月启动",
         "published_at": "2024-03-18T15:00:00+08:00", "time_confidence": 1.0},
        {"id": 8, "role": "copy", "similarity": 0.9, "parent_id": 7, "path": "www.163.com/b.html",
         "site": "www.163.com", "url": "", "title": "读书月启动了", "published_at": None, "time_confidence": None},
    ]  # fmt: skip
    c = {
        "id": 4, "size": 2, "title": "读书月启动", "original_id": None, "external_source": "经济日报",
        "confidence": 0.7, "members": members, "evidence": [],
        "reasons": ["2 members credit 经济日报, which is not in the crawl",
                    "no publisher among the members: the original is external"],
    }  # fmt: skip
    texts = {7: {"text": "\n".join(STORY), "boilerplate": []}, 8: {"text": "\n".join(STORY[:3]), "boilerplate": []}}
    sites = Sites({"www.sohu.com": SiteRole(["搜狐号"], "platform")})
    page = cluster_page(Page(), Words("zh"), sites, ClusterView(c, texts, {}, {4: "读书月启动"}))
    assert (
        '<div class="verdict external" id="verdict"><strong>外部来源: 经济日报</strong> '
        '(<span class="badge medium">可信度中 0.70</span>) — 因为 2 篇注明来源为 经济日报，该来源不在本次抓取中；'
        "成员中没有发布方网站：原文在抓取范围之外"
    ) in page
    # Compared with the earliest member; a member without a time is drawn apart on the timeline.
    assert '<h2 id="diffs">与最早成员的对比（原始来源在抓取范围外）</h2>' in page and "结尾截去 1 段" in page
    assert ">无时间</text>" in page and '<a href="https://www.sohu.com/a/1"' in page
    page = cluster_page(Page(), Words("en"), sites, ClusterView(c, texts, {}, {}))
    assert "<strong>External source: 经济日报</strong>" in page and "because 2 members credit 经济日报" in page


def test_pages_replace_links_planted_in_out_dir(sample_db, tmp_path):
    out, target = tmp_path / "report", tmp_path / "precious.txt"
    target.write_text("keep me", encoding="utf-8")
    (out / "c").mkdir(parents=True)
    (out / "index.html").symlink_to(target)
    (out / "c/1.html").symlink_to(target)
    assert run("report", "--html", out, "--db", sample_db).exit_code == 0
    assert target.read_text(encoding="utf-8") == "keep me"
    assert not (out / "index.html").is_symlink() and not (out / "c/1.html").is_symlink()
