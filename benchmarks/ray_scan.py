"""The Ray engine against the local engine: the same first scan of one crawl, each into its own database.

    python benchmarks/ray_scan.py --crawl /tmp/tpfinal/100000/crawl --out /tmp/raybench [--jobs 2]
                                  [--engines local,ray] [--address ADDR] [--timeout 7200]
    python benchmarks/ray_scan.py --measure DB    # the per-document figures docs/scaling.md uses

For each engine, `dedup scan CRAWL --db OUT/ENGINE.db --jobs J --json [--engine ray [--address ADDR]]`
runs as a subprocess on an empty database, measured from outside: wall seconds (interpreter start,
imports and, for ray without --address, starting a local Ray of J CPUs included), the summary's
per-stage seconds, the CPU seconds of the scanning process itself (the head: sampled with the
memory, so the last half second is missing), and the peak summed RSS of the scan's process tree
(every 0.5 s; a Ray started by the scan is part of its tree: raylet, GCS, workers; the object
store's shared memory is counted in every process that maps it, so this overstates Ray's memory).
Then both databases are exported (`dedup export --format jsonl`) and compared byte for byte: ids,
clusters, originals and roles must be equal. The load average (1/5/15 min) is printed before and
after each run: the machine is shared.

Steps (--steps, all by default): `full`, the first scan of the crawl into empty databases;
`rescan`, the same crawl again with nothing new; `grow`, a copy of the crawl made of hard links
(same sizes and times: unchanged for the databases) with --new pages more (copies of the crawl's
HTML pages under a new host, a sentence of their own added), scanned into the same databases: a nightly
run with the same persistent index.

Prints a line per step and engine, the overhead of each engine against the first one (wall and per
stage), whether the exports are identical, and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dedup_command, live_processes  # noqa: E402

# Seconds between two samples of the process tree's memory.
SAMPLE_EVERY = 0.5


def tree_rss(root: int) -> int:
    """Summed VmRSS (bytes) of a process and all its live descendants."""
    procs = live_processes()
    children: dict[int, list[int]] = {}
    for pid, fields in procs.items():
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (not its children) so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def run_scan(cmd: list[str], timeout: float) -> dict:
    """One measured scan: wall, the --json summary, peak tree RSS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = [0]
    head_cpu = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_EVERY):
            peak[0] = max(peak[0], tree_rss(proc.pid))
            head_cpu[0] = max(head_cpu[0], cpu_seconds(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        return {"error": f"timed out after {timeout:g} s"}
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {err.strip()[-500:]}"}
    summary = json.loads(out)
    return {
        "wall_s": round(wall, 1),
        "in_process_s": summary["seconds"],
        "stage_s": summary["stage_seconds"],
        "documents": summary["documents"],
        "clusters": summary["clusters"],
        "pairs_verified": summary["pairs_verified"],
        "peak_tree_rss_mb": round(peak[0] / 2**20),
        "head_cpu_s": round(head_cpu[0], 1),
        "stderr": err.strip()[-500:],
    }


def measure_index(db: Path) -> dict:
    """What docs/scaling.md extrapolates from, per document of a scanned database: the signature
    bytes stored, the index rows (by kind) and their bytes, how full the buckets are (the rows a
    lookup of one key returns), and the verified pairs."""
    import numpy as np

    from dedup.candidates import KIND_SAMPLE, KIND_WHOLE, SegmentFiles

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    one = conn.execute(
        "SELECT count(*), avg(length(signature)), avg(length(samples)), avg(length(words)), "
        "avg(length(CAST(text AS BLOB))), count(DISTINCT content_hash) FROM documents WHERE status = 'ok'"
    ).fetchone()
    docs, sig, samples, words, text, texts = one
    windows, window_bytes = conn.execute("SELECT count(*), coalesce(sum(length(signature)), 0) FROM windows").fetchone()
    indexed = conn.execute("SELECT count(*) FROM documents WHERE index_segment IS NOT NULL").fetchone()[0]
    pairs, copies = conn.execute("SELECT count(*), count(kind) FROM verdicts").fetchone()
    seg_ids = [r[0] for r in conn.execute("SELECT id FROM index_segments ORDER BY id")]
    files = SegmentFiles(db)
    keys = np.concatenate([np.asarray(files.open(s).keys) for s in seg_ids])
    kinds = np.concatenate([np.asarray(files.open(s).vals) & 3 for s in seg_ids])
    _, per_key = np.unique(keys, return_counts=True)
    rows = len(keys)
    return {
        "documents": docs,
        "distinct_texts": texts,
        "indexed_texts": indexed,
        "signature_bytes_per_doc": round(sig + window_bytes / docs + samples),
        "whole_signature_bytes": round(sig),
        "window_signatures_per_doc": round(windows / docs, 3),
        "sample_bytes_per_doc": round(samples),
        "words_bytes_per_doc": round(words),
        "text_bytes_per_doc": round(text),
        "index_rows": rows,
        "index_rows_per_indexed_text": round(rows / indexed, 1),
        "index_rows_by_kind_per_indexed_text": {
            "whole": round(int((kinds == KIND_WHOLE).sum()) / indexed, 1),
            "window": round(int((kinds == 1).sum()) / indexed, 1),
            "sample": round(int((kinds == KIND_SAMPLE).sum()) / indexed, 1),
        },
        "index_bytes_per_indexed_text": round(16 * rows / indexed),
        "distinct_keys": len(per_key),
        "rows_per_key_looked_up": round(float((per_key.astype(np.float64) ** 2).sum() / rows), 2),
        "verified_pairs": pairs,
        "verified_pairs_per_doc": round(pairs / docs, 3),
        "copy_pairs": copies,
    }


def grow(crawl: Path, dest: Path, n: int) -> int:
    """A copy of the crawl in `dest` (hard links: the same sizes and times, so a rescan finds them
    unchanged) plus n new pages: every k-th HTML page of the crawl again under a new host, with a
    sentence of its own added to its last paragraph (a near copy of a known story: new text, whose
    candidate pairs are verified)."""
    shutil.copytree(crawl, dest, copy_function=os.link)
    pages = sorted(p for p in crawl.rglob("*.html"))
    step = max(1, len(pages) // n)
    for i, page in enumerate(pages[::step][:n]):
        html = page.read_text(encoding="utf-8", errors="replace")
        cut = html.rfind("</p>")
        line = f"据本站记者了解，第{i}号通报发布后，各地有关部门正在抓紧研究落实具体措施。"
        html = html[:cut] + line + html[cut:] if cut >= 0 else html + line
        out = dest / "www.bench-new.cn" / f"{i // 1000}" / f"{i}.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    return min(n, len(pages[::step]))


def run_step(step: str, crawl: Path, args, dedup: list[str]) -> dict[str, dict]:
    """Every engine's scan of `crawl` into its own database (OUT/ENGINE.db), then their exports compared."""
    results: dict[str, dict] = {}
    for engine in args.engines.split(","):
        db = args.out / f"{engine}.db"
        cmd = [*dedup, "scan", str(crawl), "--db", str(db), "--jobs", str(args.jobs), "--json"]
        if engine != "local":
            cmd += ["--engine", engine] + (["--address", args.address] if args.address else [])
        before = load()
        res = run_scan(cmd, args.timeout)
        res["load_before"], res["load_after"] = before, load()
        results[engine] = res
        if "error" in res:
            print(f"{step:7} {engine:6}: {res['error']}", flush=True)
            continue
        stages = ", ".join(f"{k} {v:.1f}" for k, v in res["stage_s"].items())
        print(
            f"{step:7} {engine:6} wall {res['wall_s']:7.1f} s  in-process {res['in_process_s']:7.1f} s  ({stages})  "
            f"{res['documents']:,} documents, {res['clusters']:,} clusters, {res['pairs_verified']:,} pairs  "
            f"head CPU {res['head_cpu_s']:.1f} s  peak tree RSS {res['peak_tree_rss_mb']:,} MB  "
            f"load {res['load_before']} -> {res['load_after']}",
            flush=True,
        )
        export = subprocess.run([*dedup, "export", "--db", str(db), "--format", "jsonl"], capture_output=True)
        (args.out / f"{engine}.jsonl").write_bytes(export.stdout)
    ok = [e for e, r in results.items() if "error" not in r]
    base = results[ok[0]] if ok else None
    for e in ok[1:]:
        r = results[e]
        same = (args.out / f"{e}.jsonl").read_bytes() == (args.out / f"{ok[0]}.jsonl").read_bytes()
        r["export_identical"] = same
        r["overhead_wall"] = round(r["wall_s"] / base["wall_s"] - 1, 3)
        per_stage = {k: round(v - base["stage_s"].get(k, 0.0), 1) for k, v in r["stage_s"].items()}
        print(f"{step:7} {e} against {ok[0]}: wall {r['overhead_wall']:+.0%}, seconds per stage {per_stage}; "
              f"exports {'identical' if same else 'DIFFER'}", flush=True)  # fmt: skip
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--measure", type=Path, default=None, metavar="DB",
                    help="only print the per-document figures of a scanned database (docs/scaling.md)")  # fmt: skip
    ap.add_argument("--crawl", type=Path)
    ap.add_argument("--out", type=Path, help="folder for the databases (emptied by the full step)")
    ap.add_argument("--steps", default="full,rescan,grow",
                    help="full: first scans into empty databases; rescan: the same crawl again, nothing new; "
                         "grow: a hard-linked copy of the crawl with --new pages more")  # fmt: skip
    ap.add_argument("--new", type=int, default=1000, help="new pages of the grow step")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--address", default=None, help="a Ray cluster to join (default: the scan starts one)")
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--dedup", default=None, help="the dedup command to measure (default: beside this Python)")
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure_index(args.measure), indent=1))
        return
    if not args.crawl or not args.out:
        ap.error("--crawl and --out are needed (or --measure DB)")
    dedup = dedup_command(args.dedup)
    steps = args.steps.split(",")
    if "full" in steps and args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    files = sum(1 for p in args.crawl.rglob("*") if p.is_file())
    print(f"crawl {args.crawl}: {files:,} files; jobs {args.jobs}; cpus {os.cpu_count()}", flush=True)
    report: dict[str, dict] = {}
    for step in steps:
        crawl = args.crawl
        if step == "grow":
            crawl = args.out / "crawl"
            if crawl.exists():
                shutil.rmtree(crawl)
            added = grow(args.crawl, crawl, args.new)
            print(f"grow: {crawl} = the crawl (hard links) + {added:,} new pages", flush=True)
        report[step] = run_step(step, crawl, args, dedup)
    print(json.dumps({"crawl": str(args.crawl), "files": files, "jobs": args.jobs, "results": report}))


if __name__ == "__main__":
    main()
