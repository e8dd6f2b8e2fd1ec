"""The sorted set operations give what NumPy's own give, for every integer type the index uses."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dedup import arrays

DTYPES = {
    "uint64": (np.uint64, 0, 2**64 - 1),
    "int64": (np.int64, -(2**63), 2**63 - 1),
    "uint32": (np.uint32, 0, 2**32 - 1),
}


def values(dtype: str):
    kind, lo, hi = DTYPES[dtype]
    # Few distinct values as well as many: repeats are what unique and isin are for.
    small = st.integers(min_value=max(lo, 0), max_value=min(hi, 20))
    return st.lists(st.one_of(small, st.integers(min_value=lo, max_value=hi)), max_size=300).map(
        lambda xs: np.array(xs, dtype=kind)
    )


@given(st.sampled_from(sorted(DTYPES)).flatmap(lambda d: st.tuples(values(d), values(d))))
def test_unique_and_isin_give_numpys_arrays(pair):
    a, b = pair
    got = arrays.unique(a)
    assert got.dtype == np.unique(a).dtype and np.array_equal(got, np.unique(a))
    assert np.array_equal(arrays.isin(a, b), np.isin(a, b))
    assert np.array_equal(arrays.isin(b, a), np.isin(b, a))


def test_a_million_keys_with_repeats():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**63, size=1_000_000, dtype=np.int64).astype(np.uint64)
    keys = np.concatenate([keys, keys[::3]])
    assert np.array_equal(arrays.unique(keys), np.unique(keys))
    some = keys[::7]
    assert np.array_equal(arrays.isin(arrays.unique(keys), some), np.isin(np.unique(keys), some))
