"""The candidate index: what finds the pairs worth verifying, kept on disk from run to run.

Every indexed text (one representative per distinct content) is held as rows of (key, owner):
a key per LSH band of its signature, one per band of each window's signature, and one per sample
(signature.SAMPLE_MOD). Rows live in segments, sorted numpy arrays in files beside the database
(`DB.index/seg-N.keys.npy`, `seg-N.vals.npy`), written once for a batch of texts and never
changed. A new text is matched by binary search in each segment (memory-mapped): nothing is
rebuilt and nothing but the batch and the buckets it touches is in memory. A row counts while its
owner's row in `indexed_documents` names its segment; a text signed again is indexed again in a
later segment and its old rows are dead until `compact` drops them.

The index is a cache of what the database holds: a missing or damaged segment file is rebuilt
from the stored signatures (the store forgets which texts it held and they are indexed again).

The candidate rules are cluster.py's (add_bucket_pairs, sample_candidate), applied to the pairs
with at least one text of the batch: a pair of texts is found when the later of the two arrives,
so a crawl scanned in slices gets the candidates one scan gets (except in buckets that outgrow
BUCKET_ALL_PAIRS or samples that outgrow SAMPLE_DF_CAP between slices: there the pairs found
while they were small stay found).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
from collections import ChainMap
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dedup import arrays
from dedup.cluster import (
    BUCKET_ALL_PAIRS,
    SAMPLE_DF_CAP,
    UNKNOWN,
    DocSig,
    Edge,
    Group,
    TokenSource,
    Verdicts,
    add_bucket_pairs,
    anchor_codes,
    component_roots,
    group_edges,
    overlap,
    sample_candidate,
    sample_query_max,
    verify,
)
from dedup.models import Params
from dedup.signature import from_bytes
from dedup.store.files import pack_anchors
from dedup.workers import Background, SharedCount, TaskFailure

log = logging.getLogger(__name__)

KIND_WHOLE, KIND_WINDOW, KIND_SAMPLE = 0, 1, 2
_KIND_BITS = 2
# Segments beyond this many are merged into one (their dead rows dropped) at the end of a run:
# every lookup searches each segment, so a crawl scanned nightly for a year would otherwise pay
# ~365 binary searches per key.
MAX_SEGMENTS = 12
# Rows merged at a time when segments are compacted (about 16 bytes each): the memory of a
# compaction does not grow with the index.
COMPACT_CHUNK_ROWS = 4_000_000
# Index bytes a lookup maps at a time (a key range of every segment; then unmapped). A lookup's
# keys are hashes spread over every segment's whole file: at 1M documents one lookup touched
# ~0.7 GB of index pages, counted in the searching process's RSS. Cut in ranges of this size, the
# pages it maps stay about this size, for a few more calls (~12 ranges a lookup at 1M).
LOOKUP_MAPPED_BYTES = 64 << 20
_ROW_BYTES = 16  # a row: uint64 key + int64 value

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ROW_MULT = np.uint64(0x9E3779B97F4A7C15)
_SAMPLE_SALT = np.uint64(0xD6E8FEB86659FD93)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads a uint64 over all 64 bits (numpy wraps on overflow)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def band_keys(signatures: np.ndarray, params: Params) -> np.ndarray:
    """(texts x perms) signatures -> (texts x bands) uint64 keys: one per band of lsh_rows values,
    equal when the band's values are equal (up to a 2^-64 chance), different across bands."""
    width = params.lsh_rows
    values = np.asarray(signatures)[:, : params.lsh_bands * width].astype(np.uint64)
    values = values.reshape(len(values), params.lsh_bands, width)
    with np.errstate(over="ignore"):
        keys = np.arange(1, params.lsh_bands + 1, dtype=np.uint64)[None, :] * _ROW_MULT
        for r in range(width):
            keys = _mix(keys ^ values[:, :, r])
    return keys


