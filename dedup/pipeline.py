"""Composes the stages: scan(root, db, params, progress) -> RunSummary.

Streaming part (per file, in worker processes): read -> decode -> extract -> normalize ->
tokenize -> shingle -> sign. Only new or changed files are read: an unchanged file (same size and
mtime, or same SHA-1) keeps its stored documents and signatures. Barrier part (in this process,
from stored signatures): cluster -> attribute -> store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache, partial
from pathlib import Path

from dedup.attribute import DocInfo, load_sources, pick_original, platform_names, profile_sites
from dedup.cluster import DocSig, cluster_documents, contexts
from dedup.credits import add_sources, parse_credits
from dedup.discover import discover_files, read_source
from dedup.errors import DedupError
from dedup.extract import extract_documents
from dedup.models import ROLE_COMPILATION, Document, Params, RunSummary, Skipped, SourceFile
from dedup.normalize import learnable_lines, load_patterns, normalize_text
from dedup.shingle import anchors, content_hash, numbers, shingle_list, tokenize, windows
from dedup.signature import from_bytes, make_signatures, to_bytes

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)

_worker_state: dict = {}

# Boilerplate learned from the crawl: a short line on at least this many pages of a site, and on
# at least this share of them, is page furniture of that site (headers, "关注我们" ads, related
# lists). Five pages keep a story that one site carries a few times from being learned.
LEARN_MIN_DOCS = 5
LEARN_MIN_SHARE = 0.2
# Files saved per transaction: a crash loses at most this many files' work, which the next run
# reads again (their rows were never committed).
SAVE_BATCH = 200


def _init_worker(params: Params, boilerplate_path: str | None, learned: dict | None = None) -> None:
    _worker_state["params"] = params
    _worker_state["patterns"] = load_patterns(Path(boilerplate_path) if boilerplate_path else None)
    _worker_state["learned"] = learned or {}


def prepare_document(doc: Document, params: Params, patterns, learned: frozenset[str] = frozenset()) -> Document:
    """Normalize, tokenize, shingle and sign one document (in place)."""
    norm = normalize_text(doc.text, patterns, learned)
    doc.boilerplate = norm.boilerplate
    # The credit lines normalize took out (folded to Simplified), and the agencies of datelines.
    for credit in parse_credits("\n".join(norm.credits)):
        if credit.kind == "source":
            add_sources(doc.credits, [credit.name])
        elif credit.kind == "original_title" and not doc.original_title:
            doc.original_title = credit.name
    tokens = tokenize(norm.text)
    ordered = shingle_list(tokens, params.shingle_size)
    sh = set(ordered)
    doc.n_tokens = len(tokens)
    doc.n_shingles = len(sh)
    doc.content_hash = content_hash(tokens)
    doc.numbers = numbers(norm.text)
    doc.anchors = anchors(tokens)
    if len(sh) < params.min_shingles:
        doc.status = "too_short"
        doc.signature = b""
    else:
        doc.status = "ok"
        parts = windows(ordered, params.window_size, params.window_step)
        whole, part_sigs = make_signatures(sh, parts, params.num_perm, params.seed, params.scheme)
        doc.signature = to_bytes(whole)
        doc.windows = [(len(w), to_bytes(s)) for w, s in zip(parts, part_sigs, strict=True)]
    return doc


def read_file(root: str, sf: SourceFile) -> tuple[SourceFile, list[Document | Skipped]]:
    """Worker: one file -> its documents (text and metadata, not yet signed) and skips."""
    try:
        read_source(Path(root), sf)
    except OSError as exc:
        return sf, [Skipped(sf.path, f"cannot read: {exc.strerror}")]
    if sf.sha1 == sf.known_sha1:
        sf.data = b""
        return sf, []  # touched, not changed: the stored documents stand
    try:
        out = extract_documents(sf)
    except Exception as exc:  # noqa: BLE001 - one bad page must not stop the scan
        log.exception("%s: failed to extract", sf.path)
        out = [Skipped(sf.path, f"internal error while reading: {type(exc).__name__}: {exc}")]
    for d in out:
        if isinstance(d, Document):
            d.status = "pending"
            d.lines = learnable_lines(d.text)  # counted for learning; here, not in the main process
    sf.data = b""
    return sf, out


def sign_document(task: tuple[int, Document]) -> tuple[int, Document | Skipped]:
    """Worker: normalize, shingle and sign one stored document with its site's learned lines."""
    doc_id, doc = task
    try:
        learned = _worker_state["learned"].get(doc.site, frozenset())
        return doc_id, prepare_document(doc, _worker_state["params"], _worker_state["patterns"], learned)
    except Exception as exc:  # noqa: BLE001 - one bad page must not stop the scan
        log.exception("%s: failed to prepare", doc.path)
        return doc_id, Skipped(doc.path, f"internal error while preparing: {type(exc).__name__}: {exc}")


