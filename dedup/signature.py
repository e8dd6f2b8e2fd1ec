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
    return make_signatures(shingles, [], num_perm, seed, scheme).whole


def make_signatures(shingles: set[str], parts: list[set[str]], num_perm: int, seed: int, scheme: str) -> Signed:
    """Signatures of a shingle set and of parts of it, and its samples, each shingle hashed once.

    Shingles are hashed with CRC-32 rather than datasketch's default SHA-1: MinHash only needs
    the hash to spread distinct shingles (datasketch 2's schemes mix it with the MurmurHash3
    finalizer before permuting), and SHA-1 through Python was a third of the signing time
    (0.66 of 2.3 ms per document). Each shingle is hashed once, windows reuse the values.
    """
    t = _template(num_perm, seed, scheme)
    hashes = {s: zlib.crc32(s.encode("utf-8")) for s in shingles}

    def one(items) -> np.ndarray:
        m = MinHash(
            num_perm=num_perm, seed=seed, scheme=scheme, permutations=t.permutations, hashfunc=hashes.__getitem__
        )
        m.update_batch(items)
        return m.hashvalues.copy()

    values = np.fromiter(hashes.values(), dtype=np.uint32, count=len(hashes))
    samples = np.unique(values[values % SAMPLE_MOD == 0])
    return Signed(one(hashes), [one(p) for p in parts], samples)


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
