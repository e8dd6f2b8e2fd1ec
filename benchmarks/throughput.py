"""Throughput of `dedup scan` by crawl size: full scan, rescan with nothing new, rescan after new files.

    python benchmarks/throughput.py --sizes 10000,100000 [--jobs 2] [--peer text-dedup|none] [--keep DIR]
                                    [--peer-input both|files|texts] [--new-share 0.01] [--new-repeats 3]
                                    [--peer-pairs 0] [--timeout 7200] [--seed 0] [--dedup CMD] [--scorer FILE]

For each size N (documents) it builds a crawl, then runs `dedup scan CRAWL --db DB --jobs J --json` as a
subprocess three times on the same database, and measures each run from outside, so the whole process
tree counts (the CLI, its worker processes and their start-up):

  full     the first scan of the crawl into an empty database;
  rescan   the same crawl again, nothing new (stat and compare only);
  +new     after adding round(N x --new-share) new files: half new copies of stories already in the
           crawl, half new stories (a publisher page and one copy each, from stories kept out of
           the crawl for this). The database is copied before it, and the run is repeated from
           that copy --new-repeats times in all (+new #2, #3: the same files, the same database);
           the median of these runs is the +1 % figure, each run shown (single runs at 100k differed
           by up to 0.2 s, 0.3 % of the full scan).

For each run: wall seconds; documents/s (documents in the crawl after the run / wall); MB/s of input
(bytes of the files that run had to read, i.e. the whole crawl, nothing, the new files / wall);
per-stage seconds from the `--json` summary's `stage_seconds`; peak RSS of the process tree (every
0.2 s the VmRSS of the process and all its descendants, found by parent pid and session, is summed:
the largest sum) and of the largest single process (its VmHWM, sampled: a high-water mark, so
only a peak in a run's last 0.2 s can be missed; not wait4's ru_maxrss, which Linux carries over
exec from the forking process: a child of this harness reported the harness's own high-water mark,
1.9 GB for a rescan whose tree never passed 0.8 GB); the database size on disk after the run
(DB + DB-wal); the rescans' wall time as a share of the full scan's. Wall includes the interpreter
start and imports (measured once per size as `dedup --version`, whose output, printed, names the
folder dedup's code was imported from; dedup runs with Python's bytecode
cache allowed, as installed: `dedup_env`); "in-process s" is the summary's own
`seconds`. The host's speed is probed (`host_probe`: a Python loop on one core, ~1 s) before the
full scan, after dedup's runs and after the peers: this VM's speed drifted by half within one
session. Before each run the harness flushes what it wrote (os.sync, then a second's wait:
settle_writes), so no run pays for the crawl just built or the database just copied. The sampler
costs the harness a few % of one core. A run longer than --timeout
(default 2 h) is killed with its process group and reported as a timeout; the next sizes go on.

The crawl. The source is ../shared/corpus/source/xwlb_articles.jsonl.gz (18,186 stories). Stories at
the end of the file are kept out for the new-stories step; the rest is the pool P.
  * N <= 4 x P: exactly benchmarks/speed.py's crawl (its `build` is imported): the first ceil(N/4)
    stories, each as a publisher HTML page (www.example-news.cn) plus 3 copies (a sohu-like platform
    page, a farm .txt with a header and a footer, a JSON record of mp.weixin.qq.com), 40 % of the
    copies cut to the first two thirds of their paragraphs. Crawl = 4 x ceil(N/4) documents.
  * N > 4 x P: the same for all P stories, then N - 4P extra copies spread over the stories by
    lognormal weights (sigma 0.75, a story gets at most 8x the mean: a few stories copied much more
    than most, as in a real crawl). Each extra copy (also the new copies of the +new step) is written
    by `varied_copy`: one of 24 other hosts (platform HTML, portal HTML of another layout, farm .txt,
    JSON record), its own time (a later minute and second) and editor line, and independently drawn
    variations: cut to a random 50-100 % of the paragraphs (p 0.4), one middle paragraph dropped
    (p 0.15), a lead sentence naming the source (p 0.3), a tail line (editor, "转自...如有侵权",
    "点击关注") (p 0.4), 1-3 characters replaced by common confusions (的/地/得, 在/再, ...) (p 0.2), a
    prefix or suffix on the title (p 0.3). Every document is distinct in bytes and most in text; all
    copies stay copies of their story.
Build time is reported apart and is no part of the scan figures.

Quality. Every document of the crawl is a known story's publisher page (its original) or a copy of it,
so the crawl carries its own labels. After the build (and again after the +new step) they are written
in the scorer's format ({"documents": path -> {"stories": [id], "original_of"}, "stories": id ->
{"original", "members"}}, as ../shared/corpus/dev/labels.json) to DIR/N/labels.json (the crawl the full
scan and the rescan see) and DIR/N/labels-new.json (with the new files), read from the file names every
builder here gives (www.example-news.cn/.../I.html: story I's publisher page; HOST/.../I_K.EXT: a copy
of story I); a file named otherwise is an error. After the full run and after the +new run,
`dedup export --db DB -o DIR/N/pred-full.jsonl` (pred-new.jsonl) writes the predictions and
../shared/corpus/score.py (--scorer) scores them (its report in logs/score-full.txt, its metrics in
DIR/N/score-full.json): pairwise precision / recall / F1 over same-story document pairs, ARI, and
original-source accuracy (stories whose publisher page is the only flagged original of the story's
cluster). The line "quality after full scan: ..." under the table gives them with what the labels hold
(documents, stories, same-story pairs: recall is over those pairs; precision over the pairs dedup put in
one cluster), the clusters that join documents of 2+ stories, and the stories of 2+ documents not in one
cluster. Stories of the source that reuse each other's sentences (a follow-up quoting an announcement)
are different stories in the labels: if dedup joins them they count as false pairs. The export and the
scoring run between the timed runs and are in no timed figure (their seconds are reported apart, as
export_s / score_s); a failure of either is reported in place of the figures, never fatal.

The peer (--peer text-dedup, optional; any failure is reported as "not run: REASON", never fatal):
text-dedup (PyPI; 0.4.0 resolved on 2026-12-02) is installed with pip into its own venv under /tmp
(--peer-venv, kept between runs), with trafilatura, lxml_html_clean and rjieba when it reads the
files. It is run one way or both (--peer-input, default both), and dedup's full scan is set
against each:
- files: after dedup's three runs, on the crawl they left (N + new files: the peer is given 1 %
  more than dedup's full scan). benchmarks/peer_extract.py reads every file of the crawl in J
  processes (HTML by trafilatura, TXT as text, JSON records by their title and longest string),
  cuts the texts into words by rjieba and writes the JSONL described below; then the MinHash
  below. Both are measured subprocesses; the peer's time is their sum.
  This is the peer as a user would run it on a crawl, and as the issue measured its peers
  (trafilatura + datasketch, text-dedup: their times included reading the pages).
  --peer-pairs K then runs K pairs side by side: a full scan of the crawl as the peer got it into a
  new database (removed after it), straight followed by the peer from the files; each pair's ratio
  of wall times and their median are reported. This machine's speed drifts (the same full scan took
  72 and 99 s an hour apart): the one full scan and one peer run above are ~20 min apart.
- texts: after the three scans, the texts dedup extracted for all N + new
documents (documents.text of the database: the very texts it compared) are cut into words by dedup's own tokenizer
(dedup.shingle.tokenize, rjieba) and written space-separated to a JSONL, one {"id", "text"} per
document (text-dedup splits on non-word characters, so raw Chinese would give it one "word" per
clause). That preparation is timed apart (prep s). Then, as a measured subprocess like the scans,
with HF_DATASETS_OFFLINE=1:
    python -m text_dedup.minhash --path json --data_files texts.jsonl --split train --column text
        --ngram 3 --num_perm 128 --threshold 0.5 --num_proc J --cache_dir C --output O
i.e. word 3-shingles, 128 permutations and threshold 0.5 as dedup's defaults, LSH bands chosen by
text-dedup, union-find of band collisions, no verification of pairs and no original-source
attribution (dedup does both): the peer does less work per document. Its own stage timer lines and
its document counts before and after are kept.

Prints a table per size, the load average (1/5/15 min) at the start and end of each size, and one
JSON line with all figures (a run's quality under "quality"). Build files go under a temporary directory,
removed at the end unless --keep DIR (then DIR/N/crawl, DIR/N/d.db, DIR/N/logs, the labels, predictions
and scores stay).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
HERE = BENCH.parent
sys.path.insert(0, str(BENCH))

import speed  # noqa: E402  (benchmarks/speed.py: its crawl builder and page templates)
from common import SCORER, dedup_command, live_processes, run_scorer  # noqa: E402

MB = 1e6
STAGES = ("read", "sign", "cluster", "attribute")
SAMPLE_S = 0.2

# --------------------------------------------------------------------------- the crawl

HOSTS = [  # (host, kind): the extra copies' sites
    ("www.163.com", "plat"), ("news.sina.com.cn", "portal"), ("new.qq.com", "plat"), ("www.ifeng.com", "portal"),
    ("www.toutiao.com", "plat"), ("baijiahao.baidu.com", "plat"), ("www.thepaper.cn", "portal"),
    ("www.zhihu.com", "farm"), ("www.jianshu.com", "farm"), ("www.360doc.com", "farm"), ("www.xinwen-ku.com", "farm"),
    ("news.china.com", "portal"), ("www.cnr.cn", "portal"), ("www.dzwww.com", "portal"), ("news.ycwb.com", "portal"),
    ("feed.yidian.com", "json"), ("api.kuaibao.qq.com", "json"), ("m.weibo.cn", "json"), ("app.myzaker.com", "json"),
    ("www.douban.com", "farm"), ("www.bilibili.com", "plat"), ("www.163.com", "farm"), ("news.cctv-fans.cn", "portal"),
    ("www.ce.cn", "portal"),
]  # fmt: skip
PORTAL = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title} - {site}</title>
<meta name="pubdate" content="{time}"></head><body><div id="top"><a href="/">{site}首页</a> &gt; 国内</div>
<div class="main"><h1 class="title">{title}</h1><p class="meta">{time} 来源：{source} 编辑：{editor}</p>
<div id="artibody">{paras}</div><div class="related"><h3>相关阅读</h3><ul><li><a href="/r">更多新闻</a></li></ul></div>
</div><div id="foot">{site} 版权所有 未经授权禁止转载</div></body></html>"""
EDITORS = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴倩", "徐明", "孙丽"]
SOURCES = ["央视新闻", "新闻联播", "央视网", "新华社", "人民网", "示例新闻网"]
LEADS = ["据{src}报道，", "{src}消息：", "（来源：{src}）", "【{src}】"]
TAILS = [
    "责任编辑：{editor}",
    "本文转自{src}，如有侵权请联系删除。",
    "点击关注，了解更多资讯。",
    "（编辑：{editor} 审核：{editor2}）",
]
CONFUSIONS = {
    "的": "地",
    "地": "得",
    "得": "的",
    "在": "再",
    "再": "在",
    "做": "作",
    "作": "做",
    "已": "以",
    "以": "已",
}
TITLE_PRE = ["【关注】", "转发！", "重磅：", "最新："]
TITLE_POST = ["|快讯", "（附全文）", "_新闻频道"]
NEW_STORY_BASE = 1_000_000  # add_new's new stories are numbered from here on (no crawled story's index)
PUBLISHER_HOST = "www.example-news.cn"  # speed.build and write_publisher put the publisher pages here


