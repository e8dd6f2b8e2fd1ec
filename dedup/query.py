"""Ask a database which stored clusters a text copies, without storing the text.

The text goes through the stages a scanned page goes through (extract a file, normalize, shingle,
sign, with the parameters and the learned boilerplate the database was scanned with), its
candidates are looked up in the candidate index (its segment files, memory-mapped read-only) and
verified against the stored signatures by the rules of a scan (cluster.verify, word by word when
the signatures cannot settle a pair). Nothing is written: not the database, not the index.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from dedup import arrays
from dedup.candidates import SegmentFiles, TextSizes, batch_pairs, document_sig, load_sigs, lookup, text_rows
from dedup.cluster import DocSig, Edge, sample_query_max, verify
from dedup.discover import ReadRefused, container_kind, kind_of, read_source
from dedup.errors import DedupError, NotFoundError
from dedup.extract import extract_documents
from dedup.ingest import permutations_key, prepare_document
from dedup.models import MAX_FILE_SIZE, Document, Params, Skipped, SourceFile
from dedup.normalize import load_patterns
from dedup.pipeline import compared_words
from dedup.signature import load_permutations

# Stored signatures read at a time when the candidate index cannot be used (its files lost, or
# texts an interrupted scan left unindexed): memory bounded by the chunk, not the crawl.
SCAN_CHUNK = 2_000
HOST = re.compile(r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+$")


@dataclass
class QueryResult:
    """One queried text: what it was read as, and the stored clusters it copies."""

    query: str  # the file (a record: FILE#N) or "--text"
    title: str = ""
    site: str = ""
    status: str = "ok"  # ok | too_short | skipped
    n_shingles: int = 0
    note: str = ""
    # One entry per cluster (its best-matching member), then documents in no cluster: dicts with
    # cluster (id or None), document_id, jaccard, containment, way, matched (members matched).
    matches: list[dict] = field(default_factory=list)


def scan_params(store) -> Params:
    """The parameters the database was scanned with (so that signatures compare)."""
    stored = store.stored_params()
    if not stored:
        raise NotFoundError(f"{store.path} holds no scan yet: run `dedup scan CRAWL_DIR --db {store.path}` first")
    known = {f.name for f in dataclasses.fields(Params)}
    return Params(**{k: v for k, v in stored.items() if k in known})


def query_text(store, text: str, title: str = "", boilerplate: Path | None = None) -> QueryResult:
    """The stored clusters a text copies; nothing is stored."""
    doc = Document(path="--text", file_path="--text", kind="txt", title=title, text=text)
    return query_documents(store, [doc], boilerplate)[0]


def query_file(store, path: Path, boilerplate: Path | None = None) -> list[QueryResult]:
    """The stored clusters each document of a file (a page, a feed's records, a WARC's pages) copies."""
    path = Path(path)
    kind = kind_of(path.name) or container_kind(path.name)
    if kind is None:
        raise DedupError(f"{path}: not a page dedup reads (.html, .txt, .json, .jsonl, .warc, .gz)")
    # Read as a scan reads a crawled file: a regular file only (never a FIFO or a device), capped.
    sf = SourceFile(path=path.name, kind=kind, size=0, mtime=0.0, sha1="", follow_link=True)
    try:
        read_source(path.parent, sf, MAX_FILE_SIZE)
    except ReadRefused as exc:
        raise DedupError(f"{path}: {exc}") from None
    except OSError as exc:
        raise DedupError(f"cannot read {path}: {exc.strerror or exc}") from None
    sf.path = _crawl_path(path)
    items = extract_documents(sf)
    docs = [d for d in items if isinstance(d, Document)]
    out = query_documents(store, docs, boilerplate) if docs else []
    out += [
        QueryResult(s.path, status="skipped", note=f"not read: {s.reason}") for s in items if isinstance(s, Skipped)
    ]
    return out


def _crawl_path(path: Path) -> str:
    """The path a crawl would give the file: from the folder named like a host (wget's
    `www.qcnews.cn/2023/…`), so that the site is known as a scan would know it; else its name."""
    parts = path.resolve().parts
    for k in range(len(parts) - 2, -1, -1):
        if HOST.match(parts[k].lower()):
            return "/".join(parts[k:])
    return path.name


def query_documents(store, docs: list[Document], boilerplate: Path | None = None) -> list[QueryResult]:
    """Each document signed as a scan would sign it, then matched; nothing is stored."""
    params = scan_params(store)
    # The permutations the database's signatures were made with (stored by the scan that made them).
    load_permutations(params.num_perm, params.seed, params.scheme, store.stamp(permutations_key(params)))
    patterns = load_patterns(boilerplate)
    learned = store.learned()
    index = _Index(store, params)
    out = []
    for doc in docs:
        prepare_document(doc, params, patterns, learned.get(doc.site, frozenset()))
        res = QueryResult(doc.path, doc.title, doc.site, doc.status, doc.n_shingles)
        if doc.status != "ok":
            res.note = (
                f"too little text to compare: {doc.n_shingles} word shingles (at least {params.min_shingles} needed)"
            )
            out.append(res)
            continue
        words = compared_words(doc.site, doc.text, patterns, learned)
        found = index.match(document_sig(doc, index.query_id, params), words, patterns, learned)
        same = store.stored_as(doc.path, doc.content_hash)
        notes = [index.note] if index.note else []
        if same is not None:
            notes.append(f"this text is stored as document {same} (`dedup doc {same}` tells its story)")
        res.note = "; ".join(notes)
        res.matches = _by_cluster(store, found, index.copies)
        out.append(res)
    return out


class _Index:
    """The candidate index of a database, read-only, with what the candidate rules need."""

    def __init__(self, store, params: Params) -> None:
        self.store, self.params, self.note = store, params, ""
        reps = store.representatives()
        self.sizes, self.copies = reps.sizes, reps.copies
        self.query_id = max(self.sizes, default=0) + 1
        top = self.query_id + 1
        self.n_shingles = np.zeros(top, np.int64)
        self.n_samples = np.zeros(top, np.int64)
        for t in store.text_sizes():
            if t.doc_id < top:
                self.n_shingles[t.doc_id], self.n_samples[t.doc_id] = t.n_shingles, t.n_samples
        self.live = np.zeros(top, np.int64)
        indexed = {d: seg for d, seg in store.indexed().items() if d in self.sizes}
        for d, seg in indexed.items():
            self.live[d] = seg
        self.segments = []
        try:
            files = SegmentFiles(store.path)
            self.segments = [files.open(s) for s in store.index_segments()]
            self.unindexed = sorted(d for d in self.sizes if d not in indexed)
        except (OSError, ValueError) as exc:
            self.note = f"candidate index unreadable ({exc}): matched against every stored signature (slower)"
            self.segments = []
            self.unindexed = sorted(self.sizes)
        self._sigs: dict[int, DocSig] = {}

    def _rows_of_unindexed(self, qkeys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of texts the index does not hold that carry one of `qkeys` (chunk by chunk)."""
        ks, vs = [], []
        for k in range(0, len(self.unindexed), SCAN_CHUNK):
            chunk = load_sigs(self.store, self.unindexed[k : k + SCAN_CHUNK], self.params)
            keys, vals = text_rows(chunk.values(), self.params)
            hit = arrays.isin(keys, qkeys)
            ks.append(keys[hit])
            vs.append(vals[hit])
        if not ks:
            return np.empty(0, np.uint64), np.empty(0, np.int64)
        return np.concatenate(ks), np.concatenate(vs)

    def match(self, q: DocSig, words: list[str], patterns, learned) -> list[tuple[int, Edge]]:
        """(representative, verified edge) of every stored text the query copies or is copied by."""
        qk, qv = text_rows([q], self.params)
        keys = arrays.unique(qk)
        found_k, found_v = lookup(self.segments, keys, self.live)
        extra_k, extra_v = self._rows_of_unindexed(keys)
        all_k = np.concatenate([qk, found_k, extra_k]).astype(np.uint64)
        all_v = np.concatenate([qv, found_v, extra_v]).astype(np.int64)
        self.n_shingles[q.doc_id], self.n_samples[q.doc_id] = q.n_shingles, len(q.samples)
        hashes: Callable[[list[int]], dict[int, str]] = lambda ids: {  # noqa: E731
            **self.store.content_hashes([i for i in ids if i != q.doc_id]),
            **({q.doc_id: q.content_hash} if q.doc_id in ids else {}),
        }
        sizes = TextSizes(self.n_shingles, self.n_samples, hashes, sample_query_max(self.params))
        pairs = batch_pairs({q.doc_id}, all_k, all_v, sizes, self.params)
        others = sorted({d for p in pairs for d in p if d != q.doc_id} - self._sigs.keys())
        self._sigs.update(load_sigs(self.store, others, self.params))

        @lru_cache(maxsize=1024)
        def tokens(doc_id: int) -> list[str] | None:
            if doc_id == q.doc_id:
                return words
            row = self.store.site_and_text(doc_id)
            return compared_words(row.site, row.text, patterns, learned, row.words) if row else None

        out = []
        for a, b in sorted(pairs):
            other = b if a == q.doc_id else a
            if other not in self._sigs:
                continue
            edge = verify(q, self._sigs[other], self.params, tokens)
            if edge is not None:
                out.append((other, edge))
        # A stored text of the same content (the same words in the same order) is an exact copy.
        for rep in self._exact_reps(q.content_hash):
            out = [(d, e) for d, e in out if d != rep] + [(rep, Edge(rep, q.doc_id, 1.0, 1.0, "exact"))]
        return out

    def _exact_reps(self, content_hash: str) -> list[int]:
        first = self.store.first_with_content(content_hash)
        return [first] if first is not None and first in self.sizes else []


