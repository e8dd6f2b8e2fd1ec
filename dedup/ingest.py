"""The ingest stages: discovery planned against the store, files read and extracted, documents
signed, in worker processes (`pipeline.scan` composes them with clustering and attribution).

Only new or changed files are read: an unchanged file (same size and mtime, or same SHA-1) keeps
its stored documents and signatures. Each worker result is saved by this process in batches.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

from dedup.credits import add_sources, parse_credits
from dedup.credits import preload as preload_credits
from dedup.discover import Found, ReadRefused, discover_files, is_under, name_bytes, read_source
from dedup.engine import LOCAL, Engine
from dedup.errors import MassRemovalError
from dedup.extract import extract_documents
from dedup.models import Document, Params, RunSummary, ScanOptions, Skipped, SourceFile
from dedup.normalize import LineParts, learnable_lines, line_parts, load_patterns, load_t2s, normalize_parts
from dedup.shingle import (
    Words,
    anchors,
    content_hash,
    line_numbers,
    load_names,
    load_tokenizer,
    pack_words,
    shingle_list,
    tokenize_lines,
    window_spans,
)
from dedup.signature import load_permutations, make_signatures, to_bytes
from dedup.store import FileOutcome, FileProblem, SignedRow, SignedText
from dedup.store.writer import WriteBehind
from dedup.workers import Background, SharedCount, TaskFailure

log = logging.getLogger(__name__)

worker_state: dict = {}

# Boilerplate learned from the crawl: a short line on at least this many pages of a site, and on
# at least this share of them, is page furniture of that site (headers, "关注我们" ads, related
# lists). Five pages keep a story that one site carries a few times from being learned.
LEARN_MIN_DOCS = 5
LEARN_MIN_SHARE = 0.2


# A scan that would mark more than this share of the stored files gone is refused (exit 1) unless
# --allow-mass-removal: an unmounted or emptied crawl directory looks exactly like that, and a
# growing crawl never loses half its files in one night. Fewer than MASS_REMOVAL_MIN_FILES gone
# files pass (small test crawls), except when the crawl directory is empty.
MAX_GONE_SHARE = 0.5
MASS_REMOVAL_MIN_FILES = 10
# Files read, and documents signed, per round trip to a worker: fewer, larger messages keep the
# workers busy while this process saves (one file or document per message halved the speed).
READ_CHUNK = 32
SIGN_CHUNK = 128
# Files, or documents, saved per transaction: a crash loses at most this many files' work, which
# the next run reads again (their rows were never committed). Larger transactions write each
# touched index page once for more rows: on the 100k crawl the read stage took 93.7-95.4 s with
# 200 (its commits ~26 s of the scanning process's time, profiled), 79.7-87.4 s with 1,000,
# 84.0 s with 2,000 and 76.3 s with 4,000. Counted in documents too: a batch of JSON Lines files
# can hold many.
SAVE_BATCH = 2000
# ... but a read of fewer files saves them in at least four transactions of at least this many:
# the first ones are written while the workers still read, where one transaction of all was
# written after the last file (a rescan with 1,000 new files of a 100k crawl waited ~0.3 s on
# it; 12 runs each, alternating: median 3.65 s against 3.75 s, the same results; an earlier try in
# eighths showed no gain end to end: a small gain at the noise's edge, benchmarks/RESULTS.md).
SAVE_BATCH_MIN = 200
SAVE_PARTS = 4
# Signed documents saved per transaction (their rows are small: texts were saved when read).
SAVE_SIGNED = 500
# A site with at least this many stored pages (not gone) before a scan has the pages the scan
# reads of it signed as they are read, with the lines learned for it so far, instead of in a
# second pass after learning (their texts read back from the database, folded and scanned for
# credits again, their rows rewritten: a nightly rescan's sign stage was ~12 % of its time).
# What learning then changes is put right as it is today: documents that carry a line whose
# learned state changed are signed again (SigningMixin.docs_to_sign), so the signatures are those
# of the lines learned at the end either way. A smaller or new site (every site of a first scan)
# waits for learning: a few pages can move its 20 % share, and its pages would be signed twice.
SIGN_AT_READ_MIN_PAGES = 20
# At most this many documents of one task (a chunk of files, or one file) are signed as read; the
# rest wait for the sign stage. A chunk of web pages holds ~32, a large .jsonl or WARC file tens of
# thousands, whose signing (~0.5 ms each) would add minutes to a task that has FILE_TIMEOUT_S.
SIGN_AT_READ_MAX_DOCS = 2_000
# Documents signed per round of worker processes. The workers read the texts themselves, so a round
# holds only its ids, and the signed rows that wait in order behind a slow task (at most a round's:
# ~3 KB each). Each round starts its workers and drains them (one idle while the other ends): at
# 50,000 a round the 100k crawl took three (the last of 1,000 documents), the 1M crawl twenty;
# one round at 100k left ~0.25 core-seconds less idle in the sign stage (two alternating scans).
SIGN_BATCH = 250_000


def permutations_key(params: Params) -> str:
    """Where a database keeps the MinHash permutations its signatures were made with (settings)."""
    return f"permutations:{params.num_perm}:{params.seed}:{params.scheme}"


def init_worker(
    params: Params,
    boilerplate_path: str | None,
    learned: dict | None = None,
    db_path: str | None = None,
    sign_sites: dict | None = None,
) -> None:
    worker_state["params"] = params
    worker_state["patterns"] = load_patterns(Path(boilerplate_path) if boilerplate_path else None)
    worker_state["learned"] = learned or {}
    worker_state["db"] = db_path  # signing reads the documents' texts from it
    # Reading: the sites whose documents are signed as they are read, each with its learned lines
    # (SIGN_AT_READ_MIN_PAGES); the others' wait for the sign stage.
    worker_state["sign_sites"] = sign_sites or {}


def prepare_document(doc: Document, params: Params, patterns, learned: frozenset[str] = frozenset()) -> Document:
    """Normalize, tokenize, shingle and sign one document (in place)."""
    return sign_tokens(doc, tokenize_document(doc, patterns, learned), params)


def tokenize_document(doc: Document, patterns, learned: frozenset[str] = frozenset()) -> Words:
    """Normalize and tokenize one document; sets what comes of its text beside the words (in
    place: boilerplate, credits, original title, numbers, token count and content hash). Returns
    its words (with them joined), which sign_tokens turns into everything else.

    What a text gives depends on the text, the boilerplate patterns and its site's learned lines
    alone: a text equal to one of the last few tokenized here (a page saved under two addresses, a
    story copied whole) takes what that one gave (_PREPARED)."""
    learned = frozenset(learned)  # (itself when it is one: the sites' learned lines are)
    if _PREPARED_WITH[0] is not patterns:  # other boilerplate patterns: what was kept no longer holds
        _PREPARED.clear()
        _LINES.clear()
        _PREPARED_WITH[0] = patterns
    key = (doc.text, learned)
    got = _PREPARED.get(key)
    if got is None:
        got = _prepare_text(doc.text, patterns, learned)
        if len(_PREPARED) >= PREPARED_MAX:
            del _PREPARED[next(iter(_PREPARED))]
        _PREPARED[key] = got
    doc.boilerplate = list(got.boilerplate)
    for kind, name in got.credits:
        if kind == "source":
            add_sources(doc.credits, [name])
        elif kind == "original_title" and not doc.original_title:
            doc.original_title = name
    doc.n_tokens = len(got.tokens)
    doc.content_hash = got.content_hash
    doc.numbers = list(got.numbers)
    return Words(list(got.tokens), got.joined)


class _Prepared(NamedTuple):
    """What tokenize_document makes of one text (with given patterns and learned lines)."""

    boilerplate: tuple[str, ...]
    credits: tuple[tuple[str, str], ...]  # (kind, name) of the credit lines normalizing took out
    tokens: tuple[str, ...]
    joined: bytes  # the tokens joined (shingle.Words.joined)
    content_hash: str
    numbers: tuple


class _Line(NamedTuple):
    """What a line gives, whatever its site: its LineParts, and the words and numbers of what is kept of it."""

    parts: LineParts
    words: str  # its tokens joined by U+001F (one string: a tuple of ~150 token strings took 4x the memory)
    numbers: tuple[str, ...]


# What the last lines normalized and tokenized gave, per process, by the line as stored. The copies
# of a story share most of their lines, and the sign stage hands them out together (their texts'
# keys, store.files.text_key): on the generated 100k crawl, ~57 % of the characters of the texts
# not equal to an earlier one were in a line met in the last LINES_MAX of the same worker. Each
# entry holds a line, its folded forms and its words: 4,096 of them took ~9 MB there.
LINES_MAX = 4096
_LINES: OrderedDict[str, _Line] = OrderedDict()  # oldest first: popitem(last=False) is O(1)


def _lines_of(text: str, patterns) -> list[_Line]:
    """What each line of a text gives (_Line), from _LINES where it was met, else made now: the
    new lines of a text folded and tokenized together (one call each, not one a line)."""
    raws = text.split("\n")
    memo = _LINES
    got = {raw: line for raw in raws if (line := memo.get(raw)) is not None}
    new = [raw for raw in dict.fromkeys(raws) if raw not in got]
    if new:
        parts = line_parts(new, patterns)
        kept = [p.kept for p in parts if p.kept]
        words = iter(tokenize_lines(kept))
        for raw, p in zip(new, parts, strict=True):
            joined = "\x1f".join(next(words)) if p.kept else ""
            line = got[raw] = _Line(p, joined, tuple(line_numbers(p.kept)))
            if len(memo) >= LINES_MAX:
                memo.popitem(last=False)
            memo[raw] = line
    return [got[raw] for raw in raws]


def _prepare_text(text: str, patterns, learned: frozenset[str]) -> _Prepared:
    lines = _lines_of(text, patterns)
    norm = normalize_parts([line.parts for line in lines], learned)
    # The credit lines normalize took out (folded to Simplified), and the agencies of datelines.
    credits = tuple((c.kind, c.name) for c in parse_credits("\n".join(norm.credits)))
    # The kept lines' words joined as a text's are (shingle.Words.joined): each line's are already.
    joined = "\x1f".join([words for i in norm.kept if (words := lines[i].words)])
    found = [n for i in norm.kept for n in lines[i].numbers]
    data = joined.encode("utf-8")
    tokens = tuple(joined.split("\x1f")) if joined else ()
    return _Prepared(tuple(norm.boilerplate), credits, tokens, data, content_hash(data), tuple(found))


# What the last texts tokenized gave, per process (tokenize_document). The sign stage hands out
# a text equal to an earlier one's right after it (store.SigningMixin.docs_to_sign), so the last
# task's worth (SIGN_CHUNK) suffices: on the generated 100k crawl, where a third of the texts equal
# another's, a full scan's CPU time fell ~4 %; at 1M, where equal texts lie far apart in the
# file, no gain was shown (benchmarks/RESULTS.md, "Equal texts signed together").
PREPARED_MAX = 128
_PREPARED: dict[tuple[str, frozenset[str]], _Prepared] = {}
_PREPARED_WITH: list = [None]  # the boilerplate patterns _PREPARED was made with (by identity)


def sign_tokens(doc: Document, words: Words, params: Params) -> Document:
    """Shingle and sign a document's words (in place: words, anchors, shingle count, status,
    signatures, samples). All of it depends on the words alone (store.SignedText)."""
    tokens = words.tokens
    ordered = shingle_list(tokens, params.shingle_size)
    sh = set(ordered)
    doc.words = pack_words(words.joined)
    doc.n_shingles = len(sh)
    doc.anchors = anchors(tokens)
    if len(sh) < params.min_shingles:
        doc.status = "too_short"
        doc.signature = b""
    else:
        doc.status = "ok"
        spans = window_spans(len(ordered), params.window_size, params.window_step)
        signed = make_signatures(ordered, spans, params.num_perm, params.seed, params.scheme)
        doc.signature = to_bytes(signed.whole)
        doc.windows = [(len(set(ordered[a:b])), to_bytes(s)) for (a, b), s in zip(spans, signed.parts, strict=True)]
        doc.samples = to_bytes(signed.samples)
    return doc


@dataclass
class ReadResult:
    """What a worker made of one file: its documents and skips, or why it could not be read."""

    source: SourceFile
    items: list[Document | Skipped] = field(default_factory=list)
    problem: str | None = None  # the file could not be read at all (kept as it was, retried next run)


def read_chunk(root: str, max_file_size: int, files: list[SourceFile]) -> list[ReadResult]:
    """Worker: some files -> their documents and skips (read_file), those of the sites given to
    sign as they are read signed too (sign_read)."""
    results = [read_file(root, max_file_size, sf) for sf in files]
    sign_read([d for r in results for d in r.items if isinstance(d, Document)])
    return results


def read_one(root: str, max_file_size: int, sf: SourceFile) -> ReadResult:
    """Worker: read_chunk of one file (a chunk that failed is run again one file per task)."""
    return read_chunk(root, max_file_size, [sf])[0]


def read_file(root: str, max_file_size: int, sf: SourceFile) -> ReadResult:
    """One file -> its documents (text and metadata, not yet signed: status pending) and skips."""
    try:
        read_source(root, sf, max_file_size)  # the root as given: a Path a file cost ~3 % of reading it
    except ReadRefused as exc:
        return ReadResult(sf, problem=str(exc))
    except OSError as exc:
        return ReadResult(sf, problem=f"cannot read: {exc.strerror or exc}")
    if sf.sha1 == sf.known_sha1:
        sf.data = b""
        return ReadResult(sf)  # touched, not changed: the stored documents stand
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
    return ReadResult(sf, out)


def sign_chunk(ids: list[int]) -> list[SignedRow | Skipped]:
    """Worker: sign some stored documents with their sites' learned lines, each a SignedRow or a
    Skipped, in order. Their texts are read here from the database (read-only; the scanning
    process only sends ids), and the connection is closed before returning: a worker may outlive
    the scan (Ray), and a connection it kept could miss a later scan's rows.

    A document whose words equal those of a document signed before (the same content hash: most
    copies of a story once boilerplate and credits are out) takes what signing made of them from
    that one (store.signed_texts, or an earlier document of the chunk) instead of shingling and
    signing them again."""
    from dedup.store import Store

    with closing(Store(Path(worker_state["db"]), readonly=True, checked=True)) as store:
        rows = {r["id"]: r for r in store.documents_to_sign(ids)}
        tokenized = [_tokenize_stored(i, rows.get(i)) for i in ids]
        del rows
        known = store.signed_texts({t.doc.content_hash for t in tokenized if isinstance(t, _Tokenized)})
    return [t if isinstance(t, Skipped) else _sign_tokenized(t, known) for t in tokenized]


def sign_read(docs: list[Document]) -> None:
    """Worker: sign, in place, the documents just read of the sites given to sign as they are read
    (worker_state["sign_sites"], with their learned lines), taking what signing made of the same
    words from the stored documents (store.signed_texts) or from one signed before in the chunk,
    as sign_chunk does. A document that cannot be signed here stays pending for the sign stage,
    which says why if it fails there too."""
    sites = worker_state.get("sign_sites")
    if not sites:
        return
    tokenized: list[tuple[Document, Words]] = []
    for doc in [d for d in docs if sites.get(d.site) is not None][:SIGN_AT_READ_MAX_DOCS]:
        learned = sites.get(doc.site)
        try:
            tokenized.append((doc, tokenize_document(doc, worker_state["patterns"], learned)))
        except Exception:  # noqa: BLE001 - left for the sign stage
            log.debug("%s: not signed as read", doc.path, exc_info=True)
    if not tokenized:
        return
    from dedup.store import Store

    try:
        with closing(Store(Path(worker_state["db"]), readonly=True, checked=True)) as store:
            known = store.signed_texts({doc.content_hash for doc, _ in tokenized})
    except Exception:  # noqa: BLE001 - a database that cannot be read here costs the reuse, not the files
        log.warning("signing as read without the stored signatures: %s", worker_state["db"], exc_info=True)
        known = {}
    for doc, tokens in tokenized:
        text = known.get(doc.content_hash)
        try:
            if text is None:
                text = known[doc.content_hash] = SignedText.of(sign_tokens(doc, tokens, worker_state["params"]))
            else:
                text.apply_to(doc)
        except Exception:  # noqa: BLE001 - left for the sign stage
            log.debug("%s: not signed as read", doc.path, exc_info=True)
            doc.status = "pending"


def sign_one(doc_id: int) -> SignedRow | Skipped:
    """Worker: sign_chunk of one document (a chunk that failed is run again one by one)."""
    return sign_chunk([doc_id])[0]


class _Tokenized(NamedTuple):
    """A stored document normalized and tokenized in a worker, not yet signed."""

    doc_id: int
    doc: Document
    tokens: Words


def _tokenize_stored(doc_id: int, r: dict | None) -> _Tokenized | Skipped:
    if r is None:
        return Skipped(f"#{doc_id}", "no longer in the database when signed")
    doc = Document(path=r["path"], file_path=r["file_path"], kind=r["kind"], site=r["site"] or "",
                   text=r["text"] or "", credits=json.loads(r["credits"] or "[]"))  # fmt: skip
    try:
        learned = worker_state["learned"].get(doc.site, frozenset())
        return _Tokenized(doc_id, doc, tokenize_document(doc, worker_state["patterns"], learned))
    except Exception as exc:  # noqa: BLE001 - one bad page must not stop the scan
        return _not_prepared(doc, exc)


def _sign_tokenized(t: _Tokenized, known: dict[str, SignedText]) -> SignedRow | Skipped:
    """Sign a tokenized document, or take what signing made of the same words before (`known`,
    by content hash; what is signed here is added to it)."""
    text = known.get(t.doc.content_hash)
    if text is None:
        try:
            text = known[t.doc.content_hash] = SignedText.of(sign_tokens(t.doc, t.tokens, worker_state["params"]))
        except Exception as exc:  # noqa: BLE001 - one bad page must not stop the scan
            return _not_prepared(t.doc, exc)
    return SignedRow.of(t.doc_id, t.doc, text)


def _not_prepared(doc: Document, exc: Exception) -> Skipped:
    log.exception("%s: failed to prepare", doc.path)
    return Skipped(doc.path, f"internal error while preparing: {type(exc).__name__}: {exc}")


def _run_chunk(fn, items: list) -> list:
    return [fn(x) for x in items]


def _pool(fn, items: list, jobs: int, initargs: tuple, timeout: float | None, chunk: int, isolate: bool = True,
          engine: Engine = LOCAL, chunk_fn=None):  # fmt: skip
    """fn over items in order, each a result or a TaskFailure, in the engine's workers: `chunk`
    items per task (one round trip each; `chunk_fn` does a chunk's items at once when given), a task
    killed after `timeout` seconds. A chunk that hangs or crashes its worker is run again one item
    per task, so a bad item costs only itself. Not isolated, small inputs run in this process."""
    if not isolate and (jobs <= 1 or len(items) < 20):
        return closing(engine.run_tasks(fn, items, jobs, init_worker, initargs, in_process=True))
    return closing(_chunked(fn, items, jobs, initargs, timeout, chunk, engine, chunk_fn))


def _chunked(fn, items: list, jobs: int, initargs: tuple, timeout: float | None, chunk: int,
             engine: Engine = LOCAL, chunk_fn=None) -> Iterator:  # fmt: skip
    parts = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    run_chunk = chunk_fn or partial(_run_chunk, fn)
    chunks = engine.run_tasks(run_chunk, parts, jobs, init_worker, initargs, timeout=timeout)
    with closing(chunks) as done:
        for part, res in zip(parts, done, strict=True):
            if not isinstance(res, TaskFailure):
                yield from res
            elif len(part) == 1:
                yield res
            else:
                log.info("a chunk of %d items failed (%s): running them one by one", len(part), res.reason)
                with closing(engine.run_tasks(fn, part, jobs, init_worker, initargs, timeout=timeout)) as again:
                    yield from again


# The stored states of a file read whole: its documents (ok) or the finding that it holds none
# (skipped) stand while its size and mtime do.
READ_WHOLE = ("ok", "skipped")


def _same_as_stored(states: dict, path: str, size: int, mtime: float) -> bool:
    return _as_stored(states.get(path), size, mtime)


def _as_stored(old, size: int, mtime: float) -> bool:
    """Whether a file's stored state (a FileState, or None) says it was read whole with this size and mtime."""
    return old is not None and old.size == size and old.mtime == mtime and old.status in READ_WHOLE


@dataclass
class ScanPlan:
    """What discovery found against what the store holds; nothing written yet."""

    states: dict  # path -> FileState as stored (size and mtime blanked when all files must be read again)
    todo: list[SourceFile] = field(default_factory=list)  # new, changed, or to be retried
    unchanged: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # newly seen files no reader handles
    problems: list[FileProblem] = field(default_factory=list)  # not readable at all this time
    live: list[str] = field(default_factory=list)  # stored files not gone before this scan
    gone: list[str] = field(default_factory=list)  # stored files no longer under the root


def plan_files(store, root: Path, options: ScanOptions, summary: RunSummary, reread_all: bool,
               walk_in_two: bool = False, meanwhile: Callable[[], None] | None = None) -> ScanPlan:  # fmt: skip
    """Walk the crawl (discover_files) and compare each file with its stored state; with
    `walk_in_two`, the walk is split with a forked helper (_walk_in_two), and `meanwhile` is
    called in this process while the helper walks (it takes the parts this process has not)."""
    states = store.file_states()
    if reread_all:  # extraction changed: every file is read and extracted again
        states = {p: st._replace(size=None, mtime=None) for p, st in states.items()}
    plan = ScanPlan(states)
    unchanged = plan.unchanged
    seen: set[str] = set()
    kept: list[str] = []  # the files the walk found as stored (those it did not yield)
    # Files as stored are kept as soon as they are stat'ed; a first scan, or one that reads every
    # file again, has none to keep: no test, and no lstat twice.
    same = partial(_same_as_stored, states) if states and not reread_all else None
    for found in _walk_in_two(root, options, same, kept, split=walk_in_two, meanwhile=meanwhile):
        seen.add(found.path)
        if found.problem:
            plan.problems.append(FileProblem(found.path, found.problem, found.is_dir, name_bytes(found.fs_path)))
            continue
        summary.files_seen += 1
        old = states.get(found.path)
        if found.kind is None:  # a regular file no reader handles (problems were taken above)
            if getattr(old, "status", None) != "unsupported":
                plan.unsupported.append(found.path)
            continue
        if _as_stored(old, found.size, found.mtime):
            unchanged.append(found.path)  # (a link to an unchanged file, say)
            continue
        if old and old.status != "gone":
            summary.files_changed += 1
        else:
            summary.files_new += 1
        plan.todo.append(found.source)
    summary.files_seen += len(kept)
    unchanged.extend(kept)
    if not reread_all:  # equal bytes need no extracting again (read_file); a full re-read compares none
        known = store.file_hashes([sf.path for sf in plan.todo if sf.path in states])
        for sf in plan.todo:
            sf.known_sha1 = known.get(sf.path, "")
    # Files under a folder that could not be listed are kept as they are, not marked gone.
    folders = [p.path for p in plan.problems if p.is_dir]
    seen.update(unchanged)
    plan.live = [p for p, st in states.items() if st.status != "gone"]
    plan.gone = [p for p in plan.live if p not in seen and not any(is_under(f, p) for f in folders)]
    return plan


# A rescan's walk is split in two processes (plan_files) when the crawl root has at least this many
# directories to walk: listing and comparing 101,000 files took 0.57-0.77 s in one process, 0.30-0.32 s
# in two (the generated 100k crawl, 27 site folders; a fork of the scanning process included).
SPLIT_WALK_MIN_DIRS = 2


def _walk_in_two(root: Path, options: ScanOptions, same, unchanged: list[str], split: bool,
                 meanwhile: Callable[[], None] | None = None) -> Iterator[Found]:  # fmt: skip
    """discover_files with `same` as its test of unchanged files (the paths it keeps appended to
    `unchanged`; None: every file is yielded); with `split`, the root's directories walked by this
    process and a forked helper at once, each taking the next directory not taken yet, their
    findings given in walk order (`meanwhile` called here first, once the helper walks). Without
    it, where links are followed or the root has fewer directories, one walk. A first scan walks
    in two as a rescan does: listing 100,000 files took it ~1.1 s, the other core idle."""
    cap = options.max_file_size
    if not split or options.follow_symlinks or not Background.available():
        yield from discover_files(root, options.follow_symlinks, cap, _noting(same, unchanged))
        return
    parts: list[str] = []
    yield from discover_files(root, False, cap, _noting(same, unchanged), subdirs=parts)
    done: dict[int, tuple[list[Found], list[str]]] = {}
    if len(parts) >= SPLIT_WALK_MIN_DIRS:
        walk = partial(_walk_parts, root, parts, SharedCount(), cap, same)
        with Background(walk) as helper:
            if meanwhile is not None:
                meanwhile()
            done = walk()
            theirs = helper.result()
        if isinstance(theirs, TaskFailure):  # walked here below, as if the helper had taken none
            log.warning("walking the crawl in a second process failed (%s): walked in one", theirs.reason)
        else:
            done.update(theirs)
    for i, part in enumerate(parts):  # those no walker took are walked here
        if i not in done:
            done[i] = _walk_part(root, part, cap, same)
        found, kept = done.pop(i)
        unchanged.extend(kept)
        yield from found


def _noting(same, unchanged: list[str]):
    """`same`, the paths it says are unchanged appended to `unchanged` (no `same`: no test)."""
    if same is None:
        return None

    def test(path: str, size: int, mtime: float) -> bool:
        if same(path, size, mtime):
            unchanged.append(path)
            return True
        return False

    return test


def _walk_parts(
    root: Path, parts: list[str], taken: SharedCount, cap: int, same
) -> dict[int, tuple[list[Found], list[str]]]:
    """Walk the parts not taken yet, one at a time (`taken`: the parts' count, shared by the two
    walkers): {index: (what discover_files found, the paths `same` kept)}."""
    done: dict[int, tuple[list[Found], list[str]]] = {}
    while True:
        i = taken.take()
        if i >= len(parts):
            return done
        done[i] = _walk_part(root, parts[i], cap, same)


def _walk_part(root: Path, part: str, cap: int, same) -> tuple[list[Found], list[str]]:
    kept: list[str] = []
    return list(discover_files(root, False, cap, _noting(same, kept), top=part)), kept


def guard_mass_removal(root: Path, live: list[str], gone: list[str], summary: RunSummary, options) -> None:
    """Refuse to mark most stored files gone: an unmounted or emptied crawl looks exactly so."""
    if not gone or options.allow_mass_removal:
        return
    share = len(gone) / len(live)
    if share > MAX_GONE_SHARE and (len(gone) >= MASS_REMOVAL_MIN_FILES or summary.files_seen == 0):
        raise MassRemovalError(
            f"{root}: {len(gone):,} of the {len(live):,} stored files are missing ({share:.0%}); "
            "is the crawl directory mounted? Nothing was changed. If they were really deleted, "
            "scan again with --allow-mass-removal"
        )


def note_skip(summary: RunSummary, s: Skipped) -> None:
    summary.skipped_new += 1
    log.info("skipped %s: %s", s.path, s.reason)
    if len(summary.skipped_examples) < 20:
        summary.skipped_examples.append(s)


def read_files(store, root: Path, params: Params, summary: RunSummary, progress, jobs, options: ScanOptions,
                sign_stamp: str, todo: list[SourceFile], states: dict, touched_sites: set[str],
                engine: Engine = LOCAL, boilerplate: Path | None = None) -> None:  # fmt: skip
    """Read and extract the files to do in the workers, signing the documents of settled sites as
    they are read (SIGN_AT_READ_MIN_PAGES); their documents saved by a thread of this process
    (WriteBehind) while it goes on handing out files and taking results."""
    reader = partial(read_one, str(root), options.max_file_size)
    t_read = time.perf_counter()
    sign_sites = store.settled_sites(SIGN_AT_READ_MIN_PAGES) if todo else {}
    if todo:  # before the workers start (plan_files loaded it already beside a split walk)
        preload_reading()
    if sign_sites:  # before the workers start: they share these
        _load_signing(store, params)
    # A database that never signed has no permutations to give back: datasketch makes them (below,
    # with the other loads), which imports scipy (~0.4 s); _load_signing then stores these.
    new_permutations = bool(todo) and store.stamp(permutations_key(params)) is None
    initargs = (params, str(boilerplate) if boilerplate else None, None, str(store.path), sign_sites)
    batch: list[FileOutcome] = []
    batch_docs = 0
    save_batch = min(SAVE_BATCH, max(SAVE_BATCH_MIN, -(-len(todo) // SAVE_PARTS)))
    chunk_reader = partial(read_chunk, str(root), options.max_file_size)
    with WriteBehind() as writer, _pool(reader, todo, jobs, initargs, options.file_timeout, READ_CHUNK, engine=engine,
                                        chunk_fn=chunk_reader) as results:  # fmt: skip
        for done, (sf, res) in enumerate(zip(todo, results, strict=True), 1):
            problem = res.reason if isinstance(res, TaskFailure) else res.problem
            if problem:
                summary.files_skipped += 1
                writer.submit(store.mark_unreadable, [FileProblem(sf.path, problem, name_bytes=sf.name_bytes)],
                              summary.run_id)  # fmt: skip
                note_skip(summary, Skipped(sf.path, problem))
                continue
            sf = res.source
            docs = [d for d in res.items if isinstance(d, Document)]
            skipped = [s for s in res.items if isinstance(s, Skipped)]
            old = states.get(sf.path)
            if sf.known_sha1 and sf.known_sha1 == sf.sha1:  # (known: stored, last read whole)
                writer.submit(store.touch_files, [sf.path], summary.run_id, sf.mtime)  # touched, not changed
            else:
                status = "ok" if docs else "skipped"
                reason = skipped[0].reason if skipped and not docs else None
                touched_sites.update(d.site for d in docs)
                if old:  # the sites its stored documents were on: read before the batch replaces them
                    writer.submit(_add_sites_of_file, store, sf.path, touched_sites)
                batch.append(FileOutcome(sf.path, sf.kind, sf.size, sf.mtime, sf.sha1, status, reason, docs,
                                         skipped, sf.name_bytes))  # fmt: skip
                summary.documents_new += len(docs)
                summary.documents_signed_read += sum(d.status != "pending" for d in docs)
                batch_docs += len(docs)
            if len(batch) >= save_batch or batch_docs >= save_batch:
                writer.submit(store.save_files, batch, summary.run_id, sign_stamp)
                batch, batch_docs = [], 0
            for s in skipped:
                note_skip(summary, s)
            if progress:
                progress("read", done, len(todo))
        if batch:
            writer.submit(store.save_files, batch, summary.run_id, sign_stamp)
        if summary.documents_new:
            # What the sign stage loads before its workers start, loaded while the writer makes the
            # last saves (a rescan of 1,000 new files of a 100k crawl waited ~0.2 s on them, then
            # ~0.25 s on these loads; a first scan's sign stage began with ~0.4 s of imports for
            # the permutations, the other core idle).
            preload_signing()
            if new_permutations:
                load_permutations(params.num_perm, params.seed, params.scheme)
    summary.stage_seconds["read"] = round(time.perf_counter() - t_read, 2)


def _add_sites_of_file(store, path: str, sites: set[str]) -> None:
    sites.update(store.sites_of_file(path))


def _skip_unsigned(store, doc_id: int, res: TaskFailure | Skipped) -> None:
    """A document that could not be signed: skipped, with why (a worker that died or hung on it)."""
    if isinstance(res, TaskFailure):
        res = Skipped(store.document_path(doc_id) or f"#{doc_id}", f"signing stopped: {res.reason}")
    store.skip_document(doc_id, res)


def preload_signing() -> None:
    """What reading and signing load before their workers start (they share it: the tokenizer, the
    name table and OpenCC's t2s, ~0.2 s, and the credit formats, ~0.05-0.1 s), loaded ahead: the
    scan has plan_files call it while its forked helper walks a rescan's crawl, where this process
    would otherwise load it alone after the walk, the other core idle. A rescan with nothing new
    loads it for nothing (measured in benchmarks/RESULTS.md, "Both cores on a nightly run")."""
    load_tokenizer()
    load_names()
    preload_reading()


def preload_reading() -> None:
    """What every read worker uses and shares when loaded before it forks: OpenCC's t2s and its
    test of texts, and the credit formats."""
    load_t2s()
    preload_credits()


def _load_signing(store, params: Params) -> None:
    """What signing needs loaded before its workers start (they share it): the tokenizer, the
    name table and the MinHash permutations (stored in the database the first time)."""
    preload_signing()
    key = permutations_key(params)
    stored = store.stamp(key)
    made = load_permutations(params.num_perm, params.seed, params.scheme, stored)
    if made != stored:
        store.set_stamp(key, made)


def sign_pending(store, params: Params, summary: RunSummary, progress, jobs, boilerplate, options: ScanOptions,
                  sign_stamp: str, touched_sites: set[str], engine: Engine = LOCAL) -> None:  # fmt: skip
    """Learn boilerplate for the sites that changed, then sign what is new or carries changed lines."""
    t0 = time.perf_counter()
    # Documents left unsigned by an interrupted run (or all, after resign_all) count as new for their sites.
    touched_sites |= store.sites_with_pending()
    changed = store.learn_boilerplate(touched_sites, LEARN_MIN_DOCS, LEARN_MIN_SHARE)
    learned = store.learned()
    todo = store.docs_to_sign(changed)
    if todo:  # before the workers start: they share these
        _load_signing(store, params)
    initargs = (params, str(boilerplate) if boilerplate else None, learned, str(store.path))
    done = 0
    for k in range(0, len(todo), SIGN_BATCH):
        ids = todo[k : k + SIGN_BATCH]
        batch: list[SignedRow] = []
        # Saved behind, as the read stage does (dedup.store.writer): the workers read the texts
        # through connections of their own.
        with WriteBehind() as writer, _pool(sign_one, ids, jobs, initargs, options.file_timeout, SIGN_CHUNK,
                                            isolate=False, engine=engine, chunk_fn=sign_chunk) as results:  # fmt: skip
            for doc_id, res in zip(ids, results, strict=True):
                done += 1
                if isinstance(res, TaskFailure | Skipped):
                    writer.submit(_skip_unsigned, store, doc_id, res)
                    continue
                batch.append(res)
                if len(batch) >= SAVE_SIGNED:
                    writer.submit(store.save_signatures, batch)
                    batch = []
                if progress:
                    progress("sign", done, len(todo))
            if batch:
                writer.submit(store.save_signatures, batch)
    summary.boilerplate_sites_changed = len(changed)
    summary.documents_signed = len(todo)
    summary.stage_seconds["sign"] = round(time.perf_counter() - t0, 2)