def load_stories(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def story_time(s: dict, i: int) -> tuple[str, str]:
    """(MMDD for the folder, 'YYYY-MM-DD 08:MM' publisher time) as speed.build makes them."""
    day = s["date"].replace("-", "")[4:8] if s.get("date") else "0101"
    return day, f"{(s.get('date') or '2023-01-01')} 08:{i % 60:02d}"


def write_publisher(root: Path, s: dict, i: int) -> int:
    day, t = story_time(s, i)
    p = root / f"{PUBLISHER_HOST}/2023/{day}/{i}.html"
    p.parent.mkdir(parents=True, exist_ok=True)
    html = "".join(f"<p>{x}</p>" for x in s["paragraphs"])
    return p.write_bytes(speed.PUB.format(title=s["title"], time=t, paras=html).encode("utf-8"))


def varied_copy(root: Path, s: dict, i: int, k: int, rnd: random.Random) -> int:
    """Write copy k (>= 3, unique per story) of story i with its own site, time and variations; its bytes."""
    host, kind = HOSTS[rnd.randrange(len(HOSTS))]
    day, t = story_time(s, i)
    date = t[:10]
    when = f"{date} {9 + k % 14:02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}"
    editor, editor2 = rnd.sample(EDITORS, 2)
    src = rnd.choice(SOURCES)
    paras = list(s["paragraphs"]) or [s["title"]]
    if rnd.random() < 0.4:
        paras = paras[: max(1, math.ceil(len(paras) * rnd.uniform(0.5, 1.0)))]
    if len(paras) >= 4 and rnd.random() < 0.15:
        del paras[rnd.randrange(1, len(paras) - 1)]
    if rnd.random() < 0.2:
        j = rnd.randrange(len(paras))
        chars = list(paras[j])
        spots = [n for n, c in enumerate(chars) if c in CONFUSIONS]
        for n in rnd.sample(spots, min(len(spots), rnd.randint(1, 3))):
            chars[n] = CONFUSIONS[chars[n]]
        paras[j] = "".join(chars)
    if rnd.random() < 0.3:
        paras[0] = rnd.choice(LEADS).format(src=src) + paras[0]
    if rnd.random() < 0.4:
        paras.append(rnd.choice(TAILS).format(src=src, editor=editor, editor2=editor2))
    title = s["title"]
    if rnd.random() < 0.3:
        title = rnd.choice(TITLE_PRE) + title if rnd.random() < 0.5 else title + rnd.choice(TITLE_POST)
    ext = {"plat": "html", "portal": "html", "farm": "txt", "json": "json"}[kind]
    q = root / f"{host}/2023/{day}/{i}_{k}.{ext}"
    if kind == "plat":
        text = speed.PLAT.format(title=title, time=when, paras="".join(f"<p>{x}</p>" for x in paras))
    elif kind == "portal":
        text = PORTAL.format(title=title, time=when, site=host, source=src, editor=editor,
                             paras="".join(f"<p>{x}</p>" for x in paras))  # fmt: skip
    elif kind == "farm":
        body = "\n\n".join("  " + x for x in paras)
        text = f"来源: {host}\n{when}\n\n{title}\n\n{body}\n\n编辑: {editor}\n"
    else:
        text = json.dumps({"url": f"https://{host}/a/{i}_{k}", "title": title, "content": "\n".join(paras),
                           "publish_time": when, "source": src}, ensure_ascii=False)  # fmt: skip
    q.parent.mkdir(parents=True, exist_ok=True)
    return q.write_bytes(text.encode("utf-8"))


@dataclass
class Crawl:
    root: Path
    documents: int = 0
    files: int = 0
    bytes: int = 0
    stories: int = 0
    extra_copies: int = 0
    max_copies: int = 3
    how: str = ""
    build_seconds: float = 0.0
    new_files: int = 0
    new_bytes: int = 0
    new_documents: int = 0
    new_build_seconds: float = 0.0
    new_how: str = ""


def tree_bytes(root: Path) -> tuple[int, int]:
    n = size = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            n += 1
            size += os.stat(os.path.join(dirpath, name)).st_size
    return n, size


def split_new(n_new: int) -> tuple[int, int]:
    """(new copies of crawled stories, new stories) for n_new new files; a new story is 2 files."""
    copies = n_new // 2
    return copies, math.ceil((n_new - copies) / 2)


def build_crawl(root: Path, n: int, pool: list[dict], rnd: random.Random) -> Crawl:
    t0 = time.perf_counter()
    c = Crawl(root)
    if n <= 4 * len(pool):
        c.stories = math.ceil(n / 4)
        c.documents = speed.build(root, pool[: c.stories], 3, rnd)
        c.how = f"speed.build: {c.stories} stories x (1 + 3 copies)"
    else:
        c.stories = len(pool)
        c.documents = speed.build(root, pool, 3, rnd)
        extra = n - c.documents
        w = [rnd.lognormvariate(0, 0.75) for _ in pool]
        total = sum(w)
        cap = 8 * extra / len(pool)
        want = [min(cap, extra * x / total) for x in w]
        counts = [int(x) for x in want]
        short = extra - sum(counts)
        order = sorted(range(len(pool)), key=lambda j: (counts[j] >= cap, -(want[j] - counts[j]), rnd.random()))
        for j in order[: max(0, short)]:
            counts[j] += 1
        while sum(counts) < extra:  # the cap left some over: spread them one by one
            counts[rnd.randrange(len(pool))] += 1
        for i, (s, cnt) in enumerate(zip(pool, counts, strict=True)):
            for k in range(3, 3 + cnt):
                varied_copy(root, s, i, k, rnd)
        c.extra_copies = extra
        c.documents += extra
        c.max_copies = 3 + max(counts)
        c.how = (f"speed.build: {c.stories} stories x (1 + 3 copies), plus {extra} varied copies by lognormal weights "
                 f"(a story has 3 to {c.max_copies} copies)")  # fmt: skip
    c.files, c.bytes = tree_bytes(root)
    c.build_seconds = time.perf_counter() - t0
    return c


def add_new(c: Crawl, n_new: int, crawled: list[dict], fresh: list[dict], rnd: random.Random) -> None:
    """Add n_new files: new varied copies of crawled stories, then new stories (publisher + 1 copy)."""
    t0 = time.perf_counter()
    n_copies, n_stories = split_new(n_new)
    size = 0
    for j in range(n_copies):
        i = rnd.randrange(c.stories)
        size += varied_copy(c.root, crawled[i], i, 100_000 + j, rnd)
    left = n_new - n_copies
    for j in range(n_stories):
        i = len(crawled) + NEW_STORY_BASE + j  # an index no crawled story has
        size += write_publisher(c.root, fresh[j], i)
        left -= 1
        if left > 0:
            size += varied_copy(c.root, fresh[j], i, 3, rnd)
            left -= 1
    c.new_files = c.new_documents = n_new
    c.new_bytes = size
    c.new_build_seconds = time.perf_counter() - t0
    c.new_how = f"{n_copies} new copies of crawled stories + {n_stories} new stories (publisher page + 1 copy)"


# --------------------------------------------------------------------------- the crawl's labels

LABELLED_NAME = re.compile(r"(\d+)(?:_(\d+))?\.(?:html|txt|json)")


def crawl_labels(root: Path, story_at) -> dict:
    """The scorer's labels ({"documents", "stories"}, as in ../shared/corpus/dev/labels.json) of the crawl
    as it is on disk. Every builder here names a file after its story's index I in the crawl (speed.build,
    write_publisher, varied_copy): PUBLISHER_HOST/2023/MMDD/I.html is story I's publisher page, its
    original; HOST/2023/MMDD/I_K.EXT (K >= 0) a copy of it. story_at(I) gives the source story (for its
    id and title). Any other file name is an error, never a silent unlabelled document."""
    docs: dict[str, dict] = {}
    stories: dict[str, dict] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = (Path(dirpath) / name).relative_to(root).as_posix()
            m = LABELLED_NAME.fullmatch(name)
            original = m is not None and m[2] is None
            if m is None or original != path.startswith(f"{PUBLISHER_HOST}/"):
                raise ValueError(f"a crawl file the labels do not know: {path}")
            i = int(m[1])
            sid = f"s{i}"
            if sid not in stories:
                src = story_at(i)
                stories[sid] = {"original": None, "members": [], "article_id": src["id"], "title": src["title"]}
            stories[sid]["members"].append(path)
            if original:
                stories[sid]["original"] = path
            docs[path] = {"stories": [sid], "original_of": sid if original else None}
    for e in stories.values():
        e["members"].sort()
        if e["original"] is None:
            raise ValueError(f"story {e['article_id']} has copies but no publisher page")
    return {"documents": docs, "stories": stories}


def write_labels(root: Path, story_at, out: Path) -> dict:
    """Write the crawl's labels to out; what they hold (documents, stories, same-story pairs)."""
    labels = crawl_labels(root, story_at)
    out.write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
    sizes = [len(e["members"]) for e in labels["stories"].values()]
    return {"file": out.name, "documents": len(labels["documents"]), "stories": len(sizes),
            "pairs": sum(k * (k - 1) // 2 for k in sizes)}  # fmt: skip


def predicted_clusters(pred: Path) -> dict:
    """path -> cluster of each document in an export (None: in no cluster)."""
    cluster = {}
    with pred.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                cluster[o["path"]] = o.get("cluster")
    return cluster


def mixed_and_split(labels_path: Path, pred: Path) -> tuple[int, int, int]:
    """(predicted clusters holding documents of 2+ stories, the stories in them, stories of 2+ documents
    not all in one cluster): where the false and the missed pairs are."""
    labels = json.loads(labels_path.read_text(encoding="utf-8"))
    cluster = predicted_clusters(pred)
    held: dict = {}
    for d, e in labels["documents"].items():
        if cluster.get(d) is not None:
            held.setdefault(cluster[d], set()).update(e["stories"])
    mixed = [ss for ss in held.values() if len(ss) > 1]
    split = 0
    for e in labels["stories"].values():
        got = {cluster.get(d) for d in e["members"]}
        split += len(e["members"]) > 1 and (len(got) > 1 or None in got)
    return len(mixed), len(set().union(*mixed)), split


def sibling_merges(db: Path, labels_path: Path, pred: Path) -> tuple[int, int]:
    """(sibling pairs, those put in one cluster). A sibling pair: two documents of different
    stories (no story in common in the labels) that the candidate search proposed and dedup
    verified (a row of the verdicts table, copy or not): similar enough to be mistaken for a copy
    (one template, a shared paragraph, recurring phrasing)."""
    labels = json.loads(labels_path.read_text(encoding="utf-8"))["documents"]
    cluster = predicted_clusters(pred)
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        path = dict(conn.execute("SELECT id, path FROM documents"))
        rows = conn.execute("SELECT lo, hi FROM verdicts").fetchall()
    finally:
        conn.close()
    pairs = merged = 0
    for lo, hi in rows:
        a, b = labels.get(path.get(lo)), labels.get(path.get(hi))
        if a is None or b is None or set(a["stories"]) & set(b["stories"]):
            continue
        pairs += 1
        ca = cluster.get(path[lo])
        merged += ca is not None and ca == cluster.get(path[hi])
    return pairs, merged


QUALITY_KEYS = ("n_docs", "n_pred", "missing", "unknown", "tp", "fp", "fn", "precision", "recall", "f1", "ari",
                "orig_ok", "n_stories", "orig_acc")  # fmt: skip


def quality(dedup: list[str], db: Path, labels_path: Path, labelled: dict, work: Path, tag: str, logs: Path,
            scorer: str, timeout: float) -> dict:  # fmt: skip
    """`dedup export --db DB -o WORK/pred-TAG.jsonl`, then the corpus scorer on it against labels_path.
    Outside every timed figure; any failure is reported in the result, never fatal."""
    pred = work / f"pred-{tag}.jsonl"
    q: dict = {"ok": False, "labels": labelled, "pred": pred.name}
    t0 = time.perf_counter()
    try:
        with (logs / f"export-{tag}.err").open("w+b") as fe:
            r = subprocess.run(dedup + ["export", "--db", str(db), "-o", str(pred)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=fe, timeout=timeout)  # fmt: skip
            fe.seek(0)
            err = fe.read().decode("utf-8", "replace").strip()
        if r.returncode != 0:
            q["reason"] = f"dedup export: exit {r.returncode}: {err[-300:]}"
            return q
        q["export_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        m = run_scorer(labels_path, pred, work / f"score-{tag}.json", scorer, timeout)
        q["score_s"] = round(time.perf_counter() - t0, 2)
    except subprocess.CalledProcessError as exc:
        q["reason"] = f"scorer: exit {exc.returncode}: {(exc.stderr or '').strip()[-300:]}"
        return q
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        q["reason"] = f"{type(exc).__name__}: {exc}"
        return q
    (logs / f"score-{tag}.txt").write_text(m["report"], encoding="utf-8")
    q.update({k: round(m[k], 6) if isinstance(m[k], float) else m[k] for k in QUALITY_KEYS})
    q["mixed_clusters"], q["mixed_stories"], q["split_stories"] = mixed_and_split(labels_path, pred)
    try:
        q["sibling_pairs"], q["siblings_merged"] = sibling_merges(db, labels_path, pred)
    except sqlite3.Error as exc:
        q["sibling_pairs"], q["siblings_merged"] = 0, f"not measured: {exc}"
    q["ok"] = True
    return q


# --------------------------------------------------------------------------- measuring a process tree


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, session) of every live, non-zombie process."""
    return {pid: (int(f[1]), int(f[3])) for pid, f in live_processes().items()}


def tree_of(root: int) -> list[int]:
    table = _proc_table()
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    found, stack = set(), [root]
    while stack:
        p = stack.pop()
        if p in found or (p != root and p not in table):
            continue
        found.add(p)
        stack.extend(kids.get(p, ()))
    found |= {pid for pid, (_, sid) in table.items() if sid == root}
    return sorted(p for p in found if p in table)


def _status_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB; (0, 0) for a process gone or without memory."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def rollup_kb(pid: int | str, *fields: bytes) -> list[int]:
    """Some fields of /proc/PID/smaps_rollup (b"Pss", b"Anonymous" ...) in kB, 0 where absent or
    for a process gone; pid may be "self"."""
    found = dict.fromkeys(fields, 0)
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                name, _, rest = line.partition(b":")
                if name in found:
                    found[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return list(found.values())


def _pss_kb(pid: int) -> tuple[int, int]:
    """(Pss, Pss_Anon) in kB: a process's share of the pages it maps (a page shared by n processes
    counts 1/n in each: forked workers share their parent's pages until they write them, which
    VmRSS counts in each of them again); Pss_Anon leaves out files mapped (the candidate index,
    whose pages the kernel may drop at will). (0, 0) for a process gone."""
    pss, anon = rollup_kb(pid, b"Pss", b"Pss_Anon")
    return pss, anon


PSS_EVERY = 5


@dataclass
class Measured:
    name: str
    cmd: list[str]
    rc: int | None = None
    wall: float = 0.0
    timed_out: bool = False
    peak_tree_mb: float = 0.0
    peak_single_mb: float = 0.0
    peak_pss_mb: float = 0.0  # the tree's memory, shared pages counted once (see _pss_kb)
    peak_pss_anon_mb: float = 0.0  # the same without mapped files
    max_processes: int = 0
    cpu_seconds: float = 0.0
    stderr_tail: str = ""
    stdout_path: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def why(self) -> str:
        if self.timed_out:
            return f"timeout after {self.wall:.0f} s (killed)"
        if self.rc != 0:
            return f"exit {self.rc}: {self.stderr_tail[-300:]}"
        return "ok"


# Each timed run starts with what the harness wrote flushed to disk (os.sync), as a nightly run finds
# a database written the night before: otherwise the first checkpoint of a +new run (its fdatasync)
# waited for the pages of the database copy restore_db had just made, or of the scan before, to
# reach the disk: +0.3-0.5 s of a ~3 s step (the same step on copies of one database, three runs
# each, benchmarks/RESULTS.md "The harness flushes before each run"). The crawl just built is
# flushed before the full scan and the peers alike.
SETTLE_S = 1.0


def settle_writes() -> None:
    os.sync()
    time.sleep(SETTLE_S)


def run_measured(cmd: list[str], name: str, logs: Path, timeout: float, env: dict | None = None,
                 cwd: Path | None = None) -> Measured:  # fmt: skip
    """Run cmd in its own session; sample its tree's memory every SAMPLE_S; kill the group at timeout.
    What the harness wrote before is flushed to disk first (settle_writes)."""
    logs.mkdir(parents=True, exist_ok=True)
    m = Measured(name, cmd)
    out, err = logs / f"{name}.out", logs / f"{name}.err"
    m.stdout_path = str(out)
    settle_writes()
    t0 = time.monotonic()
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=env,
                                cwd=str(cwd or logs), start_new_session=True)  # fmt: skip
    peak_sum = peak_one = peak_pss = peak_anon = 0
    status = ru = None
    n = 0
    try:
        while True:
            pid, st, r = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, ru = st, r
                break
            pids = tree_of(proc.pid)
            rss_sum = 0
            for p in pids:
                rss, hwm = _status_kb(p)
                rss_sum += rss
                peak_one = max(peak_one, hwm)
            peak_sum = max(peak_sum, rss_sum)
            if n % PSS_EVERY == 0:
                shares = [_pss_kb(p) for p in pids]
                peak_pss = max(peak_pss, sum(x for x, _ in shares))
                peak_anon = max(peak_anon, sum(y for _, y in shares))
            n += 1
            m.max_processes = max(m.max_processes, len(pids))
            if time.monotonic() - t0 > timeout:
                m.timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(SAMPLE_S)
    finally:
        m.wall = time.monotonic() - t0
        try:  # workers that outlived their CLI
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if status is None:
            _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    m.rc = proc.returncode
    m.peak_tree_mb = peak_sum * 1024 / MB
    m.peak_single_mb = peak_one * 1024 / MB  # not ru.ru_maxrss: see the module's docstring
    m.peak_pss_mb, m.peak_pss_anon_mb = peak_pss * 1024 / MB, peak_anon * 1024 / MB
    m.cpu_seconds = (ru.ru_utime + ru.ru_stime) if ru else 0.0
    m.stderr_tail = err.read_bytes()[-2000:].decode("utf-8", "replace")
    return m


# --------------------------------------------------------------------------- dedup runs


def db_size_mb(db: Path) -> float:
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists()) / MB


def dedup_env() -> dict:
    """The environment of dedup's runs: this one, with Python's bytecode cache allowed. An installed
    dedup has its .pyc files (pip compiles them; an editable install writes them on first import);
    where PYTHONDONTWRITEBYTECODE is set (some sandboxes and CI images set it), every process would
    compile every module it imports again, ~0.1-0.3 s a run that a user's machine does not pay."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def snapshot_db(db: Path, folder: Path) -> Path:
    """Copy a database as a scan leaves it (the file, its WAL if any, its .index folder) into
    `folder`, so that the +new run can be repeated from the same state (--new-repeats)."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in (db, Path(f"{db}-wal")):
        if part.exists():
            shutil.copy2(part, folder / part.name)
    if Path(f"{db}.index").is_dir():
        shutil.copytree(f"{db}.index", folder / f"{db.name}.index")
    return folder


def remove_db(db: Path) -> None:
    """A database with its WAL, shared memory, index folder and lock file."""
    for part in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}.lock")):
        part.unlink(missing_ok=True)
    shutil.rmtree(f"{db}.index", ignore_errors=True)


def restore_db(folder: Path, db: Path) -> None:
    """Put back the database snapshot_db copied into `folder` (what the scan since left removed)."""
    remove_db(db)
    for part in folder.iterdir():
        if part.is_dir():
            shutil.copytree(part, db.parent / part.name)
        else:
            shutil.copy2(part, db.parent / part.name)


def scan_run(dedup: list[str], crawl: Crawl, db: Path, jobs: int, name: str, logs: Path, timeout: float,
             bytes_read: int) -> dict:  # fmt: skip
    cmd = dedup + ["scan", str(crawl.root), "--db", str(db), "--jobs", str(jobs), "--json"]
    m = run_measured(cmd, name, logs, timeout, env=dedup_env())
    row: dict = {"run": name, "ok": m.ok, "status": m.why(), "wall_s": round(m.wall, 2),
                 "cpu_s": round(m.cpu_seconds, 1), "peak_rss_tree_mb": round(m.peak_tree_mb),
                 "peak_rss_single_mb": round(m.peak_single_mb), "peak_pss_tree_mb": round(m.peak_pss_mb),
                 "peak_pss_anon_mb": round(m.peak_pss_anon_mb), "processes": m.max_processes,
                 "db_mb": round(db_size_mb(db), 1), "input_mb": round(bytes_read / MB, 3)}  # fmt: skip
    summary = None
    if m.ok:
        lines = [ln for ln in Path(m.stdout_path).read_text(encoding="utf-8").splitlines() if ln.startswith("{")]
        try:
            summary = json.loads(lines[-1])
        except (IndexError, ValueError):
            row["ok"], row["status"] = False, "no JSON summary on stdout"
    if summary:
        docs = summary.get("documents", 0)
        row.update(documents=docs, files_read=summary.get("files_read"), documents_new=summary.get("documents_new"),
                   clusters=summary.get("clusters"), skipped=summary.get("skipped"),
                   dedup_seconds=round(summary.get("seconds", 0.0), 2),
                   stage_seconds={k: round(v, 2) for k, v in (summary.get("stage_seconds") or {}).items()},
                   docs_per_s=round(docs / m.wall, 1) if m.wall else None,
                   mb_per_s=round(bytes_read / MB / m.wall, 4) if m.wall else None)  # fmt: skip
    return row


# --------------------------------------------------------------------------- the peer

PEER_PACKAGES = {"text-dedup": ["text-dedup"]}
# What the peer needs to read the crawl's files itself (--peer-input files): benchmarks/peer_extract.py.
# lxml_html_clean: lxml 5.2+ moved lxml.html.clean (which trafilatura's justext imports) out.
FILE_PEER_PACKAGES = ["trafilatura", "lxml_html_clean", "rjieba"]
PEER_EXTRACT = BENCH / "peer_extract.py"


def peer_setup(name: str, venv: Path, logs: Path, files: bool) -> tuple[Path | None, str]:
    """(the venv's python, "") when the peer is installed and imports; (None, reason) otherwise."""
    py = venv / "bin" / "python"
    packages = PEER_PACKAGES[name] + (FILE_PEER_PACKAGES if files else [])
    probe = [str(py), "-c", "import text_dedup, datasets" + (", trafilatura, rjieba" if files else "")]
    if py.exists() and subprocess.run(probe, capture_output=True, timeout=300).returncode == 0:
        return py, ""
    logs.mkdir(parents=True, exist_ok=True)
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        with (logs / "peer-install.log").open("wb") as f:
            r = subprocess.run([str(py), "-m", "pip", "install", *packages], stdout=f,
                               stderr=subprocess.STDOUT, timeout=1800)  # fmt: skip
        if r.returncode != 0:
            tail = (logs / "peer-install.log").read_text(errors="replace").strip().splitlines()[-1:]
            return None, f"pip install {' '.join(packages)} failed: {' '.join(tail)[:200]}"
        p = subprocess.run(probe, capture_output=True, timeout=300)
        if p.returncode != 0:
            return None, f"installed but does not import: {p.stderr.decode(errors='replace').strip()[-200:]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"install failed: {exc}"
    return py, ""


def export_texts(db: Path, out: Path) -> int:
    """The documents' stored texts as space-separated words (dedup's tokenizer), one JSON object a line."""
    from dedup.shingle import tokenize

    n = 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        with out.open("w", encoding="utf-8") as f:
            for path, text in con.execute("SELECT path, text FROM documents WHERE text IS NOT NULL ORDER BY id"):
                f.write(json.dumps({"id": path, "text": " ".join(tokenize(text))}, ensure_ascii=False) + "\n")
                n += 1
    finally:
        con.close()
    return n


def peer_command(py: Path, data: Path, out: Path, cache: Path, jobs: int) -> list[str]:
    return [str(py), "-m", "text_dedup.minhash", "--path", "json", "--data_files", str(data), "--split", "train",
            "--column", "text", "--ngram", "3", "--num_perm", "128", "--threshold", "0.5", "--num_proc", str(jobs),
            "--cache_dir", str(cache), "--output", str(out)]  # fmt: skip


PEER_LINE = re.compile(r"INFO\s+(Loading|MinHashing|Clustering|Filtering|Saving|Cleaning|Total|Before|After)\s*:\s*"
                       r"([0-9.]+)")  # fmt: skip
PEER_ENV = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "200"}


def _measured_row(m: Measured) -> dict:
    return {"ok": m.ok, "status": m.why(), "wall_s": round(m.wall, 2), "cpu_s": round(m.cpu_seconds, 1),
            "peak_rss_tree_mb": round(m.peak_tree_mb), "peak_rss_single_mb": round(m.peak_single_mb),
            "peak_pss_tree_mb": round(m.peak_pss_mb), "peak_pss_anon_mb": round(m.peak_pss_anon_mb),
            "processes": m.max_processes}  # fmt: skip


def _peer_minhash(py: Path, data: Path, work: Path, logs: Path, timeout: float, jobs: int, tag: str) -> dict:
    """text-dedup's MinHash over a JSONL of space-separated words, as a measured subprocess."""
    cmd = peer_command(py, data, work / f"{tag}-out", work / f"{tag}-cache", jobs)
    m = run_measured(cmd, tag, logs, timeout, env=dict(os.environ, **PEER_ENV), cwd=work)
    row = {"cmd": shlex.join(cmd), "input_mb": round(data.stat().st_size / MB, 1), **_measured_row(m)}
    if m.ok:
        logged = Path(m.stdout_path).read_text(errors="replace") + (logs / f"{tag}.err").read_text(errors="replace")
        found = {k: float(v) for k, v in PEER_LINE.findall(logged)}
        row["stage_seconds"] = {k: v for k, v in found.items() if k not in ("Before", "After")}
        row["before"], row["after"] = found.get("Before"), found.get("After")
    return row


def run_peer(name: str, py: Path, db: Path, work: Path, logs: Path, timeout: float, jobs: int) -> dict:
    """The peer on the texts dedup extracted (--peer-input texts): words prepared apart, not timed."""
    data = work / "texts.jsonl"
    t0 = time.perf_counter()
    n = export_texts(db, data)
    prep = time.perf_counter() - t0
    row = {"peer": name, "input": "texts", "documents": n, "prep_s": round(prep, 2),
           **_peer_minhash(py, data, work, logs, timeout, jobs, "peer")}  # fmt: skip
    if row["ok"]:
        row["docs_per_s"] = round(n / row["wall_s"], 1)
    return row


def run_peer_files(name: str, py: Path, crawl: Path, work: Path, logs: Path, timeout: float, jobs: int) -> dict:
    """The peer from the crawl's files (--peer-input files): benchmarks/peer_extract.py (reading,
    trafilatura, rjieba) then the peer's MinHash, both timed; its wall time is their sum."""
    data = work / "peer-files.jsonl"
    cmd = [str(py), str(PEER_EXTRACT), str(crawl), str(data), "--jobs", str(jobs)]
    m = run_measured(cmd, "peer-extract", logs, timeout, cwd=work)
    row: dict = {"peer": name, "input": "files", "extract": {"cmd": shlex.join(cmd), **_measured_row(m)}}
    if not m.ok:
        return {**row, "ok": False, "status": f"extraction: {m.why()}", "wall_s": round(m.wall, 2)}
    row["extract_line"] = Path(m.stdout_path).read_text(errors="replace").strip()[-300:]
    with data.open("rb") as f:
        n = sum(1 for _ in f)
    mh = _peer_minhash(py, data, work, logs, timeout, jobs, "peer-files")
    row.update(mh, documents=n, minhash_wall_s=mh["wall_s"], extract_wall_s=round(m.wall, 2))
    row["wall_s"] = round(m.wall + mh["wall_s"], 2)
    row["cpu_s"] = round(m.cpu_seconds + mh["cpu_s"], 1)
    for k in ("peak_rss_tree_mb", "peak_rss_single_mb", "peak_pss_tree_mb", "peak_pss_anon_mb", "processes"):
        row[k] = max(row["extract"][k], mh[k])
    if row["ok"]:
        row["docs_per_s"] = round(n / row["wall_s"], 1)
    else:
        row["status"] = f"minhash: {row['status']}"
    return row


def startup(dedup: list[str], logs: Path) -> tuple[float, str]:
    """Wall time of `dedup --version` (the interpreter and imports every run pays) and what it
    printed: the version and where its code was imported from (which checkout the runs measure)."""
    m = run_measured(dedup + ["--version"], "startup", logs, 120, env=dedup_env())
    said = Path(m.stdout_path).read_text(encoding="utf-8", errors="replace").strip() if m.stdout_path else ""
    return round(m.wall, 2), said or m.why()


# --------------------------------------------------------------------------- report


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# The host's speed at a moment: a fresh interpreter adding up 10 million integers on one core
# (~1 s). The VM these figures come from drifted within one session: the same full scan of the
# same 100k crawl took 70 to 116 s in 90 minutes, its CPU seconds rising with it (RESULTS.md,
# "A slow and drifting machine"), and the load average does not show it. Taken before a size's
# full scan, after dedup's runs and after the peers, so that two figures of a run can be set
# against each other only when the host kept its speed between them.
HOST_PROBE = (
    "import time\nt = time.perf_counter()\ns = 0\n"
    "for i in range(10_000_000):\n    s += i\nprint(time.perf_counter() - t)"
)


PROBE_WHEN = {"before_full": "before the full scan", "after_dedup": "after dedup's runs",
              "after_peers": "after the peers"}  # fmt: skip


def host_probe() -> float | None:
    """Seconds of HOST_PROBE in a new interpreter (None if it could not run)."""
    try:
        out = subprocess.run([sys.executable, "-c", HOST_PROBE], capture_output=True, text=True, timeout=120,
                             check=True).stdout  # fmt: skip
        return round(float(out), 2)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def fmt_stages(st: dict | None) -> str:
    if not st:
        return "-"
    return " ".join(f"{k[:4]} {st[k]:.1f}" for k in STAGES if k in st) + "".join(
        f" {k} {v:.1f}" for k, v in st.items() if k not in STAGES
    )


def quality_line(q: dict) -> str:
    if not q.get("ok"):
        return f"quality: not measured: {q.get('reason')}"
    lab = q["labels"]
    odd = f"; {q['missing']} labelled documents not exported, {q['unknown']} exported not labelled" if (
        q["missing"] or q["unknown"]) else ""  # fmt: skip
    return (f"quality: precision {q['precision']:.4f} recall {q['recall']:.4f} F1 {q['f1']:.4f} "
            f"(tp {q['tp']} fp {q['fp']} fn {q['fn']}), ARI {q['ari']:.4f}, originals {q['orig_ok']}/{q['n_stories']}"
            f" = {q['orig_acc']:.4f}; over {lab['documents']} labelled documents, {lab['stories']} stories, "
            f"{lab['pairs']} same-story pairs; {q['mixed_clusters']} clusters join 2+ stories ({q['mixed_stories']} "
            f"stories), {q['split_stories']} stories of 2+ documents not in one cluster; sibling pairs "
            f"(different stories verified as candidates) {q.get('sibling_pairs')}, merged {q.get('siblings_merged')}"
            f"{odd}")  # fmt: skip


def mem(r: dict) -> str:
    """A run's peak memory: the tree's summed VmRSS / its largest process / the tree's PSS (and
    its anonymous part), MB (see _pss_kb)."""
    return (f"{r['peak_rss_tree_mb']} / {r['peak_rss_single_mb']} / {r.get('peak_pss_tree_mb', '-')} "
            f"({r.get('peak_pss_anon_mb', '-')})")  # fmt: skip


def print_size(res: dict) -> None:
    c = res["crawl"]
    print(f"\n== N = {res['size']}: {c['documents']} documents in {c['files']} files, {c['bytes'] / MB:.1f} MB "
          f"({c['how']}); built in {c['build_seconds']:.1f} s; +new: {c['new_how']}")  # fmt: skip
    print(f"   load average at start {res['load_start']}, at end {res['load_end']}; "
          f"`dedup --version` takes {res['startup_s']} s (paid by every run) and says: "
          f"{res.get('dedup_version')}")  # fmt: skip
    probe = res.get("host_probe_s", {})
    print("   host speed (a Python loop of 10 M additions on one core, s): "
          + ", ".join(f"{v} {PROBE_WHEN.get(k, k)}" for k, v in probe.items()))  # fmt: skip
    quality_rows = [(r["run"], r["quality"]) for r in res["runs"] if "quality" in r]
    print("| run | docs | files read | wall s | in-process s | docs/s | MB/s read | stages (s) "
          "| peak RSS tree / largest / PSS tree (anon) MB | DB MB | wall / full |")  # fmt: skip
    print("| --- " * 11 + "|")
    for r in res["runs"]:
        if not r["ok"]:
            print(f"| {r['run']} | - | - | {r['wall_s']:.1f} | - | - | - | {r['status'][:80]} | "
                  f"{mem(r)} | {r['db_mb']} | - |")  # fmt: skip
            continue
        share = f"{r['share_of_full']:.1%}" if "share_of_full" in r else "-"
        print(f"| {r['run']} | {r['documents']} | {r['files_read']} | {r['wall_s']:.1f} | {r['dedup_seconds']:.1f} "
              f"| {r['docs_per_s']:.0f} | {r['mb_per_s']:.3g} | {fmt_stages(r.get('stage_seconds'))} "
              f"| {mem(r)} | {r['db_mb']} | {share} |")  # fmt: skip
    for run, q in quality_rows:
        times = f" (export {q['export_s']} s, scoring {q['score_s']} s: in no timed figure)" if q.get("ok") else ""
        print(f"   {quality_line(q).replace('quality:', f'quality after {run} scan:', 1)}{times}")
    if "new_median_s" in res:
        steps = [f"{w:.2f}" for w in res["new_runs_s"]]
        print(f"   +new rescan, {len(steps)} runs from the same database: {' / '.join(steps)} s; median "
              f"{res['new_median_s']:.2f} s = {res['new_median_share']:.2%} of the full scan")  # fmt: skip
    full = next((r for r in res["runs"] if r["run"] == "full" and r["ok"]), None)
    for key in ("peer_files", "peer"):
        if key in res:
            print_peer(res[key], full, c["bytes"])
    measured = [p for p in res.get("pairs", []) if "ratio" in p]  # both runs of the pair ok
    if measured:
        walls = "; ".join(f"{p['dedup_wall_s']:.1f} / {p['peer_wall_s']:.1f} s" for p in measured)
        ratios = sorted(p["ratio"] for p in measured)
        print(f"   dedup's full scan against the peer from the files, {len(ratios)} pairs side by side (N + new "
              f"files each): {walls}; ratios {' / '.join(f'{r:.2f}' for r in ratios)}, median "
              f"{ratios[len(ratios) // 2]:.2f}")  # fmt: skip


def print_peer(p: dict, full: dict | None, crawl_bytes: int) -> None:
    """A peer's row in the size's table, what it was given, and dedup's full scan against it."""
    label = f"peer {p.get('peer')} ({'from the files' if p.get('input') == 'files' else 'on dedup texts'})"
    if not p.get("ok"):
        print(f"{label}: not run: {p.get('reason') or p.get('status')}")
        return
    st = ", ".join(f"{k} {v:g}" for k, v in (p.get("stage_seconds") or {}).items())
    if p.get("input") == "files":
        st = f"extract {p['extract_wall_s']:g}, MinHash {p['minhash_wall_s']:g} ({st or '-'})"
    mb = crawl_bytes if p.get("input") == "files" else p["input_mb"] * MB
    print(f"| {label} | {p['documents']} | - | {p['wall_s']:.1f} | - | {p['docs_per_s']:.0f} | "
          f"{mb / MB / p['wall_s']:.3g} | {st or '-'} | {mem(p)} | - | - |")  # fmt: skip
    if p.get("input") == "files":
        print(f"   {label}: {p.get('extract_line')}; then {p['input_mb']} MB of JSONL to its MinHash; "
              f"{p['processes']} processes at most; kept {p.get('after')} of {p.get('before')} documents")  # fmt: skip
        print(f"   commands: {p['extract']['cmd']}; {p['cmd']}")
    else:
        print(f"   {label}: {p['documents']} texts ({p['input_mb']} MB of JSONL, words prepared in "
              f"{p['prep_s']} s, not counted), {p['processes']} processes at most; kept {p.get('after')} of "
              f"{p.get('before')} documents")  # fmt: skip
        print(f"   command: {p['cmd']}")
    if full:
        print(f"   dedup's full scan took {full['wall_s'] / p['wall_s']:.2f} times this peer's wall time "
              f"({full.get('cpu_s', '-')} against {p['cpu_s']} CPU-s)")  # fmt: skip


def peer_run(n: int, a, run, peer_py: Path | None, peer_reason: str, full_ok: bool) -> dict:
    """One peer run's row, or why it was not run (never fatal)."""
    if peer_py is None:
        return {"peer": a.peer, "ok": False, "reason": peer_reason}
    if not full_ok:
        return {"peer": a.peer, "ok": False, "reason": "the full scan failed: no texts to give it"}
    print(f"  [{n}] peer {a.peer} ...", flush=True)
    row = run()
    if not row["ok"]:
        row["reason"] = row["status"]
    print(f"  [{n}] peer {a.peer} from {row.get('input')}: {row['status']}, {row.get('wall_s', 0):.1f} s", flush=True)
    return row


def peer_pairs(n: int, a, crawl: Crawl, work: Path, logs: Path, dedup: list[str], peer_py: Path) -> list[dict]:
    """--peer-pairs K: K more full scans, each straight before a run of the peer from the files, on
    the crawl as the peer gets it (N + new files) and into a new database each time. This machine's
    speed drifts by up to 2x within an hour: a ratio of two runs minutes apart moves with it, the
    median of K ratios of runs side by side much less."""
    rows = []
    for k in range(1, a.peer_pairs + 1):
        db = work / f"pair-{k}.db"
        full = scan_run(dedup, crawl, db, a.jobs, f"pair {k} full", logs, a.timeout, crawl.bytes + crawl.new_bytes)
        remove_db(db)
        peer = run_peer_files(a.peer, peer_py, crawl.root, work, logs, a.timeout, a.jobs)
        row = {"pair": k, "dedup_wall_s": full["wall_s"], "dedup_ok": full["ok"], "dedup_cpu_s": full["cpu_s"],
               "stage_seconds": full.get("stage_seconds"), "peer_wall_s": peer.get("wall_s"),
               "peer_ok": peer["ok"], "peer_cpu_s": peer.get("cpu_s")}  # fmt: skip
        if full["ok"] and peer["ok"]:
            row["ratio"] = round(full["wall_s"] / peer["wall_s"], 3)
        rows.append(row)
        print(f"  [{n}] pair {k}: dedup {full['status']} {full['wall_s']:.1f} s, peer {peer['status']} "
              f"{peer.get('wall_s', 0):.1f} s, ratio {row.get('ratio', '-')}", flush=True)  # fmt: skip
    return rows


def repeat_new(dedup: list[str], crawl: Crawl, db: Path, before: Path, a, logs: Path, n: int, n_new: int) -> list:
    """The +new run made again (#2 .. --new-repeats) from the database as the first found it."""
    rows = []
    for k in range(2, a.new_repeats + 1):
        restore_db(before, db)  # the crawl is the same: the new files stay
        row = scan_run(dedup, crawl, db, a.jobs, f"+new #{k}", logs, a.timeout, crawl.new_bytes)
        rows.append(row)
        print(f"  [{n}] +{n_new} files rescan #{k}: {row['status']}, {row['wall_s']:.1f} s", flush=True)
    return rows


def bench_size(n: int, a, stories: list[dict], base: Path, dedup: list[str], peer_py: Path | None,
               peer_reason: str) -> dict:  # fmt: skip
    rnd = random.Random(a.seed)
    work = base / str(n)
    if work.exists():
        shutil.rmtree(work)
    logs = work / "logs"
    logs.mkdir(parents=True)
    n_new = max(2, round(n * a.new_share))
    _, n_new_stories = split_new(n_new)
    pool, fresh = stories[: len(stories) - n_new_stories], stories[len(stories) - n_new_stories :]
    startup_s, version = startup(dedup, logs)
    res: dict = {"size": n, "load_start": load(), "runs": [], "startup_s": startup_s, "dedup_version": version}
    crawl = build_crawl(work / "crawl", n, pool, rnd)
    crawled = pool[: crawl.stories]

    def story_at(i: int) -> dict:
        return crawled[i] if i < len(crawled) else fresh[i - len(crawled) - NEW_STORY_BASE]

    labels = write_labels(crawl.root, story_at, work / "labels.json")  # not timed
    db = work / "d.db"
    res["host_probe_s"] = {"before_full": host_probe()}
    full = scan_run(dedup, crawl, db, a.jobs, "full", logs, a.timeout, crawl.bytes)
    res["runs"].append(full)
    print(f"  [{n}] full scan: {full['status']}, {full['wall_s']:.1f} s", flush=True)
    if full["ok"]:
        full["quality"] = quality(dedup, db, work / "labels.json", labels, work, "full", logs, a.scorer, a.timeout)
        print(f"  [{n}] full scan {quality_line(full['quality'])}", flush=True)
        again = scan_run(dedup, crawl, db, a.jobs, "rescan", logs, a.timeout, 0)
        res["runs"].append(again)
        print(f"  [{n}] rescan: {again['status']}, {again['wall_s']:.1f} s", flush=True)
        add_new(crawl, n_new, crawled, fresh, rnd)
        labels = write_labels(crawl.root, story_at, work / "labels-new.json")
        before = snapshot_db(db, work / "before-new") if a.new_repeats > 1 else None
        new = scan_run(dedup, crawl, db, a.jobs, "+new", logs, a.timeout, crawl.new_bytes)
        new["new_files"] = crawl.new_files
        res["runs"].append(new)
        print(f"  [{n}] +{n_new} files rescan: {new['status']}, {new['wall_s']:.1f} s", flush=True)
        if new["ok"]:
            new["quality"] = quality(dedup, db, work / "labels-new.json", labels, work, "new", logs, a.scorer,
                                     a.timeout)  # fmt: skip
            print(f"  [{n}] +new {quality_line(new['quality'])}", flush=True)
            res["runs"] += repeat_new(dedup, crawl, db, before, a, logs, n, n_new)
        if before is not None:
            shutil.rmtree(before, ignore_errors=True)
        for r in res["runs"][1:]:
            r["share_of_full"] = round(r["wall_s"] / full["wall_s"], 4)
        res["new_runs_s"] = [r["wall_s"] for r in res["runs"] if r["run"].startswith("+new") and r["ok"]]
        if res["new_runs_s"]:
            res["new_median_s"] = sorted(res["new_runs_s"])[len(res["new_runs_s"]) // 2]
            res["new_median_share"] = round(res["new_median_s"] / full["wall_s"], 4)
    res["host_probe_s"]["after_dedup"] = host_probe()
    # The peers run after dedup's three runs, on the crawl as they left it (N + new files): dedup's
    # runs follow each other as in earlier sessions' figures, with nothing else between them.
    if a.peer != "none" and a.peer_input in ("files", "both"):
        res["peer_files"] = peer_run(
            n, a, lambda: run_peer_files(a.peer, peer_py, crawl.root, work, logs, a.timeout, a.jobs),
            peer_py, peer_reason, full["ok"],
        )  # fmt: skip
    if a.peer != "none" and a.peer_input in ("texts", "both"):
        res["peer"] = peer_run(n, a, lambda: run_peer(a.peer, peer_py, db, work, logs, a.timeout, a.jobs),
                               peer_py, peer_reason, full["ok"])  # fmt: skip
    if a.peer_pairs and res.get("peer_files", {}).get("ok"):
        res["pairs"] = peer_pairs(n, a, crawl, work, logs, dedup, peer_py)
    if "peer" in res or "peer_files" in res:
        res["host_probe_s"]["after_peers"] = host_probe()
    c = asdict(crawl)
    c["root"] = str(crawl.root)
    res["crawl"] = c
    res["load_end"] = load()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000", help="comma-separated crawl sizes in documents")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--peer", choices=["text-dedup", "none"], default="none")
    ap.add_argument("--peer-input", choices=["texts", "files", "both"], default="both",
                    help="give the peer dedup's extracted texts, the crawl's files, or run it both ways")  # fmt: skip
    ap.add_argument("--peer-venv", default="/tmp/dedup-throughput-peer/venv", help="venv for the peer (kept)")
    ap.add_argument("--keep", default=None, help="build and keep everything under this directory")
    ap.add_argument(
        "--new-repeats",
        type=int,
        default=3,
        help="run the +new rescan this many times from the same database (the median is the figure)",
    )
    ap.add_argument(
        "--peer-pairs",
        type=int,
        default=0,
        help="then K full scans each beside a run of the peer from the files (the median ratio)",
    )
    ap.add_argument("--new-share", type=float, default=0.01, help="new files added before the last rescan, x N")
    ap.add_argument("--timeout", type=float, default=7200, help="seconds before one run is killed")
    ap.add_argument("--seed", type=int, default=0)
    # A smaller crawl with the copies a story has in a larger one: 1M documents of the 18,186 stories
    # have ~55 a story, as 100k documents of --stories 1819.
    ap.add_argument("--stories", type=int, default=0, help="use only the first K stories of the source")
    ap.add_argument("--source", default=str(HERE.parent / "shared/corpus/source/xwlb_articles.jsonl.gz"))
    ap.add_argument("--dedup", default=None, help="command for dedup (default: the venv's `dedup`)")
    ap.add_argument("--scorer", default=str(SCORER), help="the corpus scorer (score.py)")
    a = ap.parse_args()
    sizes = [int(x.replace("_", "")) for x in a.sizes.split(",") if x.strip()]
    dedup = dedup_command(a.dedup)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load0 = load()
    stories = load_stories(Path(a.source))
    if a.stories:
        stories = stories[: a.stories]
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="dedup-throughput-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"dedup throughput, {started}; {platform.node()}, {os.cpu_count()} CPUs; --jobs {a.jobs}; "
          f"sizes {sizes}; --new-share {a.new_share}; load average {load0}", flush=True)  # fmt: skip
    print(f"command: {shlex.join(dedup)} scan CRAWL --db DB --jobs {a.jobs} --json (full, rescan, +new)", flush=True)
    peer_py, peer_reason = None, ""
    if a.peer != "none":
        try:
            peer_py, peer_reason = peer_setup(a.peer, Path(a.peer_venv), base / "peer-logs",
                                              files=a.peer_input != "texts")  # fmt: skip
        except Exception as exc:  # the peer is optional: never fatal
            peer_reason = f"setup failed: {exc!r}"
        print(f"peer {a.peer}: {'ready' if peer_py else 'not run: ' + peer_reason}", flush=True)
    results = []
    try:
        for n in sizes:
            res = bench_size(n, a, stories, base, dedup, peer_py, peer_reason)
            results.append(res)
            print_size(res)
            if not a.keep:
                shutil.rmtree(base / str(n), ignore_errors=True)
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    out = {
        "started": started,
        "cpus": os.cpu_count(),
        "jobs": a.jobs,
        "new_share": a.new_share,
        "seed": a.seed,
        "dedup": shlex.join(dedup),
        "peer": a.peer,
        "peer_input": a.peer_input,
        "load_start": load0,
        "load_end": load(),
        "sizes": results,
    }
    print(f"\nload average at end {out['load_end']}")
    print(json.dumps(out, ensure_ascii=False))
    return 0 if all(r["ok"] for res in results for r in res["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
