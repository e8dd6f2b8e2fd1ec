"""Where one `dedup` command's memory goes: run it in this process and sample its memory.

    python benchmarks/memtrace.py [--every 0.25] [--out trace.json] [--set candidates.LOOKUP_ROWS=500000] \
        -- scan CRAWL --db DB --jobs 2 --json

A thread reads /proc/self/smaps_rollup (RSS and anonymous memory) every --every seconds, with the
main thread's innermost dedup frames at that moment. Each time anonymous memory passes its last
recorded peak by 20 MB the sample is kept as a peak; the peaks are printed at the end (stderr),
and every sample and peak goes to --out as JSON. Anonymous memory leaves out the memory-mapped
candidate index, whose pages the kernel may drop; worker processes are not sampled (their own
memory is in throughput.py's PSS figures). --set changes a module constant of dedup first (an
experiment: `candidates.LOOKUP_ROWS=500000`). To see the clustering of a scanned database again,
scan a copy of it after `UPDATE settings SET value = 'x' WHERE key = 'clusters_stamp'` (and remove
DB.index/ to match every text against a rebuilt index).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
import time
import traceback
from pathlib import Path

from throughput import rollup_kb  # benchmarks/, this script's folder

PEAK_STEP_KB = 20 * 1024


def dedup_frames(thread_id: int, depth: int = 6) -> list[str]:
    """The innermost `depth` frames of a thread that are dedup's code, innermost last."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return []
    stack = traceback.extract_stack(frame)
    return [f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in stack if "/dedup/" in f.filename][-depth:]


class Sampler(threading.Thread):
    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.main = threading.get_ident()
        self.done = threading.Event()
        self.samples: list[dict] = []
        self.peaks: list[dict] = []

    def run(self) -> None:
        t0, best = time.monotonic(), 0
        while not self.done.is_set():
            rss, anon = rollup_kb("self", b"Rss", b"Anonymous")
            frames = dedup_frames(self.main)
            s = {"s": round(time.monotonic() - t0, 2), "rss_mb": rss // 1024, "anon_mb": anon // 1024, "at": frames}
            self.samples.append({**s, "at": frames[-1:]})
            if anon > best + PEAK_STEP_KB:
                best = anon
                self.peaks.append(s)
            self.done.wait(self.every)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=float, default=0.25, help="seconds between samples")
    ap.add_argument("--out", default="memtrace.json")
    ap.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=INT",
                    help="set an integer constant of a dedup module first")  # fmt: skip
    ap.add_argument("args", nargs=argparse.REMAINDER, help="-- then the dedup command line")
    opts = ap.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    for item in opts.set:
        target, value = item.split("=", 1)
        module, name = target.rsplit(".", 1)
        setattr(importlib.import_module(f"dedup.{module}"), name, int(value))
    from dedup.cli import cli

    sampler = Sampler(opts.every)
    sampler.start()
    code = 0
    try:
        cli.main(args, prog_name="dedup", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sampler.done.set()
        sampler.join()
        Path(opts.out).write_text(json.dumps({"args": args, "set": opts.set, "peaks": sampler.peaks,
                                              "samples": sampler.samples}))  # fmt: skip
        for p in sampler.peaks[-12:]:
            where = " <- ".join(reversed(p["at"]))
            print(f"{p['s']:8.1f} s  RSS {p['rss_mb']:6d} MB  anon {p['anon_mb']:6d} MB  {where}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