def _pool_map(fn, items: list, jobs: int, initargs: tuple, chunksize: int = 16) -> Iterator:
    """fn over items in worker processes (in this process for small inputs), in order."""
    if jobs <= 1 or len(items) < 20:
        _init_worker(*initargs)
        yield from map(fn, items)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=initargs) as ex:
        yield from ex.map(fn, items, chunksize=chunksize)


def scan(
    root: Path | str,
    db_path: Path | str,
    params: Params | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    boilerplate: Path | None = None,
    sources: Path | None = None,
) -> RunSummary:
    """Scan a crawl directory into the database and recompute clusters and originals."""
    from dedup.store import Store

    params = params or Params()
    root = Path(root)
    if not root.is_dir():
        raise DedupError(f"crawl directory {root} does not exist or is not a directory")
    jobs = jobs or min(4, os.cpu_count() or 1)
    load_patterns(boilerplate)  # fail on a bad data file before any work
    known_sources = load_sources(sources)
    t0 = time.perf_counter()
    store = Store(db_path)
    try:
        store.check_params(params)
        run_id = store.start_run(str(root.resolve()), params)
        summary = RunSummary(run_id=run_id, root=str(root))
        try:
            _scan_files(store, root, params, summary, progress, jobs, boilerplate)
            # Nothing new since the last clustering with these settings: the clusters stand.
            stamp = clustering_stamp(params, known_sources)
            if store.clustering_is_current(stamp):
                _fill_counts(store, summary)
            else:
                _cluster_and_attribute(store, params, summary, progress, known_sources, stamp, boilerplate)
        except BaseException:
            store.finish_run(run_id, summary.to_dict(), status="failed")
            raise
        summary.seconds = round(time.perf_counter() - t0, 2)
        store.finish_run(run_id, summary.to_dict())
    finally:
        store.close()
    return summary


