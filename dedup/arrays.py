"""Set operations on integer arrays by sorting, for the candidate search and signing.

NumPy 2.3 and later find the distinct values of a plain `np.unique(a)` (no index, inverse or counts
asked for) with a hash table, and `np.isin` calls it for its second array when it sorts. On the
64-bit keys and pair codes of the candidate index that is 10-20 times slower than sorting here
(a million uint64 keys: 0.82 s against 0.054 s; 100,000: 18 ms against 4.5 ms), and it was most of
the candidate search's time (`lookup_keys`). These give the same arrays as the NumPy calls they
stand for, with any NumPy dedup supports.
"""

from __future__ import annotations

import numpy as np


def unique(a: np.ndarray) -> np.ndarray:
    """np.unique(a) of a one-dimensional integer array: its distinct values, sorted."""
    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def isin(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.isin(a, b) of integer arrays of the same dtype: whether each value of `a` is in `b`, by
    binary search in `b`'s distinct values (for ids of a small range NumPy's own table is as quick:
    use np.isin there)."""
    ub = unique(b)
    if len(ub) == 0 or len(a) == 0:
        return np.zeros(len(a), dtype=bool)
    at = np.searchsorted(ub, a)
    np.minimum(at, len(ub) - 1, out=at)
    return ub[at] == a
