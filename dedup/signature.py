"""Shingles -> MinHash signatures (datasketch 2.x), to and from bytes, and their comparison.

Signatures only compare when made with the same num_perm, seed and permutation scheme; the store
keeps those with them (Params.signature_fingerprint) and refuses to mix.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np

from dedup import arrays

DTYPE = {"affine32": np.uint32, "affine64": np.uint64, "legacy": np.uint64}

# One shingle in this many (those whose CRC-32 is a multiple of it) is kept as a sample: a text
# inside another has all its samples in the other's, whatever else either holds, so counting shared
# samples finds short texts inside long ones (dedup.candidates) from the two texts alone. On the
# dev corpus one in 4 found every copy the LSH Ensemble found beyond the banded index (61 of 61
# verified pairs; one in 8: 60) at ~56 samples per document.
SAMPLE_MOD = 4


class Permutations(NamedTuple):
    """A MinHash's permutation parameters and its signature of no shingle (datasketch's)."""

    permutations: np.ndarray  # (2, num_perm): a and b of each permutation
    hashvalues: np.ndarray  # the signature of an empty set


# The signature of no shingle, by scheme: every value the largest hash (datasketch's sentinel).
EMPTY = {"affine32": (1 << 32) - 1, "affine64": (1 << 64) - 1, "legacy": (1 << 32) - 1}

_made: dict[tuple[int, int, str], Permutations] = {}


def _template(num_perm: int, seed: int, scheme: str) -> Permutations:
    """The permutations, made once per process and shared by every signature. datasketch makes
    them and is imported here, not with this module: importing it (it brings scipy through
    datasketch.lsh) took ~1 s of every run. A scan that has signed before reads them back from
    its database instead (load_permutations)."""
    key = (num_perm, seed, scheme)
    if key not in _made:
        from datasketch import MinHash

        m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme)
        _made[key] = Permutations(m.permutations, m.hashvalues)
    return _made[key]


def load_permutations(num_perm: int, seed: int, scheme: str, stored: str | None = None) -> str:
    """Make the permutations now, before a scan starts worker processes that sign (forked, they
    share them): from `stored`, what this function returned to an earlier scan of the database,
    when it fits these parameters, else with datasketch. Returns them as a database keeps them
    (hex of the (2, num_perm) array). Signatures already stored were made with those permutations:
    reading them back also keeps new signatures comparable with old ones across datasketch versions."""
    key = (num_perm, seed, scheme)
    width = np.dtype(DTYPE[scheme]).itemsize
    # The stored ones win over any this process made: they are what the database's signatures used.
    if stored and len(stored) == 4 * num_perm * width:  # two hex digits a byte
        try:
            values = np.frombuffer(bytes.fromhex(stored), dtype=DTYPE[scheme])
        except ValueError:  # not hex: made again
            values = np.empty(0)
        if values.size == 2 * num_perm:
            empty = np.full(num_perm, EMPTY[scheme], dtype=DTYPE[scheme])
            _made[key] = Permutations(values.reshape(2, num_perm).copy(), empty)
    return np.ascontiguousarray(_template(num_perm, seed, scheme).permutations, dtype=DTYPE[scheme]).tobytes().hex()


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
    out = hv * perms[0]
    out += perms[1]  # in place: one (shingles x num_perm) array instead of two
    return out


def make_signatures(ordered: list[str], spans: list[tuple[int, int]], num_perm: int, seed: int, scheme: str) -> Signed:
    """Signatures of a text's shingles (in text order, repeats allowed) and of spans of them
    (start, stop), and its samples; each position hashed and permuted once.

    The values equal datasketch's MinHash.update_batch over the same shingles (a test compares),
    computed as one (positions x num_perm) array: the whole text's signature is its column
    minimum, a span's the minimum over its rows (numpy reduceat), where datasketch would
    hash and permute every window's shingles again (signing went from 0.55 to ~0.1 ms per
    document on the generated crawl).

    Shingles are hashed with CRC-32 rather than datasketch's default SHA-1: MinHash only needs
    the hash to spread distinct shingles (datasketch 2's schemes mix it with the MurmurHash3
    finalizer before permuting), and SHA-1 through Python was a third of the signing time.
    """
    perms = _template(num_perm, seed, scheme).permutations
    # One hash per position, repeats included: every output depends only on the hash values, so
    # hashing each position spares building an index of the distinct shingles (its dict and list
    # cost more than the ~5% repeats a story has), and map() keeps the loop in C (70 -> 40 us a story).
    values = np.fromiter(map(zlib.crc32, map(str.encode, ordered)), dtype=np.uint32, count=len(ordered))
    samples = arrays.unique(values[values % SAMPLE_MOD == 0])
    if not len(values):
        empty = _template(num_perm, seed, scheme).hashvalues.copy()
        return Signed(empty, [empty.copy() for _ in spans], samples)
    by_position = _permuted(values, perms, scheme)
    whole = by_position.min(axis=0)
    parts = _span_minima(by_position, spans) if spans else []
    return Signed(whole, parts, samples)


def _span_minima(by_position: np.ndarray, spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """Column minima of the rows of each span (start < stop, within the rows: as
    shingle.window_spans makes them).

    Overlapping windows share most of their rows: the rows are cut at every span's start and stop
    into segments, each reduced once, and a span's minimum is that of its few segments. Reducing
    every window on its own went over each row size/step times (4 for the windows of Params):
    0.54 -> 0.30 ms for a story with windows.
    """
    cuts = sorted({0, len(by_position)}.union(*spans))
    segment = np.minimum.reduceat(by_position, cuts[:-1], axis=0)
    where = {c: i for i, c in enumerate(cuts)}
    return [segment[where[a] : where[b]].min(axis=0) for a, b in spans]


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