def _scan_files(store, root: Path, params: Params, summary: RunSummary, progress, jobs, boilerplate) -> None:
    states = store.file_states()
    seen: set[str] = set()
    todo: list[SourceFile] = []
    unchanged: list[str] = []
    unsupported: list[str] = []
    for sf, rel in discover_files(root):
        seen.add(rel)
        summary.files_seen += 1
        if sf is None:
            if states.get(rel, (None, None, None, None))[3] != "unsupported":
                unsupported.append(rel)
            continue
        old = states.get(rel)
        if old and old[0] == sf.size and old[1] == sf.mtime and old[3] in ("ok", "skipped"):
            unchanged.append(rel)
            continue
        if old and old[3] in ("ok", "skipped"):
            sf.known_sha1 = old[2] or ""
        todo.append(sf)
    store.mark_unsupported(unsupported, summary.run_id)
    store.touch_files(unchanged, summary.run_id)
    summary.files_unchanged = len(unchanged)
    summary.files_new = len(todo)
    touched_sites: set[str] = store.mark_gone(seen, summary.run_id)
    bp = str(boilerplate) if boilerplate else None
    reader = partial(read_file, str(root))
    t_read = time.perf_counter()
    batch: list[tuple] = []
    for done, (sf, items) in enumerate(_pool_map(reader, todo, jobs, (params, bp)), 1):
        docs = [d for d in items if isinstance(d, Document)]
        skipped = [s for s in items if isinstance(s, Skipped)]
        old = states.get(sf.path)
        if old and old[2] == sf.sha1 and old[3] in ("ok", "skipped"):
            # Touched but not changed: the stored documents stand.
            store.touch_files([sf.path], summary.run_id, mtime=sf.mtime)
        else:
            status = "ok" if docs else "skipped"
            reason = skipped[0].reason if skipped and not docs else None
            touched_sites.update(d.site for d in docs)
            if old:
                touched_sites.update(store.sites_of_file(sf.path))
            batch.append((sf.path, sf.kind, sf.size, sf.mtime, sf.sha1, status, reason, docs, skipped))
            summary.documents_new += len(docs)
        if len(batch) >= SAVE_BATCH:
            store.save_files(batch, summary.run_id, params.signature_fingerprint)
            batch = []
        summary.skipped_new += len(skipped)
        for s in skipped:
            log.info("skipped %s: %s", s.path, s.reason)
            if len(summary.skipped_examples) < 20:
                summary.skipped_examples.append(s)
        if progress:
            progress("read", done, len(todo))
    if batch:
        store.save_files(batch, summary.run_id, params.signature_fingerprint)
    summary.stage_seconds["read"] = round(time.perf_counter() - t_read, 2)
    _sign_pending(store, params, summary, progress, jobs, bp, touched_sites)


def _sign_pending(store, params: Params, summary: RunSummary, progress, jobs, bp, touched_sites: set[str]) -> None:
    """Learn boilerplate for the sites that changed, then sign what is new or carries changed lines."""
    t0 = time.perf_counter()
    # Documents left unsigned by an interrupted run count as new for their sites.
    touched_sites |= store.sites_with_pending()
    changed = store.learn_boilerplate(touched_sites, LEARN_MIN_DOCS, LEARN_MIN_SHARE)
    learned = store.learned()
    tasks = []
    for r in store.docs_to_sign(changed):
        doc = Document(path=r["path"], file_path=r["file_path"], kind=r["kind"], site=r["site"] or "",
                       text=r["text"] or "", credits=json.loads(r["credits"] or "[]"))  # fmt: skip
        tasks.append((r["id"], doc))
    batch_ids: list[int] = []
    batch: list[Document] = []
    for done, (doc_id, result) in enumerate(_pool_map(sign_document, tasks, jobs, (params, bp, learned), 64), 1):
        if isinstance(result, Skipped):
            store.skip_document(doc_id, result)
            continue
        batch_ids.append(doc_id)
        batch.append(result)
        if len(batch) >= 500:
            store.save_signatures(batch, batch_ids)
            batch, batch_ids = [], []
        if progress:
            progress("sign", done, len(tasks))
    if batch:
        store.save_signatures(batch, batch_ids)
    summary.boilerplate_sites_changed = len(changed)
    summary.stage_seconds["sign"] = round(time.perf_counter() - t0, 2)


def clustering_stamp(params: Params, known_sources) -> str:
    """What the clustering depends on besides the documents: the parameters and the sources."""
    blob = params.fingerprint + repr([(s.name, s.aliases, s.domains, s.role) for s in known_sources])
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]


def _fill_counts(store, summary: RunSummary) -> None:
    st = store.stats()
    summary.documents = st["documents"]
    summary.skipped = st["skipped"]
    summary.too_short = st["too_short"]
    summary.clusters = st["clusters"]
    summary.clustered_documents = st["clustered_documents"]
    summary.compilations = st["compilations"]


def compared_tokens(store, boilerplate: Path | None) -> Callable[[int], list[str] | None]:
    """doc_id -> the words it was signed from (normalized as when signed, its site's learned lines
    left out), for the pairs clustering aligns word by word. The few documents of such pairs are
    read again from the store rather than kept from signing (a million texts would not fit)."""
    patterns = load_patterns(boilerplate)
    learned = store.learned()

    @lru_cache(maxsize=4096)
    def tokens(doc_id: int) -> list[str] | None:
        row = store.site_and_text(doc_id)
        if row is None:
            return None
        site, text = row
        return tokenize(normalize_text(text, patterns, learned.get(site, frozenset())).text)

    return tokens


