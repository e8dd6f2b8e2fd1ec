"""Clustering and attribution quality on labelled crawls: scan, export, run the corpus scorer.

    python benchmarks/quality.py [--crawl DIR] [--labels FILE] [--jobs N] [--keep DIR] [--no-realworld]

Prints the scorer's figures and the scan's speed for the development corpus in
../shared/corpus/dev (or --crawl/--labels), then for the real pages in ../shared/realworld.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from dedup.models import Params  # noqa: E402
from dedup.pipeline import scan  # noqa: E402
from dedup.store import Store  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crawl", default=str(HERE.parent / "shared/corpus/dev/crawl"))
    ap.add_argument("--labels", default=str(HERE.parent / "shared/corpus/dev/labels.json"))
    ap.add_argument(
        "--realworld", default=str(HERE.parent / "shared/realworld"), help="real pages: crawl/, labels.json"
    )
    ap.add_argument("--no-realworld", action="store_true", help="score only --crawl")
    ap.add_argument("--scorer", default=str(HERE.parent / "shared/corpus/score.py"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", help="keep the databases and predictions in this directory")
    ap.add_argument("--seed", type=int, default=Params.seed, help="MinHash seed (run several to see the spread)")
    a = ap.parse_args()
    out = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="dedup-quality-"))
    print(f"== {a.crawl}")
    evaluate(Path(a.crawl), Path(a.labels), out, a, parents=True)
    rw = Path(a.realworld)
    if not a.no_realworld and (rw / "crawl").is_dir():
        print(f"\n== {rw / 'crawl'} (real pages)")
        evaluate(rw / "crawl", rw / "labels.json", out / "realworld", a, parents=False)
    return 0


def evaluate(crawl: Path, labels_path: Path, out: Path, a, parents: bool) -> None:
    """Scan one labelled crawl into `out`, export, print the scorer's figures."""
    out.mkdir(parents=True, exist_ok=True)
    db = out / "dedup.db"
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = scan(crawl, db, Params(seed=a.seed), jobs=a.jobs)
    secs = time.perf_counter() - t0
    pred = out / "pred.jsonl"
    store = Store(db, readonly=True)
    with pred.open("w", encoding="utf-8") as f:
        for row in store.export_rows():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    store.close()
    print(f"seed {a.seed}; stages (s): {summary.stage_seconds}")
    print(
        f"scan: {summary.documents} documents, {summary.clusters} clusters, {summary.skipped} skipped "
        f"in {secs:.1f} s = {summary.documents / secs:.0f} docs/s with --jobs {a.jobs}"
    )
    res = subprocess.run([sys.executable, a.scorer, "--labels", str(labels_path), "--pred", str(pred)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    print(res.stdout, end="")
    if not parents:
        return
    # Diagnostic beyond the scorer: the labels' parent of each copy (read here only, never by
    # the product) against the likely parent the scan stored.
    labels = json.loads(labels_path.read_text(encoding="utf-8"))["documents"]
    store = Store(db, readonly=True)
    path = dict(store.db.execute("SELECT id, path FROM documents").fetchall())
    ok = n = 0
    for doc_id, parent in store.db.execute("SELECT document_id, parent_id FROM memberships WHERE role = 'copy'"):
        want = labels.get(path[doc_id], {}).get("parent")
        if want:
            n += 1
            ok += path.get(parent) == want
    store.close()
    print(f"propagation: likely parent = labelled parent for {ok}/{n} copies = {ok / max(n, 1):.4f}")


if __name__ == "__main__":
    sys.exit(main())
