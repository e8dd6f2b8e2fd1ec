"""Shingles -> MinHash signatures (datasketch 2.x), to and from bytes, and their comparison.

Signatures only compare when made with the same num_perm, seed and permutation scheme; the store
keeps those with them (Params.signature_fingerprint) and refuses to mix.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from datasketch import MinHash

DTYPE = {"affine32": np.uint32, "affine64": np.uint64, "legacy": np.uint64}

# One shingle in this many (those whose CRC-32 is a multiple of it) is kept as a sample: a text
# inside another has all its samples in the other's, whatever else either holds, so counting shared
# samples finds short texts inside long ones (dedup.candidates) from the two texts alone. On the
# dev corpus one in 4 found every copy the LSH Ensemble found beyond the banded index (61 of 61
# verified pairs; one in 8: 60) at ~56 samples per document.
SAMPLE_MOD = 4


@lru_cache(maxsize=4)
def _template(num_perm: int, seed: int, scheme: str) -> MinHash:
    # Holds the permutations: made once per process, shared by every signature.
    return MinHash(num_perm=num_perm, seed=seed, scheme=scheme)


class Signed(NamedTuple):
    """What signing makes of a text: its signature, those of its parts (windows) and its samples."""

    whole: np.ndarray
    parts: list[np.ndarray]
    samples: np.ndarray  # sorted uint32 shingle hashes that are multiples of SAMPLE_MOD


def make_signature(shingles: set[str], num_perm: int, seed: int, scheme: str) -> np.ndarray:
    """MinHash hash values of a shingle set."""
    return make_signatures(list(shingles), [], num_perm, seed, scheme).whole


# datasketch 2's affine schemes: a hash value is mixed with the MurmurHash3 finalizer, then
# permuted as (a * h + b) mod 2^width. Computed here for all shingles and permutations at once.
_FMIX = {
    np.uint32: (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16),
    np.uint64: (33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33),
}


def _permuted(hashes: np.ndarray, perms: np.ndarray, scheme: str) -> np.ndarray:
    """(shingles x num_perm) permuted hash values, exactly as datasketch's update_batch makes them."""
    dtype = DTYPE[scheme]
    if scheme == "legacy":  # datasketch's first scheme, kept for signatures stored with it
        prime, max_hash = np.uint64((1 << 61) - 1), np.uint64((1 << 32) - 1)
        a, b = (np.asarray(p, dtype=np.uint64) for p in perms)
        return np.bitwise_and((hashes.astype(np.uint64)[:, None] * a + b) % prime, max_hash)
    s1, m1, s2, m2, s3 = (dtype(c) for c in _FMIX[dtype])
    hv = hashes.astype(dtype)[:, None]
    hv = hv ^ (hv >> s1)
    hv = hv * m1
    hv = hv ^ (hv >> s2)
    hv = hv * m2
    hv = hv ^ (hv >> s3)
    return hv * perms[0] + perms[1]


def make_signatures(ordered: list[str], spans: list[tuple[int, int]], num_perm: int, seed: int, scheme: str) -> Signed:
    """Signatures of a text's shingles (in text order, repeats allowed) and of spans of them
    (start, stop), and its samples; each distinct shingle hashed and permuted once.

    The values equal datasketch's MinHash.update_batch over the same shingles (a test compares),
    computed as one (distinct shingles x num_perm) array: the whole text's signature is its
    column minimum, a span's the minimum over its rows (numpy reduceat), where datasketch would
    hash and permute every window's shingles again (signing went from 0.55 to ~0.1 ms per
    document on the generated crawl).

    Shingles are hashed with CRC-32 rather than datasketch's default SHA-1: MinHash only needs
    the hash to spread distinct shingles (datasketch 2's schemes mix it with the MurmurHash3
    finalizer before permuting), and SHA-1 through Python was a third of the signing time.
    """
    perms = _template(num_perm, seed, scheme).permutations
    index: dict[str, int] = {}
    rows = [index.setdefault(s, len(index)) for s in ordered]
    values = np.fromiter((zlib.crc32(s.encode("utf-8")) for s in index), dtype=np.uint32, count=len(index))
    samples = np.unique(values[values % SAMPLE_MOD == 0])
    if not len(values):
        empty = _template(num_perm, seed, scheme).hashvalues.copy()
        return Signed(empty, [empty.copy() for _ in spans], samples)
    permuted = _permuted(values, perms, scheme)
    whole = permuted.min(axis=0)
    parts: list[np.ndarray] = []
    if spans:
        by_position = permuted[np.asarray(rows, dtype=np.intp)]
        # reduceat over (start, stop) pairs: row 2k is the minimum over start_k..stop_k - 1 (the odd
        # rows, stop_k..start_k+1, are discarded); a last row of maxima stands in for the end.
        end = np.full((1, num_perm), np.iinfo(by_position.dtype).max, by_position.dtype)
        by_position = np.vstack([by_position, end])
        bounds = np.asarray(spans, dtype=np.intp).ravel()
        mins = np.minimum.reduceat(by_position, bounds, axis=0)[0::2]
        parts = [m.copy() for m in mins]
    return Signed(whole, parts, samples)


def to_bytes(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values).tobytes()


def from_bytes(blob: bytes, scheme: str) -> np.ndarray:
    return np.frombuffer(blob, dtype=DTYPE[scheme])


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures (share of equal hash values)."""
    return float(np.count_nonzero(a == b)) / len(a)


def containment(j: float, n_a: int, n_b: int) -> float:
    """Estimated share of the smaller set inside the larger, from Jaccard and the set sizes.

    |A∩B| = J (|A| + |B|) / (1 + J); divided by min(|A|, |B|). A truncated copy has a low Jaccard
    with its full original but a containment near 1.
    """
    if min(n_a, n_b) == 0:
        return 0.0
    inter = j * (n_a + n_b) / (1.0 + j)
    return min(1.0, inter / min(n_a, n_b))
