"""The peer's own reading of a crawl: what a user of a MinHash deduplicator must do before it runs.

    python benchmarks/peer_extract.py CRAWL OUT.jsonl [--jobs J]

Run by benchmarks/throughput.py (--peer-input files) with the peer's venv, timed as one measured
subprocess before the peer's MinHash, so that the peer is given the same files dedup is given,
not texts dedup extracted for it. It imports nothing of dedup: every file of the crawl (hidden
ones skipped, names sorted) is read in J processes and
- .html / .htm / .shtml / .xhtml: the main text by trafilatura (`extract`, its defaults, bytes
  given so it detects the encoding itself), the usual extractor of such pipelines (the issue's
  "trafilatura + datasketch" peer);
- .txt: the text, UTF-8, else GB18030;
- .json: each record (an object, or each object of a list), .jsonl / .ndjson: each line's: its
  "title" and its longest string value;
- others: nothing.
Each text is cut into words by rjieba (the tokenizer dedup uses: the fastest jieba there is) and
written space-separated, one {"id", "text"} line per document, as throughput's --peer-input texts
writes them. Prints one line: files, documents, files that gave no text, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

HTML = (".html", ".htm", ".shtml", ".xhtml")


def crawl_files(root: str) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return out


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def _record_text(rec) -> str:
    if not isinstance(rec, dict):
        return ""
    strings = [v for v in rec.values() if isinstance(v, str)]
    body = max(strings, key=len, default="")
    title = rec.get("title") if isinstance(rec.get("title"), str) else ""
    return f"{title}\n{body}" if title and title != body else body


def texts_of(path: str) -> list[str]:
    import trafilatura

    name = path.lower()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    if name.endswith(HTML):
        return [trafilatura.extract(data) or ""]
    if name.endswith(".txt"):
        return [_decode(data)]
    if name.endswith(".json"):
        try:
            obj = json.loads(_decode(data))
        except ValueError:
            return []
        return [_record_text(r) for r in (obj if isinstance(obj, list) else [obj])]
    if name.endswith((".jsonl", ".ndjson")):
        out = []
        for line in _decode(data).splitlines():
            try:
                out.append(_record_text(json.loads(line)))
            except ValueError:
                continue
        return out
    return []


def words_of(path: str) -> tuple[str, list[str]]:
    import rjieba

    return path, [" ".join(w for w in rjieba.cut(t) if w.strip()) for t in texts_of(path) if t.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("crawl")
    ap.add_argument("out")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    t0 = time.perf_counter()
    files = crawl_files(a.crawl)
    docs = empty = 0
    with open(a.out, "w", encoding="utf-8") as out, Pool(a.jobs) as pool:
        for path, texts in pool.imap(words_of, files, chunksize=64):
            rel = os.path.relpath(path, a.crawl)
            if not texts:
                empty += 1
            for i, words in enumerate(texts):
                out.write(json.dumps({"id": rel if i == 0 else f"{rel}#{i}", "text": words}, ensure_ascii=False))
                out.write("\n")
                docs += 1
    print(f"peer extract: {len(files)} files, {docs} documents, {empty} files without text, "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
