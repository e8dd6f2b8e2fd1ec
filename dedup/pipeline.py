"""Composes the stages: scan(root, db, params, progress) -> RunSummary.

Streaming part (dedup.ingest, per file, in worker processes): read -> decode -> extract ->
normalize -> tokenize -> shingle -> sign. Only new or changed files are read. Barrier part (here,
from what is stored): the texts not indexed yet are matched against the candidate index and their
pairs verified (in worker processes); clusters from every verified pair; the clusters that
changed attributed; results stored.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dedup.attribute import (
    SiteProfile,
    SiteTally,
    load_sources,
    platform_names,
    profile_tallies,
)
from dedup.attributing import Attributor, Picking
from dedup.candidates import Verifier, load_sigs, match_new_texts, verify_here
from dedup.cluster import DocSig, Edge, Group, component_roots, verify
from dedup.dbfile import ScanLock, identify
from dedup.engine import LOCAL, Engine, open_engine
from dedup.errors import DedupError, Interrupted, MassRemovalError
from dedup.ingest import (
    LEARN_MIN_DOCS,
    LEARN_MIN_SHARE,
    guard_mass_removal,
    init_worker,
    note_skip,
    plan_files,
    preload_signing,
    prepare_document,
    read_file,
    read_files,
    sign_pending,
    worker_state,
)
from dedup.models import (
    ROLE_COMPILATION,
    Params,
    RunSummary,
    ScanOptions,
    Skipped,
)
from dedup.normalize import DEFAULT_BOILERPLATE, load_patterns, normalize_text
from dedup.shingle import load_names, tokenize, unpack_words
from dedup.signature import SAMPLE_MOD
from dedup.store.index import EdgeTable
from dedup.store.writer import WriteBehind
from dedup.workers import Background, TaskFailure

__all__ = ["prepare_document", "read_file", "scan"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)

# Bump one of these when a change to the code alters what its stage makes of the same input: the
# next scan redoes that stage for every stored document (see Stamps) and says so.
EXTRACT_VERSION = 3  # read, decode, extract (dedup/discover, decode, containers, extract, credits)
SIGN_VERSION = 3  # normalize, tokenize, shingle, sign
# candidates, verification, align (what a verified pair is); 5: ALIGN_BELOW_JACCARD; 6: MAX_PASSAGE_NAME_SWAPS
CLUSTER_VERSION = 6
# attribution and its wording (dedup/attribute.py): only clusters are worked out again, no pair is
# verified again. 2: reasons reworded for people (issue 10).
ATTRIBUTE_VERSION = 2


@dataclass(frozen=True)
class Stamps:
    """Everything besides the crawl that shapes stored results, hashed per stage. A stage whose
    stamp changed since the last scan is redone for every stored document, and the run says so."""

    extract: str  # reading and extraction: code version and the credit formats
    sign: str  # normalize/shingle/sign: code version, signature params, boilerplate file, learning
    cluster: str  # candidates and verification: code version, all params, the sources files
    attribute: str  # attribution: its code version and the cluster stamp

    @classmethod
    def compute(cls, params: Params, boilerplate: Path | None, known_sources) -> Stamps:
        credits_file = (resources.files("dedup") / "data" / "credits.toml").read_bytes()
        patterns_file = Path(boilerplate or DEFAULT_BOILERPLATE).read_bytes()
        extract = _digest(EXTRACT_VERSION, credits_file)
        sign = _digest(SIGN_VERSION, SAMPLE_MOD, extract, params.signature_fingerprint, patterns_file,
                       LEARN_MIN_DOCS, LEARN_MIN_SHARE)  # fmt: skip
        sources = repr([(s.name, s.aliases, s.domains, s.role) for s in known_sources])
        cluster = _digest(CLUSTER_VERSION, sign, params.fingerprint, sources)
        return cls(extract, sign, cluster, _digest(ATTRIBUTE_VERSION, cluster))


def _digest(*parts) -> str:
    h = hashlib.sha1()
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


# Python's cyclic garbage collector, during a scan: a young collection every SCAN_GC_THRESHOLD[0]
# allocations (default 700) and older ones less often, with what was there when the scan began
# (modules, tables) frozen out of every collection (gc.freeze; forked workers inherit it). A scan
# allocates millions of short-lived records that reference counting frees, not the collector; at
# the defaults its processes spent ~7.5 s collecting on the 100k generated crawl (a gc callback
# summing the time per process), ~4.5 s of it in the scanning process, mostly full collections
# of its large tables; with these ~1.3 s. Set back as they were when the scan returns.
SCAN_GC_THRESHOLD = (20_000, 20, 20)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    before = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0  # a caller's own frozen objects are left to it
    if freeze:
        gc.freeze()
    gc.set_threshold(*SCAN_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if freeze:
            gc.unfreeze()


def scan(
    root: Path | str,
    db_path: Path | str,
    params: Params | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    boilerplate: Path | None = None,
    sources: Path | None = None,
    options: ScanOptions | None = None,
) -> RunSummary:
    """Scan a crawl directory into the database and recompute clusters and originals.

    Raises LockedError when another scan holds the database, MassRemovalError when most stored
    files would be marked gone, StoreError for a database that is not dedup's or cannot be
    written; KeyboardInterrupt / Interrupted pass through after the run is marked interrupted.
    """
    from dedup.store import Store

    params = params or Params()
    options = options or ScanOptions()
    root = Path(root)
    db_path = Path(db_path)
    if not root.is_dir():
        raise DedupError(f"crawl directory {root} does not exist or is not a directory")
    jobs = jobs or options.jobs  # or the engine's default, once it is open
    load_patterns(boilerplate)  # fail on a bad data file before any work
    known_sources = load_sources(sources)
    stamps = Stamps.compute(params, boilerplate, known_sources)
    t0 = time.perf_counter()
    identify(db_path)  # another application's file: refused before a lock file appears beside it
    # The engine under the lock (a second scan exits 75 at once, before starting any Ray), before
    # the database (a cluster that cannot be reached leaves it untouched).
    with (
        _fewer_collections(),
        ScanLock(db_path).acquire(options.wait),
        closing(open_engine(options.engine, options.address, jobs)) as engine,
    ):
        jobs = jobs or engine.default_jobs()
        store = Store(db_path)
        try:
            run_id = store.start_run(str(root.resolve()), params)
            summary = RunSummary(run_id=run_id, root=str(root))
            try:
                _scan_files(store, root, params, summary, progress, jobs, boilerplate, options, stamps, engine)
                if store.clustering_is_current(stamps.attribute):
                    _fill_counts(store, summary)  # nothing new since the last clustering
                else:
                    _cluster_and_attribute(store, params, summary, progress, known_sources, stamps.attribute,
                                           boilerplate, jobs, options.file_timeout, engine)  # fmt: skip
            except BaseException as exc:
                summary.status = _failed_status(exc)
                summary.seconds = round(time.perf_counter() - t0, 2)
                _finish_quietly(store, summary)
                raise
            summary.status = "done"
            summary.seconds = round(time.perf_counter() - t0, 2)
            store.finish_run(run_id, summary.to_dict(), status="done")
        finally:
            store.close()
    return summary


def _failed_status(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt | Interrupted):
        return "interrupted"
    if isinstance(exc, MassRemovalError):
        return "refused"
    return "failed"


def _finish_quietly(store, summary: RunSummary) -> None:
    """Record how a run ended when it ends badly; a full disk may refuse even that (the run then
    stays 'running' and the next scan marks it killed)."""
    try:
        store.finish_run(summary.run_id, summary.to_dict(), status=summary.status)
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        log.warning("could not record the end of run %s: %s", summary.run_id, exc)


def _apply_stamps(store, stamps: Stamps, summary: RunSummary) -> None:
    """Redo what was computed with other settings or code: re-read, re-sign (re-clustering follows
    from the stamp itself). Each change is done before its stamp is stored, so a run killed in
    between does it again."""
    if store.stamp("extract_stamp") != stamps.extract:
        n = store.forget_file_hashes()
        if n:
            summary.notes.append(f"extraction changed since the last scan: reading all {n:,} files again")
        store.set_stamp("extract_stamp", stamps.extract)
    if store.stamp("sign_stamp") != stamps.sign:
        n = store.resign_all()
        summary.documents_resigned = n
        if n:
            summary.notes.append(
                f"boilerplate patterns, signature parameters or learning changed since the last scan: "
                f"signing all {n:,} documents again"
            )
        store.set_stamp("sign_stamp", stamps.sign)
    # (Databases from before the attribution stamp kept the cluster stamp as clusters_stamp.)
    old = store.stamp("verdicts_stamp") or store.stamp("clusters_stamp")
    if old and old != stamps.cluster:
        store.clear_verdicts()  # pairs verified with other settings: verified again
        summary.notes.append("clustering settings or sources changed since the last scan: clustering again")
    elif store.stamp("clusters_stamp") not in (None, stamps.attribute):
        summary.notes.append("attribution changed since the last scan: every cluster's original worked out again")
    store.set_stamp("verdicts_stamp", stamps.cluster)


def _scan_files(store, root: Path, params: Params, summary: RunSummary, progress, jobs, boilerplate,
                options: ScanOptions, stamps: Stamps, engine: Engine = LOCAL) -> None:  # fmt: skip
    """Discover, refuse a mass removal before writing anything, then record and read what changed."""
    store.restore_indexes()  # a first scan stopped while it filled the documents table left them dropped
    plan = plan_files(store, root, options, summary, reread_all=store.stamp("extract_stamp") != stamps.extract,
                      walk_in_two=_forks_beside(engine, jobs), meanwhile=preload_signing)  # fmt: skip
    guard_mass_removal(root, plan.live, plan.gone, summary, options)
    _apply_stamps(store, stamps, summary)
    store.clear_folder_problems()
    store.mark_unreadable(plan.problems, summary.run_id)
    store.mark_unsupported(plan.unsupported, summary.run_id)
    # Unchanged files are not written to: files.run_id and documents.last_run name the run that last
    # read a file (or found it touched with the same bytes), so a nightly rescan of a million
    # files does not rewrite a million rows (~7 s of 16 at 100,000 files).
    summary.files_unchanged = len(plan.unchanged)
    summary.files_read = len(plan.todo)
    summary.files_gone = len(plan.gone)
    summary.files_skipped = len(plan.problems)
    for p in plan.problems:
        note_skip(summary, Skipped(p.path, p.reason))
    touched_sites: set[str] = store.mark_gone(plan.gone, summary.run_id)
    # A first scan fills the documents table without the indexes its saves would move an entry of
    # for every document (schema.DEFERRED_INDEXES), and makes them again once it is signed: the
    # one the sign stage selects its documents by before it starts.
    first_load = bool(plan.todo) and store.is_empty()
    if first_load:
        store.drop_deferred_indexes()
    try:
        read_files(store, root, params, summary, progress, jobs, options, stamps.sign, plan.todo, plan.states,
                   touched_sites, engine, boilerplate)  # fmt: skip
        if first_load:
            store.restore_indexes(SIGNING_SELECTS_BY)
        sign_pending(store, params, summary, progress, jobs, boilerplate, options, stamps.sign, touched_sites, engine)
    except BaseException:
        if first_load:
            _restore_quietly(store)
        raise
    if first_load:
        store.restore_indexes()


# The index the sign stage finds its documents by (the pending ones, and a site's live pages when
# it learns boilerplate): a first scan makes it again before signing, the others after.
SIGNING_SELECTS_BY = ("documents_not_ok",)


def _restore_quietly(store) -> None:
    """The deferred indexes made again after a first scan failed; if that fails too (a full disk),
    the next scan makes them (_scan_files) and readers meanwhile read the table without them."""
    try:
        store.restore_indexes()
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        log.warning("could not make the indexes of %s again: %s (the next scan will)", store.path, exc)


def _fill_counts(store, summary: RunSummary) -> None:
    st = store.stats()
    summary.documents = st["documents"]
    summary.skipped = st["skipped"]
    summary.too_short = st["too_short"]
    summary.clusters = st["clusters"]
    summary.clustered_documents = st["clustered_documents"]
    summary.compilations = st["compilations"]


# Candidate pairs verified per task in worker processes, and the fewest worth starting workers for
# (forked after the name table is loaded; each opens the database): fewer are verified in this
# process. The nightly run of the generated 100k crawl with 1,000 new files verifies ~1,500 pairs
# (~0.2 s here, one core idle) and gains from the workers (benchmarks/RESULTS.md, "Both cores on a
# nightly run"); 2,000 before, set when each worker loaded jieba's dictionaries itself (~1 s).
VERIFY_CHUNK = 200
VERIFY_IN_WORKERS = 500


def verify_task(pairs: list[tuple[int, int]]) -> list:
    """Worker: verify some candidate pairs (cluster.verify). Their signatures, and the words of the
    few pairs the signatures cannot settle, are read here from the database (read-only; closed
    before returning, as signing's): the scanning process sends only the pairs (pickling every
    task's signatures and words was most of its time in the cluster stage)."""
    from dedup.store import Store

    params, patterns, learned = worker_state["params"], worker_state["patterns"], worker_state["learned"]
    with closing(Store(Path(worker_state["db"]), readonly=True, checked=True)) as store:
        sigs = load_sigs(store, sorted({d for p in pairs for d in p}), params)

        @cache
        def tokens(doc_id: int) -> list[str] | None:
            src = store.site_and_text(doc_id)
            return compared_words(src.site, src.text, patterns, learned, src.words) if src else None

        tokens.numerals = {}  # a document's numerals read once a task (cluster.numerals_changed)
        return [verify(sigs[a], sigs[b], params, tokens) for a, b in pairs]


def _parallel_verifier(store, params: Params, boilerplate: Path | None, jobs: int, timeout: float | None,
                       engine: Engine = LOCAL) -> Verifier:  # fmt: skip
    """Candidate pairs verified in worker processes, VERIFY_CHUNK a task (in this process when
    they are few). A pair whose verification crashes or hangs its worker is not a copy (said in
    the log): it cannot stop the scan."""
    here = verify_here(params, compared_tokens(store, boilerplate), lambda ids: load_sigs(store, ids, params))

    def run(pairs: list[tuple[int, int]], sigs: Mapping[int, DocSig]) -> dict[tuple[int, int], Edge | None]:
        if jobs <= 1 or len(pairs) < VERIFY_IN_WORKERS:
            return here(pairs, sigs)
        load_names()  # before the workers start: they share it
        tasks = [pairs[k : k + VERIFY_CHUNK] for k in range(0, len(pairs), VERIFY_CHUNK)]
        out: dict[tuple[int, int], Edge | None] = {}
        initargs = (params, str(boilerplate) if boilerplate else None, store.learned(), str(store.path))
        retry = []
        with closing(engine.run_tasks(verify_task, tasks, jobs, init_worker, initargs, timeout=timeout)) as done:
            for part, res in zip(tasks, done, strict=True):
                if isinstance(res, TaskFailure):
                    log.info("verifying %d pairs failed (%s): one by one", len(part), res.reason)
                    retry += [[p] for p in part]
                else:
                    out.update(zip(part, res, strict=True))
        if not retry:
            return out
        with closing(engine.run_tasks(verify_task, retry, jobs, init_worker, initargs, timeout=timeout)) as done:
            for part, res in zip(retry, done, strict=True):
                if isinstance(res, TaskFailure):
                    log.warning("documents %d and %d: verifying the pair failed (%s): not a copy", *part[0], res.reason)
                    res = [None]
                out.update(zip(part, res, strict=True))
        return out

    return run


def compared_tokens(store, boilerplate: Path | None) -> Callable[[int], list[str] | None]:
    """doc_id -> the words it was signed from (normalized as when signed, its site's learned lines
    left out), for the pairs clustering aligns word by word. The few documents of such pairs are
    read from the store rather than kept from signing (a million texts would not fit)."""
    patterns = load_patterns(boilerplate)
    learned = store.learned()

    @lru_cache(maxsize=4096)
    def tokens(doc_id: int) -> list[str] | None:
        row = store.site_and_text(doc_id)
        return compared_words(row.site, row.text, patterns, learned, row.words) if row else None

    return tokens


def compared_words(
    site: str, text: str, patterns, learned: dict[str, frozenset[str]], words: bytes | None = None
) -> list[str]:
    """The words a text was signed from: as stored when it was signed (`words`), or its text
    normalized as when signed, its site's learned lines left out."""
    if words:
        return unpack_words(words)
    return tokenize(normalize_text(text, patterns, learned.get(site, frozenset())).text)


def _cluster_and_attribute(
    store,
    params: Params,
    summary: RunSummary,
    progress,
    known_sources,
    stamp: str,
    boilerplate: Path | None = None,
    jobs: int = 1,
    file_timeout: float | None = None,
    engine: Engine = LOCAL,
) -> None:
    if progress:
        progress("cluster", 0, 1)
    # The sites are profiled in a forked process while this one matches the new texts (it reads
    # every page of the sites that changed: ~1.3 s at 100k documents, with one core idle).
    apart = _forks_beside(engine, jobs)
    counting = Background(partial(_count_sites_apart, str(store.path), known_sources)) if apart else None
    try:
        t0 = time.perf_counter()
        _match(store, params, summary, boilerplate, jobs, file_timeout, engine)
        clustering = time.perf_counter() - t0
        t0 = time.perf_counter()
        sites = _profile_sites(store, known_sources, counting)
        profiling = time.perf_counter() - t0
    finally:
        if counting is not None:
            counting.close()
    t0 = time.perf_counter()
    redo_all = store.stamp("clusters_stamp") != stamp
    regroup = _regroup(store, summary, sites.moved, redo_all)
    clustering += time.perf_counter() - t0
    t0 = time.perf_counter()
    grouping = _attribute(store, regroup, params, engine, sites, summary, known_sources, stamp, redo_all, jobs,
                          file_timeout)  # fmt: skip
    summary.stage_seconds["cluster"] = round(clustering + grouping, 2)
    summary.stage_seconds["attribute"] = round(time.perf_counter() - t0 - grouping + profiling, 2)
    _fill_counts(store, summary)
    if progress:
        progress("cluster", 1, 1)


# Incremental clustering regroups only the documents connected to what changed (regroup_scope);
# past this share of the crawl it groups everything again, as a first scan does: following the
# connections a few documents at a time costs more than reading every pair once.
REGROUP_MAX_SHARE = 0.3
# The documents regrouped are grouped, attributed and saved a slice at a time: whole connected
# components (of the verified pairs, the exact copies and the current clusters) adding up to
# about this many documents. A first scan of a million pages holds one slice's edges, groups and
# cluster rows (~10 MB at ~7 verified pairs a document), not all of them (~4 GB). A slice is saved
# by a thread while the next is attributed, and the last one's save is left with one core busy:
# attributing all 100k documents of the generated crawl again took 5.55 s in slices of 50,000,
# 5.05 s in slices of 10,000 and 5.08 s in slices of 5,000 (medians of four alternating runs, the
# same clusters; benchmarks/RESULTS.md, "Both cores on a nightly run").
CLUSTER_SLICE = 10_000


class ClusterSlice(NamedTuple):
    """Whole connected components grouped, attributed and saved together (arrays: the slices of
    a first scan hold every document of the crawl until they are saved)."""

    ids: np.ndarray  # the documents, sorted
    roots: np.ndarray  # each one's component (the component's smallest id)

    def component(self, doc: int) -> int:
        return int(self.roots[np.searchsorted(self.ids, doc)])


class Regroup(NamedTuple):
    """What a clustering works out again: the documents that may join clusters (their
    representatives' sizes and exact copies), the current clusters among them, and the slices
    they are grouped in."""

    sizes: dict[int, int]  # representative (first of its content) -> shingles, by id
    copies: dict[int, list[int]]  # representative -> the other documents with its content (if any)
    scope: set[int] | None  # the documents regrouped; None: all of them
    current: dict[int, frozenset[tuple[int, bool]]]  # current cluster -> (member, compilation?)
    slices: list[ClusterSlice]  # in order of their components' smallest ids
    edges: EdgeTable | None  # the verified pairs of the scope (None: read a slice at a time)


def _match(
    store,
    params: Params,
    summary: RunSummary,
    boilerplate: Path | None,
    jobs: int = 1,
    file_timeout: float | None = None,
    engine: Engine = LOCAL,
) -> None:
    """Texts not indexed yet matched against the index and their pairs verified."""
    verifier = _parallel_verifier(store, params, boilerplate, jobs, file_timeout, engine)
    # A batch's candidate search overlaps the verification of the batch before when the workers are
    # local processes (Ray spreads the search over its own tasks).
    match = match_new_texts(store, params, verifier, summary.run_id, engine.find_pairs, _forks_beside(engine, jobs))
    if match.rebuilt:
        summary.notes.append(match.rebuilt)
    summary.pairs_verified = match.pairs_verified
    summary.pairs_known = match.pairs_known


def _forks_beside(engine: Engine, jobs: int) -> bool:
    """Whether work may run in processes forked beside this one (workers.Background): the local
    engine with worker processes, where processes are forked."""
    return engine is LOCAL and jobs > 1 and Background.available()


def _regroup(store, summary: RunSummary, moved: set[int] = frozenset(), redo_all: bool = True) -> Regroup:
    """What must be grouped again once the new texts are matched: the documents connected to what
    changed (new, changed or gone documents, pages of sites whose names or role changed: `moved`),
    or, when settings changed or most of the crawl is new, every document (scope None), cut in
    slices of whole components."""
    total = store.clustered_count()
    if not redo_all:
        seeds = store.regroup_seeds() | moved
        if len(seeds) <= REGROUP_MAX_SHARE * total:
            read = store.regroup_scope(seeds)
            summary.documents_regrouped = len(read.ids)
            ends = (read.edges.a, read.edges.b)
            slices = _slices(ends, read.copies, read.current)
            return Regroup(read.sizes, read.copies, read.ids, read.current, slices, read.edges)
    summary.documents_regrouped = total
    reps = store.representatives()
    current = store.active_memberships()
    return Regroup(reps.sizes, reps.copies, None, current, _slices(store.copy_edge_ends(), reps.copies, current), None)


def _slices(
    ends: tuple[np.ndarray, np.ndarray], copies: dict[int, list[int]], current: dict[int, frozenset]
) -> list[ClusterSlice]:
    """The documents that may be in a cluster (an end of a verified pair, an exact copy, a member
    of a current cluster), as slices of whole connected components of those links, in order of
    their components' smallest ids, each slice about CLUSTER_SLICE documents (or one larger
    component). A slice holds every edge and every current cluster of its documents, so grouping,
    attributing and saving it alone gives what the whole at once gives (group_pairs decides
    within a component; store.ClusterSaving claims ids within one; new clusters are numbered in
    the order of their components, then group_pairs' order, whatever CLUSTER_SLICE is)."""
    a, b = ends  # the verified pairs' ends
    links_a, links_b = [a], [b]
    for rep, others in copies.items():
        if others:
            links_a.append(np.full(len(others), rep, np.int64))
            links_b.append(np.asarray(others, np.int64))
    for members in current.values():
        ids = [d for d, _ in members]
        links_a.append(np.full(len(ids), ids[0], np.int64))
        links_b.append(np.asarray(ids, np.int64))
    ids, roots = component_roots(np.concatenate(links_a), np.concatenate(links_b))
    order = np.lexsort((ids, roots))
    ids, roots = ids[order], roots[order]
    starts = np.flatnonzero(np.r_[True, roots[1:] != roots[:-1]]).tolist() + [len(ids)]
    slices, begin = [], 0
    for k in range(1, len(starts)):
        if starts[k] - begin >= CLUSTER_SLICE or k == len(starts) - 1:
            by_id = np.argsort(ids[begin : starts[k]], kind="stable")
            slices.append(ClusterSlice(ids[begin : starts[k]][by_id], roots[begin : starts[k]][by_id]))
            begin = starts[k]
    return slices


class SiteChanges(NamedTuple):
    """Every site's names and role as profiled now, and the documents on sites where they changed."""

    profiles: dict[str, SiteProfile]
    moved: set[int]


class SiteCount(NamedTuple):
    """Sites profiled from their stored pages, and the tallies counted to do so (to be saved)."""

    changes: SiteChanges
    tallies: dict[str, str]  # site -> its tally (SiteTally.to_json) counted again or grown


def _profile_sites(store, known_sources, apart=None) -> SiteChanges:
    """Sites profiled from their stored pages, their tallies saved (the profiles are saved with the
    clusters). `apart`: a Background counting them in a forked process (_count_sites_apart); if
    it failed, they are counted here."""
    count = apart.result() if apart is not None else None
    if count is None or isinstance(count, TaskFailure):
        if count is not None:
            log.warning("profiling the sites failed in its process (%s): profiled here", count.reason)
        count = _count_sites(store, known_sources)
    store.save_site_tallies(count.tallies)  # and empties the queue of pages added to tallied sites
    return count.changes


def _count_sites_apart(db_path: str, known_sources) -> SiteCount:
    """_count_sites in a forked process, with a read-only connection of its own (one must not be
    used across a fork)."""
    from dedup.store import Store

    with closing(Store(Path(db_path), readonly=True)) as store:
        return _count_sites(store, known_sources)


def _count_sites(store, known_sources) -> SiteCount:
    """Profile every site from the stored tallies and the pages counted again (reads only)."""
    # Stored tallies stand for sites none of whose pages changed or went (the store drops a site's
    # tally when one does), plus the pages added to them since (the store queues those); the other
    # sites' pages are counted again. The tallies that changed are saved. A stored tally counts a
    # page that is not gone: the live sites are those and the sites counted again that have one.
    stored = store.site_tallies()
    fresh: dict[str, SiteTally] = defaultdict(SiteTally)
    for page in store.site_pages(store.stored_sites() - stored.keys()):
        fresh[page.site].add(page.credits, page.boilerplate, page.site_names)
    live = stored.keys() | fresh.keys()
    grown: dict[str, SiteTally] = {}
    for page in store.pages_added_to_tallied_sites():
        if page.site in stored:
            if page.site not in grown:
                grown[page.site] = SiteTally.from_json(stored[page.site])
            grown[page.site].add(page.credits, page.boilerplate, page.site_names)
    fresh.update(grown)
    counted = {site: t.to_json() for site, t in fresh.items()}
    tallies = {
        site: fresh[site] if site in fresh else SiteTally.from_json(stored[site])
        for site in sorted(live)
        if site in fresh or site in stored
    }
    profiles = profile_tallies(tallies, known_sources)
    del tallies
    before = store.site_roles()
    # A site's names count as a set (their order follows page counts and moves as pages come); the
    # reason given for its role (page counts) is not compared: a kept cluster's reasons describe
    # the crawl as it was when they were worked out.
    was = {site: (frozenset(r.names), r.role) for site, r in before.items()}
    moved = store.documents_on({s for s, p in profiles.items() if was.get(s) != (frozenset(p.names), p.role)})
    return SiteCount(SiteChanges(profiles, moved), counted)


def _pairs_among(edges: EdgeTable, reps: dict[int, int]) -> np.ndarray:
    """The pairs of `edges` between representatives (`reps`), by their lower then higher end (the
    order grouping reads them in, whatever order they were read in)."""
    pairs = edges.among(np.array(sorted(reps), np.int64))
    lo, hi = np.minimum(pairs["a"], pairs["b"]), np.maximum(pairs["a"], pairs["b"])
    return pairs[np.lexsort((hi, lo))]


def _edges_by_slice(edges: EdgeTable, slices: list[ClusterSlice]) -> Callable[[int], EdgeTable]:
    """k -> the pairs of `edges` in slices[k] (a pair's ends are in one component, so in one slice),
    each pair's slice found once: searching every slice's ids for all the scope's pairs cost ~4 s
    of the 3.8 million pairs of a nightly scope at 1M documents (12 slices)."""
    ids = np.concatenate([np.zeros(0, np.int64), *(s.ids for s in slices)])
    which = np.repeat(np.arange(len(slices)), [len(s.ids) for s in slices])
    order = np.argsort(ids)
    ids, which = ids[order], which[order]
    a = edges.a
    at = np.minimum(np.searchsorted(ids, a), max(len(ids) - 1, 0))
    slice_of = np.where(ids[at] == a, which[at], -1) if len(ids) else np.full(len(a), -1)
    by = np.argsort(slice_of, kind="stable")
    bounds = np.searchsorted(slice_of[by], np.arange(len(slices) + 1))
    return lambda k: EdgeTable(edges.pairs[by[bounds[k] : bounds[k + 1]]])


def _attribute(
    store,
    regroup: Regroup,
    params: Params,
    engine: Engine,
    sites: SiteChanges,
    summary: RunSummary,
    known_sources,
    stamp: str,
    redo_all: bool,
    jobs: int = 1,
    file_timeout: float | None = None,
) -> float:
    """The documents regrouped grouped and the original of every cluster that changed picked
    again, a slice at a time, and saved: a cluster whose members and roles are those of a stored
    one, none of them changed since, on sites whose names or role did not change, under the same
    settings, keeps its stored attribution; so does every stored cluster with no document in the
    scope (when clustering regrouped only some documents). The originals are picked in the
    engine's workers when many clusters changed (dedup.attributing). A slice's clusters are saved
    by a thread (store.writer; all slices in one transaction) while the next slice is grouped and
    attributed, reading through a read-only connection: at 100k documents a slice took ~1.8 s to
    save, with the workers idle. A slice is grouped while the workers attribute the one before
    (Attributor.rows' `meanwhile`), not between two slices with them idle. Returns the seconds
    spent grouping with the workers idle (the first slice's, and any grouping done here)."""
    profiles = sites.profiles
    sizes, copies, scope, current, slices, scope_edges = regroup
    stored = {members: cid for cid, members in current.items()}
    changed = store.unattributed() | sites.moved
    picking = Picking(str(store.path), profiles, platform_names(known_sources))
    grouping = 0.0
    attributed = 0
    among = None if scope is None else set(current)
    # Leaving the block: the saves queued are made (on an error, only the one being made), the
    # workers and the reading connection closed, then the clustering finished and committed.
    with (
        store.saving_clusters(summary.run_id, stamp, among, profiles.values()) as saving,
        closing(store.reader()) as reads,
        closing(Attributor(picking, jobs, engine, file_timeout)) as attributor,
        WriteBehind(pending=1) as writer,
    ):
        in_slice = None if scope_edges is None else _edges_by_slice(scope_edges, slices)

        def group_slice(k: int) -> list[Group]:
            part = slices[k]
            reps = {d: sizes[d] for d in part.ids.tolist() if d in sizes}
            pairs = _pairs_among(reads.copy_edge_pairs(reps.keys()) if in_slice is None else in_slice(k), reps)
            groups = engine.group(reps, {d: copies[d] for d in reps if d in copies}, pairs, params, reads)
            groups.sort(key=lambda g: part.component(next(iter(g.members))))  # stable: by component
            return groups

        ahead: dict[int, list[Group]] = {}  # the next slice, grouped while this one is attributed

        def group_next(k: int) -> None:
            if k < len(slices):
                ahead[k] = group_slice(k)

        for k in range(len(slices)):
            t0 = time.perf_counter()
            groups = ahead.pop(k) if k in ahead else group_slice(k)
            grouping += time.perf_counter() - t0
            keep: set[int] = set()
            touched: list[Group] = []
            for g in groups:
                cid = stored.get(frozenset((d, r == ROLE_COMPILATION) for d, r in g.members.items()))
                if cid is not None and not redo_all and not (g.members.keys() & changed):
                    keep.add(cid)
                else:
                    touched.append(g)
            rows = attributor.rows(reads, touched, meanwhile=partial(group_next, k + 1))
            attributed += len(rows)
            writer.submit(saving.save, rows, keep)
            del rows
    changes = saving.changes
    summary.clusters_attributed = attributed
    summary.clusters_new = changes.new
    summary.clusters_grown = changes.grown
    summary.clusters_merged = changes.merged
    summary.clusters_split = changes.split
    summary.originals_changed = changes.originals_changed
    return grouping