def _cluster_and_attribute(
    store, params: Params, summary: RunSummary, progress, known_sources, stamp: str, boilerplate: Path | None = None
) -> None:
    if progress:
        progress("cluster", 0, 1)
    sigs = [
        DocSig(i, h, n, from_bytes(blob, params.scheme), tuple(json.loads(nums or "[]")), contexts(anch))
        for i, h, n, blob, nums, anch in store.clusterable()
    ]
    t0 = time.perf_counter()
    wins: dict[int, list] = defaultdict(list)
    for doc_id, n, blob in store.windows():
        wins[doc_id].append((n, from_bytes(blob, params.scheme)))
    for s in sigs:
        s.windows = wins.get(s.doc_id, [])
    groups = cluster_documents(sigs, params, compared_tokens(store, boilerplate))
    summary.stage_seconds["cluster"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    infos = {d["id"]: d for d in store.doc_infos()}
    site_docs: dict[str, list[DocInfo]] = defaultdict(list)
    site_names: dict[str, list[list[str]]] = defaultdict(list)
    docinfo: dict[int, DocInfo] = {}
    for i, d in infos.items():
        di = DocInfo(i, d["path"], d["site"] or "", d["url"] or "", d["canonical_url"] or "", d["title"] or "",
                     d["published_at"], d["time_confidence"] or 0.0, d["credits"], d["boilerplate"],
                     d["original_title"] or "", d["fetched_at"])  # fmt: skip
        docinfo[i] = di
        site_docs[di.site].append(di)
        site_names[di.site].append(d["site_names"])
    profiles = profile_sites(site_docs, site_names, known_sources)
    store.save_sites(profiles.values())
    names = platform_names(known_sources)
    rows = []
    for g in groups:
        # Share of one member's text inside another, from the verified pairs.
        overlaps = {}
        for e in g.edges:
            overlaps[(e.a, e.b)] = e.containment
            if e.kind in ("similar", "exact") and e.jaccard >= 0.9:
                overlaps[(e.b, e.a)] = e.containment
        att = pick_original(g.members, docinfo, profiles, overlaps, names)
        non_comp = sorted(i for i, r in g.members.items() if r != ROLE_COMPILATION)
        key_doc = non_comp[0] if non_comp else min(g.members)
        times = sorted(docinfo[i].published_at for i in g.members if docinfo[i].published_at)
        orig = docinfo.get(att.original_id) if att.original_id else None
        rows.append(
            {
                "key": f"doc:{key_doc}",
                "size": len(g.members),
                "n_compilations": sum(1 for r in g.members.values() if r == ROLE_COMPILATION),
                "title": (orig or docinfo[key_doc]).title,
                "original_id": att.original_id,
                "external_source": att.external_source,
                "confidence": att.confidence,
                "reasons": json.dumps(att.reasons, ensure_ascii=False),
                "first_published": times[0] if times else None,
                "sites": json.dumps(sorted({docinfo[i].site for i in g.members}), ensure_ascii=False),
                "members": [
                    {
                        "document_id": i,
                        "role": att.roles[i],
                        "similarity": round(g.similarity.get(i, 0.0), 3),
                        "parent_id": att.parents.get(i),
                        "score": round(att.scores.get(i, 0.0), 2),
                    }
                    for i in sorted(g.members)
                ],
                "evidence": [
                    {"document_id": e.doc_id, "kind": e.kind, "weight": e.weight, "detail": e.detail}
                    for e in att.evidence
                ],
            }
        )
    store.save_clusters(rows, summary.run_id, stamp)
    summary.stage_seconds["attribute"] = round(time.perf_counter() - t0, 2)
    _fill_counts(store, summary)
    if progress:
        progress("cluster", 1, 1)
