"""Extraction quality on a labelled crawl: title exact match, publish time within one minute,
body recall/precision against the story text (character 4-grams), and pages/s of extraction.

    python benchmarks/extraction.py [--crawl ../shared/corpus/dev/crawl] [--labels ...] [--source ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dedup.discover import discover_files, read_source  # noqa: E402
from dedup.extract import extract_documents  # noqa: E402
from dedup.models import Document  # noqa: E402
from dedup.normalize import fold, load_patterns, normalize_text  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
KEEP = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def grams(text: str, n: int = 4) -> Counter:
    s = "".join(KEEP.findall(text))
    return Counter(s[i : i + n] for i in range(max(0, len(s) - n + 1)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crawl", default=str(HERE.parent / "shared/corpus/dev/crawl"))
    ap.add_argument("--labels", default=str(HERE.parent / "shared/corpus/dev/labels.json"))
    ap.add_argument("--source", default=str(HERE.parent / "shared/corpus/source/xwlb_articles.jsonl.gz"))
    ap.add_argument("--show", type=int, default=0, help="print this many failures of each kind")
    a = ap.parse_args()
    labels = json.loads(Path(a.labels).read_text(encoding="utf-8"))
    docs_l, stories = labels["documents"], labels["stories"]
    texts = {}
    with gzip.open(a.source, "rt", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            texts[o["id"]] = "\n".join(o["paragraphs"])
    root = Path(a.crawl)
    docs: dict[str, Document] = {}
    skipped = []
    t0 = time.perf_counter()
    for found in discover_files(root):
        if found.source is None:
            continue
        for d in extract_documents(read_source(root, found.source)):
            if isinstance(d, Document):
                docs[d.path] = d
            else:
                skipped.append(d)
    secs = time.perf_counter() - t0
    n = title_ok = time_ok = time_n = time_stated = time_stated_ok = 0
    rec_sum = prec_sum = body_n = nrec_sum = nprec_sum = 0.0
    clean = [0.0, 0.0, 0]  # normalized recall, precision, count over copies without typos or ads
    patterns = load_patterns()
    fails: dict[str, list] = {"title": [], "time": [], "body": []}
    for path, lab in docs_l.items():
        d = docs.get(path)
        n += 1
        if d is None:
            fails["title"].append((path, "missing", lab["title"]))
            continue
        if d.title == lab["title"]:
            title_ok += 1
        else:
            fails["title"].append((path, d.title, lab["title"]))
        if lab.get("time"):
            time_n += 1
            want = datetime.fromisoformat(lab["time"])
            got = datetime.fromisoformat(d.published_at).replace(tzinfo=None) if d.published_at else None
            raw = (root / d.file_path).read_text(encoding="utf-8", errors="replace")
            if "#" in d.path:
                raw = raw.splitlines()[int(d.path.rsplit("#", 1)[1])]
            stated = want.strftime("%H:%M") in raw or str(int(want.timestamp()) - 8 * 3600) in raw
            time_stated += stated
            if got is not None and abs((got - want).total_seconds()) <= 60:
                time_ok += 1
                time_stated_ok += stated
            else:
                fails["time"].append((path, d.published_at, d.time_source, lab["time"]))
        # A copy of a copy inherits its parent's cuts, which the label lists on the parent only.
        chain, parent = set(lab["transforms"]), lab.get("parent")
        while parent:
            chain |= set(docs_l[parent]["transforms"])
            parent = docs_l[parent].get("parent")
        story = texts.get(stories[lab["stories"][0]]["article_id"], "") if len(lab["stories"]) == 1 else ""
        # Template siblings are rewritten stories: the source has no text to compare them with.
        if story and not {"truncate", "drop_paragraphs"} & chain:
            g, e = grams(story), grams(d.text)
            inter = sum((g & e).values())
            r, p = inter / max(1, sum(g.values())), inter / max(1, sum(e.values()))
            rec_sum += r
            prec_sum += p
            body_n += 1
            # The story text folded the same way (NFKC, Simplified, lower case) for a fair match.
            gn = grams(fold(story).lower())
            n_ = grams(normalize_text(d.text, patterns).text)
            inter = sum((gn & n_).values())
            nr, np_ = inter / max(1, sum(gn.values())), inter / max(1, sum(n_.values()))
            nrec_sum += nr
            nprec_sum += np_
            if not {"typos", "ad_insert"} & chain:
                clean[0] += nr
                clean[1] += np_
                clean[2] += 1
            if r < 0.95 or p < 0.9:
                fails["body"].append((path, round(r, 3), round(p, 3)))
    print(f"crawl: {a.crawl}")
    print(
        f"documents: {len(docs)} extracted, {len(skipped)} skipped, {n} labelled; "
        f"{len(docs) / secs:.0f} docs/s (1 core)"
    )
    print(f"title exact match: {title_ok}/{n} = {title_ok / n:.4f}")
    print(f"publish time within 60 s: {time_ok}/{time_n} = {time_ok / max(1, time_n):.4f}")
    print(
        f"  where the page states the time (its HH:MM or Unix time is in the page or record): "
        f"{time_stated_ok}/{time_stated} = {time_stated_ok / max(1, time_stated):.4f}"
    )
    print(
        f"body recall (4-grams): {rec_sum / body_n:.4f}  precision: {prec_sum / body_n:.4f}  "
        f"over {int(body_n)} documents"
    )
    print(
        f"  after normalization (the compared text): recall {nrec_sum / body_n:.4f}  precision {nprec_sum / body_n:.4f}"
    )
    print(
        f"  after normalization, pages without typos or inserted ads: recall {clean[0] / clean[2]:.4f}  "
        f"precision {clean[1] / clean[2]:.4f} over {clean[2]} documents"
    )
    for k, v in fails.items():
        for row in v[: a.show]:
            print(k, *row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