def sample_keys(samples: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix(samples.astype(np.uint64) ^ _SAMPLE_SALT)


def text_rows(docs: Iterable[DocSig], params: Params) -> tuple[np.ndarray, np.ndarray]:
    """The index rows of texts: keys and values (owner << 2 | kind), not sorted; each text's band
    rows (its whole signature's, then its windows') and then its samples' rows, text after text.
    Every signature's band keys at once (per text, numpy's call overhead was most of the ~75 us a
    text took: 7.6 s of a 100k crawl's cluster stage)."""
    docs = list(docs)
    if not docs:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    signatures: list[np.ndarray] = []
    for d in docs:
        signatures.append(d.signature)
        signatures.extend(w for _, w in d.windows)
    ids = np.fromiter((d.doc_id for d in docs), dtype=np.int64, count=len(docs))
    n_sigs = np.fromiter((1 + len(d.windows) for d in docs), dtype=np.int64, count=len(docs))
    n_samples = np.fromiter((len(d.samples) for d in docs), dtype=np.int64, count=len(docs))
    bands = band_keys(np.vstack(signatures), params)  # (signatures, bands)
    first = np.zeros(len(signatures), dtype=bool)
    first[np.cumsum(n_sigs) - n_sigs] = True
    owner_kind = (np.repeat(ids, n_sigs) << _KIND_BITS) | np.where(first, KIND_WHOLE, KIND_WINDOW)
    band_vals = np.repeat(owner_kind, bands.shape[1])
    sample_vals = np.repeat((ids << 2) | KIND_SAMPLE, n_samples)
    samples = sample_keys(np.concatenate([np.asarray(d.samples) for d in docs]))
    # Text after text: text i's band rows, then its samples.
    n_band = n_sigs * bands.shape[1]
    start = np.cumsum(n_band + n_samples) - (n_band + n_samples)
    at_band = np.repeat(start, n_band) + np.arange(int(n_band.sum())) - np.repeat(np.cumsum(n_band) - n_band, n_band)
    at_sample = (
        np.repeat(start + n_band, n_samples)
        + np.arange(int(n_samples.sum()))
        - np.repeat(np.cumsum(n_samples) - n_samples, n_samples)
    )
    total = int(n_band.sum() + n_samples.sum())
    keys = np.empty(total, dtype=np.uint64)
    vals = np.empty(total, dtype=np.int64)
    keys[at_band], vals[at_band] = bands.ravel(), band_vals
    keys[at_sample], vals[at_sample] = samples, sample_vals
    return keys, vals


@dataclass
class Segment:
    id: int
    keys: np.ndarray  # sorted uint64 (memory-mapped)
    vals: np.ndarray  # int64 owner << 2 | kind


class SegmentFiles:
    """The segment files of one database (`DB.index/`)."""

    def __init__(self, db_path: Path) -> None:
        self.folder = Path(str(db_path) + ".index")

    def _paths(self, seg_id: int) -> tuple[Path, Path]:
        return self.folder / f"seg-{seg_id}.keys.npy", self.folder / f"seg-{seg_id}.vals.npy"

    def write(self, seg_id: int, keys: np.ndarray, vals: np.ndarray) -> None:
        """Sort and write a segment; each file appears whole or not at all (temp file, fsync, rename)."""
        self.folder.mkdir(exist_ok=True)
        order = np.argsort(keys, kind="stable")
        for path, arr in zip(self._paths(seg_id), (keys[order], vals[order]), strict=True):
            _write_atomic(path, arr)

    def open(self, seg_id: int) -> Segment:
        """A segment, memory-mapped; OSError or ValueError when its files are missing or damaged."""
        kp, vp = self._paths(seg_id)
        try:
            keys = np.load(kp, mmap_mode="r")
            vals = np.load(vp, mmap_mode="r")
        except EOFError:
            raise ValueError(f"segment {seg_id} is empty") from None
        if keys.shape != vals.shape or keys.dtype != np.uint64 or vals.dtype != np.int64:
            raise ValueError(f"segment {seg_id} is damaged")
        return Segment(seg_id, keys, vals)

    def remove_except(self, keep: set[int]) -> None:
        """Delete segment files the database does not list (left by a run that was killed)."""
        if not self.folder.is_dir():
            return
        for p in self.folder.iterdir():
            name = p.name
            if name.startswith("seg-"):
                try:
                    seg_id = int(name.split(".")[0][4:])
                except ValueError:
                    continue
                if seg_id not in keep:
                    p.unlink(missing_ok=True)
            elif name.endswith(".tmp"):
                p.unlink(missing_ok=True)


def release_pages(segments: list[Segment]) -> None:
    """Unmap the index pages this process has touched; they stay in the page cache, and the next
    lookup maps again those it reads. A batch's lookups touch most of every segment's keys, and
    mapped pages count in a process's RSS: at 1M documents the process searching a batch
    reached 2.5 GB RSS, ~0.7 GB of it the index files."""
    for seg in segments:
        for arr in (seg.keys, seg.vals):
            mapped = getattr(arr, "_mmap", None)
            if mapped is not None and hasattr(mmap, "MADV_DONTNEED"):
                mapped.madvise(mmap.MADV_DONTNEED)


def _write_atomic(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(arr))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _live(vals: np.ndarray, live: np.ndarray, seg_id: int) -> np.ndarray:
    """Which rows of segment `seg_id` are current: their owner's rows live in that segment."""
    owner = vals >> _KIND_BITS
    return (owner < len(live)) & (live[np.minimum(owner, len(live) - 1)] == seg_id)


def _spans(lo: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Indices lo[i] .. lo[i] + n[i] - 1 of every span, in order, without a Python loop."""
    return np.repeat(lo - np.cumsum(np.concatenate(([0], n[:-1]))), n) + np.arange(n.sum())


def lookup_keys(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What `lookup` is asked for some rows: their keys (sorted, unique), and which of them are
    sample keys (its `capped`)."""
    distinct = arrays.unique(keys)
    return distinct, arrays.isin(distinct, keys[(vals & 3) == KIND_SAMPLE])


def lookup(
    segments: list[Segment],
    keys: np.ndarray,
    live: np.ndarray,
    fresh: int | None = None,
    capped: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every live row holding one of `keys` (sorted, unique), in all segments: (keys, vals), each
    segment's rows in key order within a key range (a key's rows: in segment order). `live[doc]` is
    the segment that holds the document's current rows (0: none). `fresh`: every row of segments
    numbered this or above is live, whatever `live` says (the Ray engine ships `live` once a run, as
    it was at its first batch: a segment written by the run holds only the current rows of its
    batch, and the run's later batches make rows of older segments dead only for documents that
    `live` already gave another segment or none).

    `capped` (a mask over `keys`, lookup_keys): sample keys whose rows are left out when more than
    SAMPLE_DF_CAP live texts hold them, as the sample rule skips them (bucket_pairs); a text's
    samples are distinct and its live rows lie in one segment, so a sample key's live rows are
    distinct texts. At 1M documents such samples were 3.7 M of the 9.0 M rows a 4,000-text lookup
    returned.

    A large index is searched one key range at a time (LOOKUP_MAPPED_BYTES), its pages unmapped
    after each: a lookup's keys are spread over every segment's whole file."""
    parts = key_ranges(segments, keys)
    if len(parts) == 1:
        return _lookup_in(segments, keys, live, fresh, capped)
    out_k: list[np.ndarray] = []
    out_v: list[np.ndarray] = []
    for sub, views in parts:
        k, v = _lookup_in(views, keys[sub], live, fresh, None if capped is None else capped[sub])
        out_k.append(k)
        out_v.append(v)
        release_pages(segments)
    return np.concatenate(out_k), np.concatenate(out_v)


def key_ranges(segments: list[Segment], keys: np.ndarray) -> list[tuple[slice, list[Segment]]]:
    """The sorted `keys` cut into ranges that each touch about LOOKUP_MAPPED_BYTES of the index:
    (the keys' slice, each segment's rows in that range as a Segment view). One range, the whole
    segments, when the index is small."""
    rows = sum(len(seg.keys) for seg in segments)
    n = min(len(keys), -(-rows * _ROW_BYTES // LOOKUP_MAPPED_BYTES))
    if n <= 1:
        return [(slice(0, len(keys)), segments)]
    # Range bounds at quantiles of the keys asked for: they are hashes, spread like the index's.
    bounds = keys[(np.arange(1, n) * len(keys)) // n]
    cuts = np.concatenate(([0], np.searchsorted(keys, bounds), [len(keys)]))
    at = [np.concatenate(([0], np.searchsorted(seg.keys, bounds), [len(seg.keys)])) for seg in segments]
    pairs = list(zip(segments, at, strict=True))
    views = [[Segment(s.id, s.keys[a[i] : a[i + 1]], s.vals[a[i] : a[i + 1]]) for s, a in pairs] for i in range(n)]
    return [(slice(int(cuts[i]), int(cuts[i + 1])), views[i]) for i in range(n) if cuts[i + 1] > cuts[i]]


def _lookup_in(
    segments: list[Segment], keys: np.ndarray, live: np.ndarray, fresh: int | None, capped: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """lookup over some segments (or views of them), in one piece."""
    spans: list[tuple[np.ndarray, np.ndarray]] = []
    for seg in segments:
        lo = np.searchsorted(seg.keys, keys, side="left")
        spans.append((lo, np.searchsorted(seg.keys, keys, side="right") - lo))
    wanted = np.ones(len(keys), dtype=bool)
    if capped is not None and spans:
        big = np.flatnonzero(capped & (sum(n for _, n in spans) > SAMPLE_DF_CAP))
        held = np.zeros(len(big), dtype=np.int64)  # live rows of each such key
        for seg, (lo, n) in zip(segments, spans, strict=True):
            nb = n[big]
            ok = _live_rows(seg, np.asarray(seg.vals[_spans(lo[big], nb)]), live, fresh)
            held += np.bincount(np.repeat(np.arange(len(big)), nb), weights=ok, minlength=len(big)).astype(np.int64)
        wanted[big[held > SAMPLE_DF_CAP]] = False
    out_k: list[np.ndarray] = []
    out_v: list[np.ndarray] = []
    for seg, (lo, n) in zip(segments, spans, strict=True):
        hit = wanted & (n > 0)
        if not hit.any():
            continue
        idx = _spans(lo[hit], n[hit])
        v = np.asarray(seg.vals[idx])
        ok = _live_rows(seg, v, live, fresh)
        out_k.append(np.asarray(seg.keys[idx])[ok])
        out_v.append(v[ok])
    if not out_k:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    return np.concatenate(out_k), np.concatenate(out_v)


def _live_rows(seg: Segment, vals: np.ndarray, live: np.ndarray, fresh: int | None) -> np.ndarray:
    """Which of some rows of a segment are live (a mask; see lookup's `fresh`)."""
    if fresh is not None and seg.id >= fresh:
        return np.ones(len(vals), dtype=bool)
    return _live(vals, live, seg.id)


def pair_codes(pairs) -> np.ndarray:
    """Pairs (lo, hi) of document ids as int64 codes lo << 32 | hi, in their order."""
    return np.fromiter((a << 32 | b for a, b in pairs), dtype=np.int64, count=len(pairs))


def code_pairs(codes: np.ndarray) -> set[tuple[int, int]]:
    """The pairs (lo, hi) of some codes lo << 32 | hi."""
    return set(zip((codes >> 32).tolist(), (codes & 0xFFFFFFFF).tolist(), strict=True))


@dataclass
class TextSizes:
    """What the candidate rules need of any indexed text: its shingles and samples counted, and
    its content hash (the order of oversized buckets)."""

    n_shingles: np.ndarray  # by document id
    n_samples: np.ndarray  # by document id
    content_hash: Callable[[list[int]], dict[int, str]]
    short_max: int  # cluster.sample_query_max: texts up to this size are looked for by samples

    @classmethod
    def of(cls, docs: list[DocSig], params: Params) -> TextSizes:
        """The sizes of texts held in memory."""
        top = max((d.doc_id for d in docs), default=0) + 1
        n_shingles, n_samples = np.zeros(top, np.int64), np.zeros(top, np.int64)
        for d in docs:
            n_shingles[d.doc_id], n_samples[d.doc_id] = d.n_shingles, len(d.samples)
        hashes = {d.doc_id: d.content_hash for d in docs}
        return cls(n_shingles, n_samples, lambda ids: {i: hashes[i] for i in ids}, sample_query_max(params))


def batch_pairs(
    batch: set[int], keys: np.ndarray, vals: np.ndarray, sizes: TextSizes, params: Params
) -> set[tuple[int, int]]:
    """The candidate pairs with at least one text of `batch`, from the live rows of every key the
    batch holds (`lookup`): whole buckets, so the rules see what a single scan would see."""
    found = bucket_pairs(batch, keys, vals, sizes, params)
    return found.pairs | sample_pairs(found.sample_codes, found.sample_counts, sizes)


@dataclass
class BucketPairs:
    """What some rows of the index give before the sample rule: the band pairs, and how many
    samples each pair of texts shares in them. Rows split by key (each key's rows in one part)
    give parts whose band pairs unite and whose sample counts add up to those of all the rows,
    so the rule (sample_pairs) can be applied once the counts are summed (the Ray engine)."""

    pairs: set[tuple[int, int]]
    sample_codes: np.ndarray  # int64 lo << 32 | hi, unique
    sample_counts: np.ndarray  # samples each of those pairs shares in these rows


def sample_pairs(codes: np.ndarray, counts: np.ndarray, sizes: TextSizes) -> set[tuple[int, int]]:
    """The pairs (codes lo << 32 | hi) whose shared samples make the shorter text a candidate
    inside the other (cluster.sample_candidate)."""
    x, y = codes >> 32, codes & 0xFFFFFFFF
    nx, ny = sizes.n_shingles[x], sizes.n_shingles[y]
    small = np.where((nx < ny) | ((nx == ny) & (x <= y)), x, y)
    hit = sample_candidate(counts, sizes.n_samples[small])
    return set(zip(x[hit].tolist(), y[hit].tolist(), strict=True))


@lru_cache(maxsize=SAMPLE_DF_CAP + 1)
def _upper_pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every pair i < j of m things (np.triu_indices, made once per m)."""
    return np.triu_indices(m, 1)


def _sample_bucket_codes(members: np.ndarray, in_batch: np.ndarray, short: np.ndarray) -> np.ndarray:
    """The pairs (codes lo << 32 | hi, each once) of one sample's texts (`members`, sorted ids) with
    a text of the batch and a short text, all at once (a Python loop over them was 1.0 of the
    1.6 s a 20,000-text lookup took at 100k). From the batch's members when they are fewer than
    half: a later batch's buckets hold mostly texts indexed before, whose pairs are not wanted."""
    mine = members[in_batch[members]]
    if 2 * len(mine) < len(members):
        x = np.repeat(mine, len(members))
        y = np.tile(members, len(mine))
        keep = (x != y) & (~in_batch[y] | (x < y)) & (short[x] | short[y])
        x, y = x[keep], y[keep]
        return np.minimum(x, y) * (1 << 32) + np.maximum(x, y)
    i, j = _upper_pairs(len(members))
    x, y = members[i], members[j]
    keep = (in_batch[x] | in_batch[y]) & (short[x] | short[y])
    return x[keep] * (1 << 32) + y[keep]


def _small_bucket_codes(
    starts: np.ndarray, n: np.ndarray, owners: np.ndarray, kinds: np.ndarray, in_batch: np.ndarray, short: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Buckets of 2 to BUCKET_ALL_PAIRS rows (most: a story's copies on one band), with numpy, one
    bucket size at a time: the band pairs (codes lo << 32 | hi, unique) and the sample pairs (codes,
    one per shared sample) with a text of the batch. A row pair counts once.

    A size's row pairs come from the batch's rows when that makes fewer than all of its buckets'
    pairs: a later batch's buckets hold mostly rows indexed before, whose pairs are not wanted (a
    4,000-text lookup at 1M documents: 4.0 M row pairs instead of 40.7 M); a pair of two batch
    rows is then taken from its lower row only."""
    row_in_batch = in_batch[owners]
    row_n = np.repeat(n, n)  # each row's bucket size
    row_start = np.repeat(starts, n)
    small = (row_n >= 2) & (row_n <= BUCKET_ALL_PAIRS)
    mine_all = np.flatnonzero(row_in_batch & small)
    band_parts: list[np.ndarray] = []
    sample_parts: list[np.ndarray] = []
    for m in arrays.unique(row_n[mine_all]).tolist():
        mine = mine_all[row_n[mine_all] == m]
        first = starts[n == m]
        if len(mine) * m < len(first) * (m * (m - 1) // 2):
            r = np.repeat(mine, m)
            p = (row_start[mine][:, None] + np.arange(m)).ravel()
            ri, rj = np.minimum(r, p), np.maximum(r, p)
            ok = ~row_in_batch[p] | (r < p)
        else:
            i, j = _upper_pairs(m)
            ri, rj = (first[:, None] + i).ravel(), (first[:, None] + j).ravel()
            ok = row_in_batch[ri] | row_in_batch[rj]
        a, b = owners[ri], owners[rj]
        ok &= a != b
        sample_i, sample_j = kinds[ri] == KIND_SAMPLE, kinds[rj] == KIND_SAMPLE
        band = ok & ~sample_i & ~sample_j & ((kinds[ri] == KIND_WHOLE) | (kinds[rj] == KIND_WHOLE))
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        band_parts.append(lo[band] * (1 << 32) + hi[band])
        pick = ok & sample_i & sample_j & (short[ri] | short[rj])
        sample_parts.append(lo[pick] * (1 << 32) + hi[pick])
    band_codes = arrays.unique(np.concatenate([*band_parts, np.empty(0, np.int64)]))
    return band_codes, sample_parts


def bucket_pairs(batch: set[int], keys: np.ndarray, vals: np.ndarray, sizes: TextSizes, params: Params) -> BucketPairs:
    """The band pairs with at least one text of `batch` and the samples shared by such pairs, from
    the live rows of some keys (whole buckets).

    Buckets of up to BUCKET_ALL_PAIRS rows are paired with numpy, larger ones one by one
    (add_bucket_pairs: a bucket of that many rows may still hold fewer documents)."""
    pairs: set[tuple[int, int]] = set()
    if len(keys) == 0:
        return BucketPairs(pairs, np.empty(0, np.int64), np.empty(0, np.int64))
    order = np.argsort(keys, kind="stable")  # lookup's rows: a sorted run per segment, merged
    keys, vals = keys[order], vals[order]
    owners, kinds = vals >> _KIND_BITS, vals & 3
    top = int(owners.max())
    ids = np.fromiter(batch, dtype=np.int64, count=len(batch))
    in_batch = np.zeros(top + 1, dtype=bool)
    in_batch[ids[ids <= top]] = True
    short = sizes.n_shingles[np.minimum(owners, len(sizes.n_shingles) - 1)] <= sizes.short_max
    short_doc = sizes.n_shingles <= sizes.short_max  # by document id
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(keys)]))
    n = ends - starts
    band_codes, sample_parts = _small_bucket_codes(starts, n, owners, kinds, in_batch, short)
    pairs.update(code_pairs(band_codes))
    # Larger buckets: oversized band buckets are chained; samples held by many texts skipped.
    chain_order: dict[int, tuple[str, int]] = {}
    for s, e in zip(starts[n > BUCKET_ALL_PAIRS].tolist(), ends[n > BUCKET_ALL_PAIRS].tolist(), strict=True):
        members = arrays.unique(owners[s:e])
        if len(members) < 2 or not in_batch[members].any():
            continue
        if kinds[s:e].min() == KIND_SAMPLE:  # (a key is a sample's or a band's: 64-bit hashes)
            if len(members) <= SAMPLE_DF_CAP:
                sample_parts.append(_sample_bucket_codes(members, in_batch, short_doc))
            continue
        docs = set(members.tolist())
        whole = set(owners[s:e][kinds[s:e] == KIND_WHOLE].tolist())
        missing = [d for d in docs if d not in chain_order] if len(docs) > BUCKET_ALL_PAIRS else []
        if missing:
            chain_order.update({d: (h, d) for d, h in sizes.content_hash(missing).items()})
        add_bucket_pairs(pairs, docs, whole, chain_order, batch)
    codes, counts = np.unique(np.concatenate([*sample_parts, np.empty(0, np.int64)]), return_counts=True)
    return BucketPairs(pairs, codes.astype(np.int64), counts.astype(np.int64))


def candidate_pairs(reps: list[DocSig], params: Params) -> set[tuple[int, int]]:
    """The candidate pairs of texts held in memory, all one batch: the index's rules without its
    files. Pairs of representatives that share an LSH band, directly or through a window, or
    where a short one may lie inside the other (shared samples).

    Whole texts find similar texts. A story that is a fifth of a compilation has a Jaccard
    similarity of only 0.2 with the whole page, which banding misses; but it fills most of one of
    the page's windows (shingle.windows), and the window shares a band with it. The samples find
    the rest, short texts inside texts 2.5 times their size or more (without such a search, on
    the dev corpus, F1 fell from 0.995 to 0.986-0.992 and compilation recall from 0.98-1.0 to
    0.91-0.94).
    """
    keys, vals = text_rows(reps, params)
    return batch_pairs({r.doc_id for r in reps}, keys, vals, TextSizes.of(reps, params), params)


def banded_pairs(reps: list[DocSig], params: Params) -> set[tuple[int, int]]:
    """The pairs that share a band (whole texts and windows), samples left out."""
    keys, vals = text_rows(reps, params)
    bands = (vals & 3) != KIND_SAMPLE
    return batch_pairs({r.doc_id for r in reps}, keys[bands], vals[bands], TextSizes.of(reps, params), params)


def cluster_documents(
    docs: list[DocSig], params: Params, tokens: TokenSource | None = None, verdicts: Verdicts | None = None
) -> list[Group]:
    """Group documents held in memory into clusters of copies; groups of one document are not
    returned. (A scan finds its candidates in the persistent index and groups the stored verdicts:
    the same rules.)

    `tokens(doc_id)`: the document's normalized words, for the pairs the signatures cannot settle.
    `verdicts`: pairs verified by earlier runs (used, and told the new ones).
    """
    by_hash: dict[str, list[DocSig]] = {}
    for d in docs:
        by_hash.setdefault(d.content_hash, []).append(d)
    reps = [g[0] for g in by_hash.values()]
    sig = {r.doc_id: r for r in reps}
    verdicts = verdicts if verdicts is not None else Verdicts()
    pairs = sorted(candidate_pairs(reps, params))
    unknown = [p for p in pairs if verdicts.verdict(*p) is UNKNOWN]
    for (a, b), edge in verify_here(params, tokens)(unknown, sig).items():
        verdicts.learn(a, b, edge)
    found = {**verdicts.known, **verdicts.new}
    edges = [e for p in pairs if (e := found.get(p)) is not None]
    return group_edges(
        {r.doc_id: r.n_shingles for r in reps},
        {g[0].doc_id: [d.doc_id for d in g[1:]] for g in by_hash.values()},
        edges,
        params,
        lambda a, b: overlap(sig[a], sig[b]),
    )


def compact(files: SegmentFiles, segments: list[Segment], live: np.ndarray, new_id: int) -> int:
    """Merge `segments` into segment `new_id`, live rows only, a key range at a time (memory
    bounded by COMPACT_CHUNK_ROWS, not by the index); returns its row count. The caller points
    every live document at `new_id` once this returns."""
    total = sum(len(s.keys) for s in segments)
    parts = max(1, -(-total // COMPACT_CHUNK_ROWS))
    bounds = [(2**64 * i) // parts for i in range(parts + 1)]  # key ranges [lo, hi)
    out_k: list[np.ndarray] = []
    out_v: list[np.ndarray] = []
    files.folder.mkdir(exist_ok=True)
    kp, vp = files._paths(new_id)
    tmp_k, tmp_v = kp.with_name(kp.name + ".part"), vp.with_name(vp.name + ".part")
    n_rows = 0
    with open(tmp_k, "wb") as fk, open(tmp_v, "wb") as fv:
        for lo_b, hi_b in zip(bounds[:-1], bounds[1:], strict=True):
            out_k.clear()
            out_v.clear()
            for seg in segments:
                lo = int(np.searchsorted(seg.keys, np.uint64(lo_b), side="left"))
                hi = int(np.searchsorted(seg.keys, np.uint64(hi_b), side="left")) if hi_b < 2**64 else len(seg.keys)
                v = np.asarray(seg.vals[lo:hi])
                ok = _live(v, live, seg.id)
                out_k.append(np.asarray(seg.keys[lo:hi])[ok])
                out_v.append(v[ok])
            k = np.concatenate(out_k)
            v = np.concatenate(out_v)
            order = np.argsort(k, kind="stable")
            fk.write(k[order].tobytes())
            fv.write(v[order].tobytes())
            n_rows += len(k)
            release_pages(segments)  # a compaction reads every segment whole
        for fh in (fk, fv):
            fh.flush()
            os.fsync(fh.fileno())
    # Wrap the raw rows as .npy files (a header, then the same bytes).
    for raw, path, dtype in ((tmp_k, kp, np.uint64), (tmp_v, vp, np.int64)):
        arr = np.memmap(raw, dtype=dtype, mode="r", shape=(n_rows,)) if n_rows else np.empty(0, dtype)
        out = np.lib.format.open_memmap(path.with_name(path.name + ".tmp"), mode="w+", dtype=dtype, shape=(n_rows,))
        for i in range(0, n_rows, COMPACT_CHUNK_ROWS):
            out[i : i + COMPACT_CHUNK_ROWS] = arr[i : i + COMPACT_CHUNK_ROWS]
        out.flush()
        del out, arr
        os.replace(path.with_name(path.name + ".tmp"), path)
        raw.unlink()
    return n_rows


# Texts indexed (and their pairs verified) per segment: what a batch holds in memory (signatures,
# windows, rows, the buckets it touches), whatever the size of the crawl.
INDEX_BATCH = 20_000
# Rows a lookup of some of a batch's texts should return (lookup: every live row of their keys,
# whole buckets included): what the candidate search holds at once, ~80 bytes a row while it pairs
# them (bucket_pairs). The texts a lookup takes follow the rows the last lookup returned a text,
# between LOOKUP_MIN and LOOKUP_MAX texts: buckets fill as the index grows (at 1M documents, 64
# copies a story, the last batches return ~1,300 rows a text; at 100k, 5 copies a story, ~150),
# and a count of texts that suits one would hold ~1 GB of arrays at the other, or walk each large
# bucket in Python once per lookup that touches it many times over. Pairs are found the same way
# whatever the chunks (tested).
LOOKUP_ROWS = 2_000_000
LOOKUP_MIN = 256
LOOKUP_MAX = 20_000
# Candidate pairs of a batch verified per round, with the signatures of their texts from outside
# the batch loaded for that round only: a batch's texts pair with texts all over the index (in a
# 300,000-document crawl of 13 copies a story, most of it), and holding all of those at once took
# the scanning process to 2.4 GB.
VERIFY_ROUND = 20_000


def doc_sig(stored, windows, params: Params) -> DocSig:
    """A stored signature (store.StoredSignature and its StoredWindows) as clustering needs it."""
    return DocSig(
        stored.doc_id,
        stored.content_hash,
        stored.n_shingles,
        from_bytes(stored.signature, params.scheme),
        tuple(json.loads(stored.numbers or "[]")),
        anchor_codes(stored.anchors),
        [(w.n_shingles, from_bytes(w.signature, params.scheme)) for w in windows],
        np.frombuffer(stored.samples or b"", dtype=np.uint32),
    )


def document_sig(doc, doc_id: int, params: Params) -> DocSig:
    """A document just signed (models.Document, not stored) as clustering needs it."""
    return DocSig(
        doc_id,
        doc.content_hash,
        doc.n_shingles,
        from_bytes(doc.signature, params.scheme),
        tuple(doc.numbers),
        anchor_codes(pack_anchors(doc.anchors)),
        [(n, from_bytes(sig, params.scheme)) for n, sig in doc.windows],
        np.frombuffer(doc.samples or b"", dtype=np.uint32),
    )


def load_sigs(store, ids: list[int], params: Params) -> dict[int, DocSig]:
    return {s.doc_id: doc_sig(s, w, params) for s, w in store.signatures_of(ids)}


@dataclass
class MatchReport:
    """What matching new texts against the index did."""

    indexed: int = 0  # texts indexed this run
    pairs_verified: int = 0
    pairs_known: int = 0  # candidate pairs an earlier run had verified
    segments: int = 0  # segments after the run
    rebuilt: str = ""  # why the whole index was rebuilt, if it was
    compacted: bool = False


# Verifies candidate pairs: given the signatures at hand (a batch's), it reads any others it needs.
Verifier = Callable[[list[tuple[int, int]], Mapping[int, DocSig]], dict[tuple[int, int], Edge | None]]


def verify_here(
    params: Params, tokens: TokenSource | None, load: Callable[[list[int]], Mapping[int, DocSig]] | None = None
) -> Verifier:
    """Pairs verified in this process (cluster.verify); the signatures `sigs` lacks are read with `load`."""

    def run(pairs: list[tuple[int, int]], sigs: Mapping[int, DocSig]) -> dict[tuple[int, int], Edge | None]:
        missing = sorted({d for p in pairs for d in p if d not in sigs})
        if missing and load is not None:
            sigs = ChainMap(dict(load(missing)), sigs)
        return {(a, b): verify(sigs[a], sigs[b], params, tokens) for a, b in pairs}

    return run


@dataclass
class PairSearch:
    """One batch's search for its candidate pairs in the index, as any engine gets it: the batch's
    segment is written already (`segments` ends with it)."""

    folder: Path  # the segment files (SegmentFiles.folder)
    segments: list[Segment]
    batch: list[int]  # the batch's texts, sorted
    keys: np.ndarray  # the batch's own rows (text_rows)
    vals: np.ndarray
    live: np.ndarray  # document id -> the segment holding its current rows (0: none)
    sizes: TextSizes
    params: Params


PairFinder = Callable[[PairSearch], set[tuple[int, int]]]


def find_batch_pairs(search: PairSearch, taken: SharedCount | None = None) -> set[tuple[int, int]]:
    """The batch's candidate pairs, found in this process, some texts at a time (LOOKUP_ROWS).
    `taken`: the count of the batch's texts, shared with another process searching the same
    batch: each then takes the next texts no one has taken, SHARED_TAKE_MAX at most, and finds
    the pairs of those."""
    found: set[tuple[int, int]] = set()
    batch, keys = search.batch, search.keys
    owners = search.vals >> _KIND_BITS
    at, take = 0, LOOKUP_MIN
    while True:
        if taken is not None:
            at = taken.take(take)
        if at >= len(batch):
            return found
        sub = batch[at : at + take]
        mine = np.isin(owners, sub)
        wanted, capped = lookup_keys(keys[mine], search.vals[mine])
        found_k, found_v = lookup(search.segments, wanted, search.live, capped=capped)
        found |= batch_pairs(set(sub), found_k, found_v, search.sizes, search.params)
        release_pages(search.segments)
        at += len(sub)
        take = lookup_take(len(found_k), len(sub))
        if taken is not None:
            take = min(take, SHARED_TAKE_MAX)
        del found_k, found_v


def lookup_take(rows: int, texts: int) -> int:
    """How many texts the next lookup takes, after one of `texts` texts returned `rows` rows."""
    return int(min(LOOKUP_MAX, max(LOOKUP_MIN, LOOKUP_ROWS * texts // max(rows, 1))))


class IndexState(NamedTuple):
    """What matching new texts reads of every stored document, in one pass (store.index_columns), as
    arrays: they are held through the whole match (dicts of a million ids took ~150 MB)."""

    reps: np.ndarray  # sorted ids: the first document of each distinct content that may join clusters
    indexed: np.ndarray  # (id, segment) of every indexed document, one row each
    texts: np.ndarray  # (id, shingles, samples) of every document that may join clusters, one row each

    @classmethod
    def read(cls, store) -> IndexState:
        reps: list[np.ndarray] = []
        indexed: list[np.ndarray] = []
        texts: list[np.ndarray] = []
        seen: set[str] = set()  # the contents met so far
        for cols in store.index_columns():  # by id
            has_seg = cols.segments > 0
            indexed.append(np.stack([cols.ids[has_seg], cols.segments[has_seg]], axis=1))
            ok = np.flatnonzero(cols.ok)
            texts.append(np.stack([cols.ids[ok], cols.n_shingles[ok], cols.n_samples[ok]], axis=1))
            ok_ids = cols.ids[ok].tolist()
            hashes = [cols.content_hashes[j] for j in ok.tolist()]
            first = dict(zip(reversed(hashes), reversed(ok_ids), strict=True))  # content -> its smallest id
            fresh = first.keys() - seen
            seen |= fresh
            reps.append(np.sort(np.fromiter((first[h] for h in fresh), np.int64, len(fresh))))
        return cls(
            np.concatenate(reps) if reps else np.zeros(0, np.int64),
            np.concatenate(indexed) if indexed else np.zeros((0, 2), np.int64),
            np.concatenate(texts) if texts else np.zeros((0, 3), np.int64),
        )


class _Searched(NamedTuple):
    """A batch indexed (its segment written) and its candidate pairs found."""

    segment: int
    texts: list[int]  # sorted
    rows: int
    pairs: set[tuple[int, int]]


def _search_codes(search: PairSearch, db_path: str, taken: SharedCount | None = None) -> np.ndarray:
    """A batch's candidate pairs (of the texts it takes, with `taken`: find_batch_pairs) as codes
    lo << 32 | hi, found in a forked process: the content hashes of oversized buckets are read with
    its own read-only connection (one must not be used across a fork)."""
    from dedup.store import Store

    with closing(Store(Path(db_path), readonly=True)) as store:
        sizes = replace(search.sizes, content_hash=store.content_hashes)
        found = find_batch_pairs(replace(search, sizes=sizes), taken)
    return pair_codes(found)


def in_verifying_order(pairs: list[tuple[int, int]], in_batch: Collection[int]) -> list[tuple[int, int]]:
    """Pairs ordered so that each verification task reads few documents: by the connected
    component of the pairs' graph (a story's copies, a template family), then by the text outside
    the batch (pairs inside it first), then by the pair. A task (VERIFY_CHUNK pairs) reads the
    signature and the words of each of its documents once, and a round (VERIFY_ROUND) each
    signature from outside the batch once; the verifier reads what it needs (none are held here:
    a batch's took ~100 MB at 1M documents). On the generated 100k crawl's 81,705 pairs, in tasks
    of 200, the tasks read 105,690 documents in the order of the pairs and 65,285 by component.
    Verdicts do not depend on the order."""
    if not pairs:
        return pairs
    a, b = np.array(pairs, np.int64).T
    ids, roots = component_roots(a, b)
    root = roots[np.searchsorted(ids, a)]
    inside = np.fromiter(in_batch, np.int64, len(in_batch))
    outside = np.where(arrays.isin(a, inside), np.where(arrays.isin(b, inside), -1, b), a)
    return [pairs[i] for i in np.lexsort((b, a, outside, root)).tolist()]


def _verify_and_store(store, batch: _Searched, verifier: Verifier, run_id: int, report: MatchReport) -> None:
    """Verify a batch's candidate pairs not verified before and store the verdicts with its
    segment (one write)."""
    pairs = sorted(batch.pairs)
    known = arrays.isin(pair_codes(pairs), store.verified_codes(batch.texts)).tolist()
    unknown = [p for p, k in zip(pairs, known, strict=True) if not k]
    del known
    verdicts = Verdicts()
    unknown = in_verifying_order(unknown, batch.texts)
    for r in range(0, len(unknown), VERIFY_ROUND):
        for (a, b), edge in verifier(unknown[r : r + VERIFY_ROUND], {}).items():
            verdicts.learn(a, b, edge)
    store.index_batch(
        batch.segment,
        batch.rows,
        batch.texts,
        {p: (e.a, e.b, e.jaccard, e.containment, e.kind) if e else None for p, e in verdicts.new.items()},
        run_id,
    )
    report.indexed += len(batch.texts)
    report.pairs_verified += len(verdicts.new)
    report.pairs_known += len(pairs) - len(verdicts.new)


# Texts a process takes at a time when two search one batch (find_batch_pairs' `taken`): small
# enough that the one that is through first (the other was verifying) finds texts left to take;
# at 100k documents a batch's search was ~3 s, the verification beside it 1.7 s.
SHARED_TAKE_MAX = 2_000
# A batch with no batch before it to verify (a first scan's first, a nightly run's only one) is
# searched by two processes at once when it has at least this many texts.
SPLIT_SEARCH_MIN = 2_000


def _search_beside(
    store, search: PairSearch, ahead: _Searched | None, verifier: Verifier, run_id: int, report: MatchReport,
    find_pairs: PairFinder, prepare: Callable[[], BatchRows | None],
) -> tuple[set[tuple[int, int]], BatchRows | None]:  # fmt: skip
    """A batch's candidate pairs found by a forked process and this one at once, each taking the
    next texts of the batch no one has taken (find_batch_pairs' `taken`), this one after it has
    verified the batch before, if any, and made and written the next batch's rows (`prepare`,
    returned with the pairs). The workers verify while this process waits: a 1M first scan spent
    ~12 s a batch searching with the workers idle, then verified with the search idle; at 100k a
    search alone beside a shorter verification left a core idle ~3 s a batch, and making the next
    rows ~1 s. The pairs are the same however the texts are shared out."""
    taken = SharedCount()
    with Background(partial(_search_codes, search, str(store.path), taken)) as job:
        if ahead is not None:
            _verify_and_store(store, ahead, verifier, run_id, report)
        following = prepare()
        pairs = find_batch_pairs(search, taken)
        codes = job.result()
    if isinstance(codes, TaskFailure):  # what it took is lost: the batch searched again here
        log.warning("the candidate search of a batch failed in its process (%s): searched here", codes.reason)
        return find_pairs(search), following
    return pairs | code_pairs(codes), following


class BatchRows(NamedTuple):
    """An index batch's rows (text_rows), before its segment is written."""

    keys: np.ndarray
    vals: np.ndarray


def _batch_rows(store, ids: list[int], params: Params) -> BatchRows | None:
    """The index rows of some texts from their stored signatures (None for none)."""
    if not ids:
        return None
    return BatchRows(*text_rows(load_sigs(store, ids, params).values(), params))


def _written_rows(store, files: SegmentFiles, seg_id: int, ids: list[int], params: Params) -> BatchRows | None:
    """_batch_rows, written as segment `seg_id` (sorted, synced: ~0.2-0.4 s a batch of 20,000 at
    100k documents). The database lists the segment only once its batch's verdicts are stored
    (index_batch); a run killed before leaves the files, which the next one removes."""
    rows = _batch_rows(store, ids, params)
    if rows is not None:
        files.write(seg_id, rows.keys, rows.vals)
    return rows


def match_new_texts(
    store,
    params: Params,
    verifier: Verifier,
    run_id: int,
    find_pairs: PairFinder = find_batch_pairs,
    background: bool = False,
) -> MatchReport:
    """Index every representative text that is not indexed yet, batch by batch, and verify its
    candidate pairs not verified before (`verifier`); the verdicts are stored with the segment
    (one write per batch), so a run killed half-way keeps the batches it finished. `find_pairs`
    finds a batch's candidate pairs (here, or partitioned by key on Ray: dedup.ray_engine).
    `background`: a batch's pairs are found by find_batch_pairs in a forked process while the
    batch before is verified (the local engine with worker processes)."""
    report = MatchReport()
    files = SegmentFiles(store.path)
    registered = store.index_segments()
    files.remove_except(set(registered))
    segments: list[Segment] = []
    try:
        segments = [files.open(s) for s in registered]
    except (OSError, ValueError) as exc:
        report.rebuilt = f"candidate index unreadable ({exc}): rebuilt from the stored signatures"
        store.forget_index()
        files.remove_except(set())
        segments = []
    state = IndexState.read(store)
    reps = state.reps
    indexed_ids, indexed_segs = state.indexed.T
    current = np.isin(indexed_ids, reps)
    store.unindex(indexed_ids[~current].tolist())  # gone, changed or now an exact copy
    top = int(reps[-1]) + 1 if len(reps) else 1
    live = np.zeros(top, dtype=np.int64)
    live[indexed_ids[current]] = indexed_segs[current]
    todo = reps[live[reps] == 0]  # (segments are numbered from 1)
    n_shingles = np.zeros(top, dtype=np.int64)
    n_samples = np.zeros(top, dtype=np.int64)
    ids, shingles, samples = state.texts[state.texts[:, 0] < top].T
    n_shingles[ids], n_samples[ids] = shingles, samples
    text_sizes = TextSizes(n_shingles, n_samples, store.content_hashes, sample_query_max(params))
    next_id = max(registered, default=0) + 1
    ahead = None  # the batch indexed and searched, whose pairs are verified next
    written_as = partial(_written_rows, store, files, params=params)
    # The next batch's rows, made and written as its segment while its batch before was searched
    # (with the workers verifying, not idle while this process sorts and syncs them).
    prepared: BatchRows | None = None
    for k in range(0, len(todo), INDEX_BATCH):
        chunk = todo[k : k + INDEX_BATCH].tolist()
        keys, vals = prepared or written_as(next_id, chunk)
        prepared = None
        segments.append(files.open(next_id))
        live[chunk] = next_id
        search = PairSearch(files.folder, list(segments), chunk, keys, vals, live, text_sizes, params)
        if background and Background.available() and (ahead is not None or len(chunk) >= SPLIT_SEARCH_MIN):
            following = todo[k + INDEX_BATCH : k + 2 * INDEX_BATCH].tolist()
            pairs, prepared = _search_beside(
                store, search, ahead, verifier, run_id, report, find_pairs, partial(written_as, next_id + 1, following)
            )
        else:
            if ahead is not None:
                _verify_and_store(store, ahead, verifier, run_id, report)
            pairs = find_pairs(search)
        ahead = _Searched(next_id, chunk, len(keys), pairs)
        next_id += 1
        del keys, vals, search, pairs
    if ahead is not None:
        _verify_and_store(store, ahead, verifier, run_id, report)
    if len(segments) > MAX_SEGMENTS:
        rows = compact(files, segments, live, next_id)
        old = [s.id for s in segments]
        store.replace_segments(old, next_id, rows, run_id)
        segments = []
        files.remove_except({next_id})
        report.compacted = True
        report.segments = 1
    else:
        report.segments = len(segments)
    return report


def overlap_of(store, params: Params) -> Callable[[int, int], float]:
    """(a, b) -> estimated share of the smaller text inside the larger, from stored signatures
    (compilation detection compares a few pairs)."""
    cache: dict[int, DocSig] = {}

    def overlap_ab(a: int, b: int) -> float:
        missing = [d for d in (a, b) if d not in cache]
        if missing:
            cache.update(load_sigs(store, missing, params))
        return overlap(cache[a], cache[b])

    return overlap_ab
