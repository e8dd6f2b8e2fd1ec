"""End-to-end speed and memory of `scan` on a generated crawl.

    python benchmarks/speed.py [--stories 2000] [--copies 3] [--jobs 2]

Builds a crawl from real news texts (../shared/corpus/source/xwlb_articles.jsonl.gz): each story
as a publisher HTML page, plus copies as platform HTML, farm .txt and JSON with boilerplate and
truncation. Then times a first scan and a rescan with nothing new, and reports documents/s and
the peak resident memory of the scanning process and its workers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from dedup.models import Params  # noqa: E402
from dedup.pipeline import scan  # noqa: E402

PUB = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}_示例新闻网</title>
<meta name="publishdate" content="{time}"></head><body><div class="nav"><a href="/">首页</a></div>
<h1>{title}</h1><div class="info">时间：{time}</div><div class="content">{paras}</div>
<div class="sidebar"><ul><li><a href="/x">其他新闻标题</a></li></ul></div>
<div class="footer">版权所有</div></body></html>"""
PLAT = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>
<meta property="article:published_time" content="{time}"></head><body><h1>{title}</h1>
<div class="article-info"><span>{time}</span><span>来源：示例新闻网</span></div>
<article>{paras}</article>
<div class="statement">声明：该文观点仅代表作者本人，搜狐号系信息发布平台，搜狐仅提供信息存储空间服务。</div>
</body></html>"""


def build(root: Path, stories: list[dict], copies: int, rnd: random.Random) -> int:
    n = 0
    for i, s in enumerate(stories):
        paras = s["paragraphs"]
        day = s["date"].replace("-", "")[4:8] if s.get("date") else "0101"
        t = f"{(s.get('date') or '2023-01-01')} 08:{i % 60:02d}"
        html = "".join(f"<p>{p}</p>" for p in paras)
        p = root / f"www.example-news.cn/2023/{day}/{i}.html"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(PUB.format(title=s["title"], time=t, paras=html), encoding="utf-8")
        n += 1
        for k in range(copies):
            kept = paras if rnd.random() < 0.6 else paras[: max(1, len(paras) * 2 // 3)]
            kind = k % 3
            if kind == 0:
                q = root / f"www.sohu.com/2023/{day}/{i}_{k}.html"
                body = "".join(f"<p>{x}</p>" for x in kept)
                text = PLAT.format(title="【关注】" + s["title"], time=t.replace("08:", "11:"), paras=body)
            elif kind == 1:
                q = root / f"www.farm-wenda.com/2023/{day}/{i}_{k}.txt"
                body = "\n\n".join("  " + x for x in kept)
                text = f"来源: 示例问答网\n{t.replace('08:', '15:')}:00\n\n{s['title']}\n\n{body}\n\n发布于:某县\n"
            else:
                q = root / f"mp.weixin.qq.com/2023/{day}/{i}_{k}.json"
                text = json.dumps({"url": f"https://mp.weixin.qq.com/s/{i}_{k}", "title": s["title"],
                                   "content": "\n".join(kept), "publish_time": t, "source": "示例新闻网"},
                                  ensure_ascii=False)  # fmt: skip
            q.parent.mkdir(parents=True, exist_ok=True)
            q.write_text(text, encoding="utf-8")
            n += 1
    return n


def peak_rss_mb() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(me, kids) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=str(HERE.parent / "shared/corpus/source/xwlb_articles.jsonl.gz"))
    ap.add_argument("--stories", type=int, default=2000)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    rnd = random.Random(0)
    with gzip.open(a.source, "rt", encoding="utf-8") as f:
        stories = [json.loads(line) for _, line in zip(range(a.stories), f, strict=False)]
    tmp = Path(tempfile.mkdtemp(prefix="dedup-speed-"))
    try:
        n = build(tmp / "crawl", stories, a.copies, rnd)
        db = tmp / "d.db"
        t0 = time.perf_counter()
        s = scan(tmp / "crawl", db, Params(), jobs=a.jobs)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        scan(tmp / "crawl", db, Params(), jobs=a.jobs)
        again = time.perf_counter() - t0
        print(f"crawl: {n} documents ({a.stories} stories x {1 + a.copies}), --jobs {a.jobs}")
        print(f"first scan: {first:.1f} s = {n / first:.0f} documents/s; {s.clusters} clusters")
        print(f"  stages (s): {s.stage_seconds}")
        print(f"rescan, nothing new: {again:.1f} s")
        print(f"peak RSS (largest process): {peak_rss_mb():.0f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
