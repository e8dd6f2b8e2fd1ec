"""The persistent candidate index: the pairs it finds are those of the in-memory search, however
the texts arrive; its files survive kills, loss and compaction."""

import random

import numpy as np
import pytest

from dedup import candidates
from dedup.candidates import (
    SegmentFiles,
    TextSizes,
    banded_pairs,
    batch_pairs,
    candidate_pairs,
    in_verifying_order,
    lookup,
    text_rows,
)
from dedup.cluster import BUCKET_ALL_PAIRS
from dedup.models import Params
from dedup.pipeline import scan
from dedup.store import Store
from tests.conftest import BUS, FLOOD, TREES
from tests.test_cluster import NOTICE_TEMPLATE, sig, story
from tests.test_incremental import canonical

P = Params()


def texts() -> list[str]:
    trees, bus, flood = story(TREES), story(BUS), story(FLOOD)
    return [
        trees,
        trees[: len(trees) // 2],
        bus,
        bus + "\n编辑：王晓",
        flood,
        flood[:90],  # a short lead, found inside the long page by its samples only
        bus + "\n" + flood + "\n" + trees,  # a compilation
        trees[:70] + "\n" + bus[:60],
    ]


def index_pairs(folder, batches) -> set[tuple[int, int]]:
    """Feed the batches to an index one by one, as scans do; the pairs found along the way."""
    docs = [d for b in batches for d in b]
    top = max(d.doc_id for d in docs) + 1
    sizes = TextSizes.of(docs, P)
    folder.mkdir(parents=True, exist_ok=True)
    files = SegmentFiles(folder / "x.db")
    live = np.zeros(top, np.int64)
    segments, pairs = [], set()
    for k, batch in enumerate(batches, 1):
        keys, vals = text_rows(batch, P)
        files.write(k, keys, vals)
        segments.append(files.open(k))
        live[[d.doc_id for d in batch]] = k
        found = lookup(segments, np.unique(keys), live)
        pairs |= batch_pairs({d.doc_id for d in batch}, *found, sizes, P)
    return pairs


def test_one_batch_finds_the_pairs_of_the_in_memory_search(tmp_path):
    docs = [sig(i, t) for i, t in enumerate(texts(), 1)]
    family = [
        sig(100 + i, NOTICE_TEMPLATE.format(day=3, hour=8, low=2, high=10, humid=60) + f"编号{i + 100}。")
        for i in range(BUCKET_ALL_PAIRS + 16)
    ]  # oversized buckets: chained
    expected = candidate_pairs(docs + family, P)
    assert expected - banded_pairs(docs + family, P), "no pair found by samples alone: the test is too easy"
    assert index_pairs(tmp_path, [docs + family]) == expected


def test_texts_arriving_in_batches_find_the_pairs_of_one_batch(tmp_path):
    docs = [sig(i, t) for i, t in enumerate(texts(), 1)]
    expected = candidate_pairs(docs, P)
    for seed in range(3):
        shuffled = docs[:]
        random.Random(seed).shuffle(shuffled)
        batches = [shuffled[:3], shuffled[3:4], shuffled[4:]]
        assert index_pairs(tmp_path / str(seed), batches) == expected


def test_two_searches_sharing_out_a_batch_find_the_pairs_of_one(tmp_path, monkeypatch):
    """Two searches of a batch that take its texts from one shared count, one text at a time (as
    the scanning process and a forked one do), find between them the pairs of one search."""
    import threading

    from dedup.candidates import PairSearch, find_batch_pairs
    from dedup.workers import SharedCount

    docs = [sig(i, t) for i, t in enumerate(texts(), 1)]
    files = SegmentFiles(tmp_path / "x.db")
    keys, vals = text_rows(docs, P)
    files.write(1, keys, vals)
    live = np.ones(len(docs) + 1, np.int64)
    search = PairSearch(
        files.folder, [files.open(1)], [d.doc_id for d in docs], keys, vals, live, TextSizes.of(docs, P), P
    )
    expected = find_batch_pairs(search)
    assert expected == candidate_pairs(docs, P)
    monkeypatch.setattr(candidates, "LOOKUP_MIN", 1)
    monkeypatch.setattr(candidates, "SHARED_TAKE_MAX", 1)
    taken = SharedCount()
    found: list[set] = [set(), set()]

    def search_into(k: int) -> None:
        found[k] = find_batch_pairs(search, taken)

    threads = [threading.Thread(target=search_into, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found[0] | found[1] == expected
    assert taken.taken >= len(docs)


def test_rows_of_a_text_indexed_again_are_dead(tmp_path):
    files = SegmentFiles(tmp_path / "x.db")
    a, b = sig(1, story(BUS)), sig(2, story(BUS) + "\n编辑：王晓")
    changed = sig(2, story(FLOOD))  # document 2 now holds another text
    files.write(1, *text_rows([a, b], P))
    files.write(2, *text_rows([changed], P))
    segments = [files.open(1), files.open(2)]
    live = np.array([0, 1, 2])
    keys, vals = lookup(segments, np.unique(text_rows([a], P)[0]), live)
    assert set((vals >> 2).tolist()) == {1}  # b's old rows no longer match a


def test_compaction_keeps_live_rows_in_key_order(tmp_path, monkeypatch):
    monkeypatch.setattr(candidates, "COMPACT_CHUNK_ROWS", 50)  # many key ranges
    files = SegmentFiles(tmp_path / "x.db")
    docs = [sig(i, t) for i, t in enumerate(texts(), 1)]
    for k, d in enumerate(docs, 1):
        files.write(k, *text_rows([d], P))
    segments = [files.open(k) for k in range(1, len(docs) + 1)]
    live = np.array([0, *range(1, len(docs) + 1)])
    live[3] = 0  # document 3 gone
    rows = candidates.compact(files, segments, live, 99)
    merged = files.open(99)
    assert rows == len(merged.keys) == sum(len(s.keys) for s in segments) - len(segments[2].keys)
    assert np.all(merged.keys[1:] >= merged.keys[:-1])
    assert 3 not in set((merged.vals >> 2).tolist())


def segment_files(db) -> set[str]:
    return {p.name for p in SegmentFiles(db).folder.iterdir()}


def test_a_scan_cleans_up_after_a_killed_run_and_rebuilds_a_lost_index(crawl, tmp_path):
    db = tmp_path / "d.db"
    scan(crawl, db, P, jobs=1)
    expected = canonical(db)
    files = SegmentFiles(db)
    # A run killed between writing a segment and recording it leaves files nobody lists.
    files.write(77, np.arange(5, dtype=np.uint64), np.arange(5, dtype=np.int64))
    (files.folder / "seg-78.keys.npy.tmp").write_bytes(b"half")
    (crawl / "new.txt").write_text("无关的一段新文字，" * 20, encoding="utf-8")
    scan(crawl, db, P, jobs=1)
    assert not any(n.startswith(("seg-77.", "seg-78.")) for n in segment_files(db))
    # Segment files lost or damaged (a backup of the database alone, a disk error): rebuilt.
    for p in files.folder.iterdir():
        p.write_bytes(b"not an array")
    (crawl / "new.txt").unlink()
    summary = scan(crawl, db, P, jobs=1)
    assert any("candidate index unreadable" in n for n in summary.notes)
    assert canonical(db) == expected
    # Every text was matched again, and every pair it found had its stored verdict.
    assert summary.pairs_verified == 0 and summary.pairs_known > 0
    store = Store(db, readonly=True)
    assert len(store.indexed()) > 0
    store.close()


def test_segments_are_compacted_and_clusters_stay_those_of_one_scan(crawl, tmp_path, monkeypatch):
    monkeypatch.setattr(candidates, "MAX_SEGMENTS", 2)
    whole = tmp_path / "whole.db"
    scan(crawl, whole, P, jobs=1)
    files = sorted(p for p in crawl.rglob("*") if p.is_file())
    kept = {p: p.read_bytes() for p in files}
    for p in files:
        p.unlink()
    db = tmp_path / "d.db"
    for k in range(4):
        for p in files[k::4]:
            p.write_bytes(kept[p])
        scan(crawl, db, P, jobs=1)
    store = Store(db, readonly=True)
    assert len(store.index_segments()) <= 2
    store.close()
    assert canonical(db) == canonical(whole)


@pytest.mark.parametrize("bad", [b"", b"\x93NUMPY garbage"])
def test_open_refuses_a_damaged_segment(tmp_path, bad):
    files = SegmentFiles(tmp_path / "x.db")
    files.folder.mkdir()
    for suffix in ("keys", "vals"):
        (files.folder / f"seg-1.{suffix}.npy").write_bytes(bad)
    with pytest.raises((OSError, ValueError)):
        files.open(1)


def test_pairs_verified_in_workers_give_the_clusters_of_one_process(crawl, tmp_path, monkeypatch):
    from dedup import pipeline

    here = tmp_path / "here.db"
    scan(crawl, here, P, jobs=1)
    monkeypatch.setattr(pipeline, "VERIFY_IN_WORKERS", 0)
    monkeypatch.setattr(pipeline, "VERIFY_CHUNK", 3)
    workers = tmp_path / "workers.db"
    summary = scan(crawl, workers, P, jobs=2)
    assert summary.pairs_verified > 3
    assert canonical(workers) == canonical(here)


def test_a_pair_that_kills_its_worker_is_not_a_copy_and_the_scan_goes_on(crawl, tmp_path, monkeypatch):
    import os
    import sqlite3
    from contextlib import closing

    from dedup import cluster, pipeline

    first = tmp_path / "first.db"
    scan(crawl, first, P, jobs=1)
    with closing(sqlite3.connect(first)) as conn:
        victim = conn.execute("SELECT lo, hi FROM verdicts WHERE kind IS NOT NULL ORDER BY lo, hi").fetchone()
    real, parent = cluster.verify, os.getpid()

    def fragile(a, b, params, tokens=None):
        if {a.doc_id, b.doc_id} == set(victim) and os.getpid() != parent:
            os._exit(3)  # the worker dies on this pair only
        return real(a, b, params, tokens)

    monkeypatch.setattr(pipeline, "VERIFY_IN_WORKERS", 0)
    monkeypatch.setattr(pipeline, "verify", fragile)
    db = tmp_path / "d.db"
    summary = scan(crawl, db, P, jobs=2)
    assert summary.status == "done" and summary.clusters > 0
    with closing(sqlite3.connect(db)) as conn:
        verdicts = dict(((lo, hi), kind) for lo, hi, kind in conn.execute("SELECT lo, hi, kind FROM verdicts"))
    assert verdicts[victim] is None  # recorded as not a copy
    assert sum(1 for k in verdicts.values() if k) > 0  # its chunk's other pairs were verified one by one


def test_compaction_down_to_nothing_when_every_file_is_gone(crawl, tmp_path, monkeypatch):
    from dedup.models import ScanOptions

    monkeypatch.setattr(candidates, "MAX_SEGMENTS", 0)  # compact after every run
    db = tmp_path / "d.db"
    scan(crawl, db, P, jobs=1)
    for p in [p for p in crawl.rglob("*") if p.is_file()]:
        p.unlink()
    summary = scan(crawl, db, P, options=ScanOptions(jobs=1, allow_mass_removal=True))
    assert summary.status == "done" and summary.clusters == 0
    store = Store(db, readonly=True)
    (seg,) = store.index_segments()
    store.close()
    assert len(SegmentFiles(db).open(seg).keys) == 0


def test_lookups_and_verification_in_small_rounds_give_the_same_clusters(tmp_path, crawl, monkeypatch):
    """A batch's texts are looked up a few at a time, and its pairs verified a round at a time with
    the signatures of that round's outside texts: one text a lookup and one pair a round must give
    what one of each gives."""

    def exported(db) -> list[dict]:
        keys = ("path", "cluster", "original", "role", "parent_id", "similarity")
        return [{k: r[k] for k in keys} for r in Store(db, readonly=True).export_rows()]

    whole = scan(crawl, tmp_path / "whole.db", Params())
    monkeypatch.setattr(candidates, "VERIFY_ROUND", 1)
    monkeypatch.setattr(candidates, "LOOKUP_MIN", 1)
    monkeypatch.setattr(candidates, "LOOKUP_MAX", 1)
    rounds = scan(crawl, tmp_path / "rounds.db", Params())
    assert rounds.pairs_verified == whole.pairs_verified > 3
    assert exported(tmp_path / "rounds.db") == exported(tmp_path / "whole.db")


@pytest.mark.parametrize("holders", [40, 150])  # a bucket paired row by row, and one over BUCKET_ALL_PAIRS
def test_a_sample_held_by_many_texts_counts_for_the_pairs_with_a_short_text_of_the_batch(holders):
    from dedup.candidates import KIND_SAMPLE, bucket_pairs
    from dedup.cluster import SAMPLE_DF_CAP

    assert holders <= SAMPLE_DF_CAP and (holders > BUCKET_ALL_PAIRS) == (holders == 150)
    rnd = random.Random(holders)
    ids = rnd.sample(range(1, 1_000), holders)
    n_shingles = np.zeros(1_000, np.int64)
    n_shingles[ids] = [rnd.choice([30, 5_000]) for _ in ids]  # short texts and long ones
    sizes = TextSizes(n_shingles, np.zeros(1_000, np.int64), lambda d: {}, short_max=100)
    batch = set(rnd.sample(ids, holders // 3))
    # Two samples held by all of them (two keys), rows in no particular order.
    keys = np.repeat(np.array([7, 9], np.uint64), holders)
    vals = np.array(ids + ids, np.int64) << candidates._KIND_BITS | KIND_SAMPLE
    order = rnd.sample(range(len(keys)), len(keys))
    found = bucket_pairs(batch, keys[order], vals[order], sizes, P)
    want = sorted(
        x << 32 | y
        for x in ids
        for y in ids
        if x < y and (x in batch or y in batch) and (n_shingles[x] <= 100 or n_shingles[y] <= 100)
    )
    assert found.pairs == set()
    assert found.sample_codes.tolist() == want and set(found.sample_counts.tolist()) <= {2}


def test_a_sample_buckets_pairs_are_the_same_from_the_batch_side_or_all_at_once():
    """_sample_bucket_codes pairs a bucket from its batch members when they are few: the same
    pairs, each once, as every pair of the bucket filtered (batch text and short text)."""
    import numpy as np

    rng = np.random.default_rng(7)
    for _ in range(500):
        members = np.unique(rng.integers(0, 300, int(rng.integers(2, 257))))
        in_batch = rng.random(300) < rng.random()
        short = rng.random(300) < rng.random()
        i, j = np.triu_indices(len(members), 1)
        x, y = members[i], members[j]
        keep = (in_batch[x] | in_batch[y]) & (short[x] | short[y])
        want = np.sort(x[keep] * (1 << 32) + y[keep])
        assert np.array_equal(np.sort(candidates._sample_bucket_codes(members, in_batch, short)), want)


def test_text_rows_are_each_texts_band_rows_then_its_samples_text_after_text():
    """text_rows makes every band key at once: the same rows, in the same order, as a text at a
    time (whole signature's bands, its windows' bands, its samples), with and without windows or
    samples."""
    from types import SimpleNamespace

    import numpy as np

    from dedup.candidates import KIND_SAMPLE, KIND_WHOLE, KIND_WINDOW, band_keys, sample_keys

    params = P
    rng = np.random.default_rng(3)

    def sig():
        return rng.integers(0, 2**32, params.num_perm, dtype=np.uint64).astype(np.uint32)

    docs = [
        SimpleNamespace(
            doc_id=int(i * 7 + 1),
            signature=sig(),
            windows=[(50, sig()) for _ in range(int(rng.integers(0, 4)))],
            samples=np.sort(rng.integers(0, 2**32, int(rng.integers(0, 30)), dtype=np.uint64)).astype(np.uint32),
        )
        for i in range(40)
    ]
    keys, vals = [], []
    for d in docs:
        bk = band_keys(np.vstack([d.signature, *(w for _, w in d.windows)]), params)
        kinds = np.full(bk.shape, KIND_WINDOW, dtype=np.int64)
        kinds[0] = KIND_WHOLE
        keys += [bk.ravel(), sample_keys(d.samples)]
        vals += [(d.doc_id << 2) | kinds.ravel(), np.full(len(d.samples), (d.doc_id << 2) | KIND_SAMPLE)]
    got_keys, got_vals = text_rows(docs, params)
    assert np.array_equal(got_keys, np.concatenate(keys)) and np.array_equal(got_vals, np.concatenate(vals))
    assert got_keys.dtype == np.uint64 and got_vals.dtype == np.int64
    empty_keys, empty_vals = text_rows([], params)
    assert len(empty_keys) == len(empty_vals) == 0


def reference_bucket_pairs(batch, keys, vals, short) -> tuple[set, dict]:
    """The rules of bucket_pairs for buckets of up to BUCKET_ALL_PAIRS rows, row pair by row pair:
    band pairs (a whole text in the pair) and shared samples (a short text in the pair)."""
    from dedup.candidates import KIND_SAMPLE, KIND_WHOLE

    band, samples = set(), {}
    buckets: dict[int, list[int]] = {}
    for k, v in zip(keys.tolist(), vals.tolist(), strict=True):
        buckets.setdefault(k, []).append(v)
    for rows in buckets.values():
        for i, vi in enumerate(rows):
            for vj in rows[i + 1 :]:
                a, b, ka, kb = vi >> 2, vj >> 2, vi & 3, vj & 3
                if a == b or not (a in batch or b in batch):
                    continue
                code = min(a, b) << 32 | max(a, b)
                if ka == kb == KIND_SAMPLE and (short[a] or short[b]):
                    samples[code] = samples.get(code, 0) + 1
                elif KIND_SAMPLE not in (ka, kb) and KIND_WHOLE in (ka, kb):
                    band.add((min(a, b), max(a, b)))
    return band, samples


def test_small_buckets_give_the_pairs_of_every_row_pair_from_the_batch_side_or_all_at_once():
    """Buckets of up to BUCKET_ALL_PAIRS rows are paired from the batch's rows when they are few
    (a later batch's buckets hold mostly older texts) and all at once when they are many: the
    pairs and shared-sample counts of every row pair either way, each row pair once."""
    from dedup.candidates import KIND_SAMPLE, KIND_WHOLE, KIND_WINDOW, bucket_pairs

    rng = np.random.default_rng(11)
    for trial in range(60):
        n_docs = int(rng.integers(5, 400))
        short = rng.random(n_docs + 1) < 0.5
        n_shingles = np.where(short, 30, 5_000).astype(np.int64)
        sizes = TextSizes(n_shingles, np.zeros(n_docs + 1, np.int64), lambda d: {}, short_max=100)
        keys, vals = [], []
        for key in range(int(rng.integers(1, 60))):
            m = int(rng.integers(1, BUCKET_ALL_PAIRS + 1))
            owners = rng.choice(np.arange(1, n_docs + 1), m)  # a text may hold a band key twice (a window)
            kinds = np.full(m, KIND_SAMPLE) if rng.random() < 0.5 else rng.choice([KIND_WHOLE, KIND_WINDOW], m)
            keys.append(np.full(m, key + 1, np.uint64))
            vals.append(owners << 2 | kinds)
        keys, vals = np.concatenate(keys), np.concatenate(vals).astype(np.int64)
        share = [0.01, 0.2, 0.9][trial % 3]  # few batch rows, some, most
        batch = {int(d) for d in range(1, n_docs + 1) if rng.random() < share}
        order = rng.permutation(len(keys))
        found = bucket_pairs(batch, keys[order], vals[order], sizes, P)
        band, samples = reference_bucket_pairs(batch, keys, vals, short)
        assert found.pairs == band
        assert dict(zip(found.sample_codes.tolist(), found.sample_counts.tolist(), strict=True)) == samples


def test_a_lookup_leaves_out_the_samples_held_by_more_texts_than_the_sample_rule_counts(tmp_path):
    """Sample keys (lookup's `capped`) whose live rows outnumber SAMPLE_DF_CAP are not returned:
    bucket_pairs skips them anyway. Dead rows do not count; band buckets are returned whatever
    their size; the pairs are those of a lookup that returns everything."""
    from dedup.candidates import KIND_SAMPLE, KIND_WHOLE, lookup_keys
    from dedup.cluster import SAMPLE_DF_CAP

    files = SegmentFiles(tmp_path / "x.db")
    n = SAMPLE_DF_CAP + 40
    ids = np.arange(1, n + 1, dtype=np.int64)
    over, at_cap, band = np.uint64(11), np.uint64(22), np.uint64(33)
    # Segment 1: every text's rows; texts 1..40 are indexed again in segment 2 without key 22.
    k1 = np.concatenate([np.full(n, over), np.full(n, at_cap), np.full(n, band)])
    v1 = np.concatenate([ids << 2 | KIND_SAMPLE, ids << 2 | KIND_SAMPLE, ids << 2 | KIND_WHOLE])
    files.write(1, k1, v1)
    again = ids[:40]
    files.write(2, np.repeat([over, band], 40), np.concatenate([again << 2 | KIND_SAMPLE, again << 2 | KIND_WHOLE]))
    segments = [files.open(1), files.open(2)]
    live = np.ones(n + 1, np.int64)
    live[again] = 2
    # Key 22: n rows, SAMPLE_DF_CAP live. Key 11: n live rows over two segments. Key 33: a band of n.
    query_k = np.array([over, at_cap, band, np.uint64(44)], np.uint64)
    query_v = np.array([KIND_SAMPLE, KIND_SAMPLE, KIND_WHOLE, KIND_SAMPLE], np.int64) | (1 << 2)
    keys, capped = lookup_keys(query_k, query_v)
    assert keys.tolist() == [11, 22, 33, 44] and capped.tolist() == [True, True, False, True]
    got_k, got_v = lookup(segments, keys, live, capped=capped)
    all_k, all_v = lookup(segments, keys, live)
    assert set(got_k.tolist()) == {22, 33}
    assert (got_k == 22).sum() == SAMPLE_DF_CAP and (got_k == 33).sum() == n == (all_k == 11).sum()
    n_shingles = np.full(n + 1, 30, np.int64)
    sizes = TextSizes(n_shingles, np.full(n + 1, 2, np.int64), lambda d: {d: f"{d:08d}" for d in d}, short_max=100)
    batch = {1, 2, 3}
    assert batch_pairs(batch, got_k, got_v, sizes, P) == batch_pairs(batch, all_k, all_v, sizes, P)


def test_a_lookup_takes_texts_by_the_rows_the_last_one_returned(monkeypatch):
    monkeypatch.setattr(candidates, "LOOKUP_ROWS", 1_000)
    take = candidates.lookup_take
    assert take(rows=2_000, texts=100) == max(candidates.LOOKUP_MIN, 50)
    assert take(rows=0, texts=100) == candidates.LOOKUP_MAX
    monkeypatch.setattr(candidates, "LOOKUP_MIN", 1)
    assert take(rows=2_000, texts=100) == 50 and take(rows=500, texts=100) == 200


def exported(db) -> list[dict]:
    keys = ("path", "cluster", "original", "role", "parent_id", "similarity")
    return [{k: r[k] for k in keys} for r in Store(db, readonly=True).export_rows()]


@pytest.mark.parametrize("search_dies", [False, True])
@pytest.mark.parametrize("batch", [3, 10_000])  # many batches; one, searched by two processes at once
def test_a_batch_searched_in_its_own_process_while_the_batch_before_is_verified(
    tmp_path, crawl, monkeypatch, search_dies, batch
):
    """With worker processes, a batch's candidate search runs in a forked process while the batch
    before is verified, this process taking its share of the texts once it has verified (at once
    for a batch with none before): the clusters of one process, batch after batch. A batch whose
    search process dies is searched again here (the scan goes on, nothing lost)."""
    import os

    from dedup import pipeline, workers

    monkeypatch.setattr(candidates, "INDEX_BATCH", batch)
    monkeypatch.setattr(candidates, "SPLIT_SEARCH_MIN", 2)
    monkeypatch.setattr(pipeline, "VERIFY_IN_WORKERS", 1)  # verified in workers too
    one = scan(crawl, tmp_path / "one.db", P, jobs=1)
    started = []

    class Counted(workers.Background):
        def __init__(self, fn):
            started.append(fn)
            super().__init__(fn)

    monkeypatch.setattr(candidates, "Background", Counted)
    if search_dies:
        monkeypatch.setattr(candidates, "_search_codes", lambda *a: os._exit(3))
    two = scan(crawl, tmp_path / "two.db", P, jobs=2)
    assert len(started) >= (2 if batch == 3 else 1)
    assert two.pairs_verified == one.pairs_verified > 3
    assert exported(tmp_path / "two.db") == exported(tmp_path / "one.db")


def test_a_lookup_in_key_ranges_returns_the_rows_of_one_piece(tmp_path, monkeypatch):
    """A large index is searched one key range at a time (LOOKUP_MAPPED_BYTES), its pages unmapped
    after each: the rows are those of one search, in the same order for each key (segment order),
    dead rows and over-held samples left out the same way."""
    from dedup.candidates import KIND_SAMPLE, KIND_WHOLE, key_ranges, lookup_keys
    from dedup.cluster import SAMPLE_DF_CAP

    rng = np.random.default_rng(7)
    files = SegmentFiles(tmp_path / "x.db")
    pool = rng.integers(1, 2**63, size=3_000, dtype=np.int64).astype(np.uint64)
    popular = pool[:3]  # sample keys held by more than SAMPLE_DF_CAP texts
    n_docs = 4_000
    live = rng.integers(1, 4, size=n_docs + 1).astype(np.int64)  # each text's rows live in one of 3 segments
    for seg_id in (1, 2, 3):
        keys = np.concatenate([rng.choice(pool, size=20_000), np.repeat(popular, SAMPLE_DF_CAP)])
        owners = rng.integers(1, n_docs + 1, size=len(keys)).astype(np.int64)
        kinds = np.where(np.isin(keys, popular), KIND_SAMPLE, KIND_WHOLE)
        files.write(seg_id, keys, owners << 2 | kinds)
    segments = [files.open(s) for s in (1, 2, 3)]
    query_k = np.concatenate([rng.choice(pool, size=1_500), popular, [np.uint64(5)]])  # 5: held by none
    query_v = np.where(np.isin(query_k, popular), KIND_SAMPLE, KIND_WHOLE).astype(np.int64) | (1 << 2)
    keys, capped = lookup_keys(query_k, query_v)

    one = [lookup(segments, keys, live), lookup(segments, keys, live, capped=capped)]
    monkeypatch.setattr(candidates, "LOOKUP_MAPPED_BYTES", 16 * 5_000)  # ~5,000 rows a range
    assert len(key_ranges(segments, keys)) >= 10
    cut = [lookup(segments, keys, live), lookup(segments, keys, live, capped=capped)]
    for (k1, v1), (k2, v2) in zip(one, cut, strict=True):
        o1, o2 = np.argsort(k1, kind="stable"), np.argsort(k2, kind="stable")
        assert len(k1) > 5_000
        assert np.array_equal(k1[o1], k2[o2]) and np.array_equal(v1[o1], v2[o2])
    assert len(cut[1][0]) < len(cut[0][0])  # over-held samples were left out
    assert np.isin(popular, cut[0][0]).all()


def test_pairs_are_verified_grouped_by_component_then_by_the_text_outside_the_batch():
    """Two stories' candidate pairs arrive interleaved; verified in that order, a task of four pairs
    reads the documents of both. In verifying order each story's pairs come together (the one
    with the smallest document first), inside each the pairs within the batch first, then those
    with a text outside it, grouped by that text."""
    story_a = [(1, 3), (1, 5), (3, 5), (5, 20)]
    story_b = [(2, 4), (2, 6), (4, 6), (6, 30), (4, 30)]
    arrived = [p for k in range(5) for p in (story_a[k : k + 1] + story_b[k : k + 1])]
    batch = {1, 2, 3, 4, 5, 6}
    ordered = in_verifying_order(arrived, batch)
    assert sorted(ordered) == sorted(arrived)
    assert ordered == [(1, 3), (1, 5), (3, 5), (5, 20), (2, 4), (2, 6), (4, 6), (4, 30), (6, 30)]

    def reads(pairs, task=4):
        return sum(len({d for p in pairs[k : k + task] for d in p}) for k in range(0, len(pairs), task))

    assert reads(ordered) < reads(arrived)
    assert in_verifying_order([], batch) == []
