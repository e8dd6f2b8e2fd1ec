"""Verified copy pairs as rows of one structured array: how regrouping reads them from the store
(store.EdgeTable), how a cluster carries its own (cluster.Group.edges) to the attribute stage.

A nightly scope at 1M documents holds ~2.8-3.8 million pairs: as cluster.Edge objects ~0.5 GB and
~1 us each to make, then to pickle and unpickle again when clusters are handed to the attribute
stage's workers; as this, ~0.1 GB and one buffer.
"""

from __future__ import annotations

import numpy as np

# The kinds of a verified copy pair (cluster.Edge.kind; cluster.verify and cluster.aligned_edge
# make them, "exact" is kept for pairs of equal texts); in EDGE_DTYPE a pair's kind is its index here.
PAIR_KINDS = ("similar", "contained", "aligned", "exact")
EXACT = PAIR_KINDS.index("exact")
EDGE_DTYPE = np.dtype([("a", np.int64), ("b", np.int64), ("jaccard", np.float64), ("containment", np.float64),
                       ("kind", np.int8)])  # fmt: skip


def found_in(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of `values` are in `sorted_ids` (sorted ascending)."""
    if not len(sorted_ids):
        return np.zeros(len(values), bool)
    at = np.searchsorted(sorted_ids, values)
    at[at == len(sorted_ids)] = 0
    return sorted_ids[at] == values