def _way(edge: Edge, query_id: int) -> str:
    if edge.kind == "exact":
        return "exact"
    if edge.kind == "similar":
        return "similar"
    return "inside" if edge.b == query_id else "holds"  # an edge runs from the larger text to the smaller


def _by_cluster(store, found: list[tuple[int, Edge]], copies: dict[int, list[int]]) -> list[dict]:
    """The matched texts (and their exact copies) grouped by the active clusters they are in,
    each cluster by its best-matching member; documents in no cluster after, one each; most
    similar first."""
    rows: list[dict] = []
    reps = {}
    for rep, edge in found:
        query_id = edge.b if edge.a == rep else edge.a
        reps[rep] = {
            "jaccard": round(edge.jaccard, 3),
            "containment": round(edge.containment, 3),
            "way": _way(edge, query_id),
        }
    if not reps:
        return []
    docs = {d: reps[rep] for rep in reps for d in [rep, *copies.get(rep, [])]}
    briefs = store.document_briefs(docs)
    clusters: dict[int, dict] = {}
    alone: list[dict] = []
    for d, m in docs.items():
        b = briefs.get(d)
        if b is None:
            continue
        row = {"document_id": d, "path": b["path"], "site": b["site"], "site_names": b["site_names"],
               "title": b["title"], "published_at": b["published_at"], **m}  # fmt: skip
        if not b["clusters"]:
            alone.append({"cluster": None, **row, "matched": 1})
        for cid, role in b["clusters"]:
            if role == "compilation" and m["way"] == "inside":
                # The text is one part of a compilation page, which carries other stories too: it
                # copies the clusters it matches through their own members, not all of the page's.
                continue
            best = clusters.get(cid)
            rank = (role != "compilation", max(m["jaccard"], m["containment"]), m["jaccard"], m["way"] == "exact")
            if best is None:
                clusters[cid] = {"cluster": cid, **row, "member_role": role, "matched": 1, "_rank": rank}
            else:
                best["matched"] += 1
                if rank > best["_rank"]:
                    clusters[cid] = {**best, **row, "member_role": role, "_rank": rank}
    info = store.cluster_briefs(clusters)
    for cid, row in clusters.items():
        row.pop("_rank")
        row["cluster_row"] = info.get(cid, {})
        rows.append(row)
    key = lambda r: (-max(r["jaccard"], r["containment"]), -r["jaccard"], r["cluster"] is None, r["document_id"])  # noqa: E731
    rows.sort(key=key)
    alone.sort(key=key)
    return rows + alone


def as_record(r: QueryResult) -> list[dict]:
    """A query's matches as flat JSON records (one per cluster or lone document)."""
    out = []
    for m in r.matches:
        c = m.get("cluster_row") or {}
        out.append(
            {
                "query": r.query,
                "cluster": m["cluster"],
                "cluster_size": c.get("size"),
                "similarity": m["jaccard"],
                "containment": m["containment"],
                "match": m["way"],
                "document_id": m["document_id"],
                "path": m["path"],
                "site": m["site"],
                "title": m["title"],
                "members_matched": m["matched"],
                "original_id": c.get("original_id"),
                "original_site": c.get("original_site"),
                "original_title": c.get("original_title"),
                "external_source": c.get("external_source"),
                "confidence": c.get("confidence"),
            }
        )
    return out


def summary_record(r: QueryResult) -> dict:
    """A queried text without matches, as a JSON record (too short, not read)."""
    return {"query": r.query, "cluster": None, "status": r.status, "note": r.note, "title": r.title}


__all__ = ["QueryResult", "as_record", "query_file", "query_text", "scan_params"]
