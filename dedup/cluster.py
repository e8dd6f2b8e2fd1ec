"""Signatures -> exact groups -> LSH candidates -> verified pairs -> union-find clusters.

Two documents are copies when their estimated Jaccard similarity is high (a faithful or lightly
edited copy) or when the smaller one lies almost wholly inside the larger (a truncated copy).
A page that wholly contains two or more stories that are not copies of each other is a
compilation: it becomes a member of each story's cluster with the role `compilation` and never
joins the stories together.

LSH bands: with 128 permutations we use b=42 bands of r=3 rows (126 values). The probability that
a pair with Jaccard s becomes a candidate is 1 - (1 - s^3)^42:
    s=0.2 -> 0.29,  s=0.3 -> 0.68,  s=0.4 -> 0.93,  s=0.5 -> 0.996,  s=0.7 -> 1.0
Low bands on purpose: a copy truncated to 40% of its original has s≈0.4, and a story inside a
three-story compilation s≈0.3; every candidate is verified afterwards, so the cost of a low
threshold is only more verifications (s=0.1 still gives 4% of pairs as candidates).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from dedup import arrays
from dedup.align import align, numerals, shared_any_order
from dedup.edges import EDGE_DTYPE, EXACT, PAIR_KINDS, found_in
from dedup.models import ROLE_COMPILATION, ROLE_COPY, Params
from dedup.shingle import is_name
from dedup.signature import containment, jaccard

# A pair the signatures cannot settle (too little overlap estimated for a copy, or a number or
# name that one side states and the other contradicts) is aligned on its words when the caller
# can give them (`TokenSource`). On real pages the signature checks were too blunt both ways:
# a caption date, a counter or farm junk vetoed near-identical copies (Jaccard 0.64-0.89), and
# copies cut at different points share too little of either whole to pass 0.5 or 0.8.
# Pairs estimated below both of these are left alone (unrelated texts; aligning them costs time).
GRAY_JACCARD = 0.15
GRAY_CONTAINMENT = 0.3
# Aligned, a copy shares at least half of the smaller text in runs of identical words
# (dedup.align.MIN_RUN): real copies cut at different points, abridged or with farm junk shared
# 0.5-1.0 after normalization, other texts on the same subject (two background paragraphs in
# common, a bulletin quoted in a commentary) 0.4 at most. And at least this many words: two
# short texts that share a sentence are not copies of one story.
MIN_ALIGNED_SHARE = 0.5
MIN_ALIGNED_TOKENS = 30
# Below this many shared words, a pair must share most of the smaller text: two short reports of
# one ceremony or broadcast share their set phrases (~50 words, "军乐团奏两国国歌，鸣礼炮21响")
# and little else (dev corpus: 0.52-0.66 of the smaller text).
SHORT_SHARED_TOKENS = 60
MIN_SHORT_ALIGNED_SHARE = 0.8
# A 洗稿 rewrite swaps a word every few words: its runs of five cover only 0.43-0.49 of the
# smaller text on the real pages, its runs of three (dedup.align.MIN_LOOSE_RUN) 0.6 or more; a
# long text sharing only background paragraphs stays under both.
MIN_LOOSE_SHARE = 0.5
MIN_REWRITE_SHARE = 0.35
# Inside the shared text, a copy restates the original's numbers; a template sibling (another
# day's bulletin, another hour's warning) changes them in place. One changed number is tolerated
# per this many shared words beyond the first (a typo in a long story), none in a short one: on
# the real pages every sibling pair that aligned over half its text changed 1-11 numbers in
# place, and no copy pair changed one.
TOKENS_PER_NUMBER_EDIT = 500
# A pair the signatures did not find similar or contained, whose shared runs are separated by more
# than this many passages of their own (more than align.MAX_EDIT words on one side, counted per
# side), is two texts quoting common material, not a copy: a later report that quotes an
# announcement sentence by sentence between sentences of its own. A copy's differences are cuts at
# its ends, an inserted block or two, and words edited in place. Measured on such pairs: copies of
# one story had at most 2 (dev corpus) and 3 (real pages); different stories that quote each other
# (one pair of the real pages; reports on one event in the generated throughput crawl) 2-11, and
# 13 of those 17 pairs more than 3.
MAX_OWN_PASSAGES = 3
# Names swapped in place (a person for a person, a place for a place): two or more is a sibling.
MAX_NAME_SWAPS = 2
# A passage replaced in place (more than align.MAX_EDIT words on a side, between or next to shared
# runs) whose two sides state different names is a sibling too, once (align.passage_name_edits):
# another year's bulletin rewrites its lead around other provinces, guests or a book's other
# language edition and keeps the rest. A copy's own passages are material the other lacks: two
# copies of a roundup cut at different items hold different names in the same place, but each
# shares its whole text with their original or with a fuller copy, so the story stays joined.
# Measured on the pairs aligned and verified as copies before this rule, in the generated 100k
# crawl: 191 of the 433 pairs joining different stories, and 112 of the 43,427 pairs of one story's
# copies (mostly two copies cut at different points; none of them the only link of its story:
# same-story pairs of the crawl's components 248,770 before and after); the development corpus 4
# of 2,033 copies' pairs (also linked otherwise), the real pages none of 62. False pairs of the
# components 5,136 -> 2,009; a full scan scored 0.9796 -> 0.9918 (false pairs 5,184 -> 2,057), recall
# 1.0000 (the same 3 pairs missed), originals 18,075 -> 18,134 of 18,186; dev and real pages unchanged.
MAX_PASSAGE_NAME_SWAPS = 1
# A pair aligned on its words whose shared text is a small part of both texts is two stories, one
# quoting a passage of the other (a follow-up quoting an announcement, a commentary quoting a
# speech, a report repeating a notice's paragraph), not a copy: the smaller keeps more than a fifth
# of its own words (under INSIDE_SHARE of it shared, in any order) and the shared passage is under
# QUOTED_SHARE of the larger. A truncated copy or a story inside a compilation lies wholly inside
# the larger (INSIDE_SHARE or more); a copy with farm junk, or cut at another point, shares a larger
# part of the other. Measured on the pairs verified as copies before this rule: of one story's
# copies, those under INSIDE_SHARE of the smaller shared at least 0.27 of the larger in the
# generated 100k crawl (800 pairs), 0.36 in the development corpus (144), 0.39 on the real pages
# (20); 86 of the 240 pairs of different stories in the 100k crawl that share a passage fell under
# both (the rest share more of the larger).
INSIDE_SHARE = 0.8
QUOTED_SHARE = 0.25

# A band bucket holding more texts than this is a template family (a site's daily notices that
# differ only in their numbers, 1,500 of them: 1.1 million pairs, ~2 minutes of alignment) or a
# story copied very widely. All its pairs are not needed to find its copies: each member is paired
# with its next CHAIN_NEIGHBOURS in content-hash order (an order that does not depend on when
# documents arrived), so a family costs n x 16 pairs, and true copies, which pair with each other
# whichever neighbours they get, still connect.
BUCKET_ALL_PAIRS = 64
CHAIN_NEIGHBOURS = 16

# Texts that differ in size by this share or more are checked word by word even when the
# signatures pass them (see verify).
UNEQUAL_SIZE = 0.15

# Texts of about one size that the signatures find similar but below this Jaccard differ in a
# quarter or more of their words: they are aligned on their words like unequal pairs, not taken as
# copies on the signatures. Two short announcements of one template ("全国政协十四届三次会议将于3月4日
# 下午3时在北京开幕" / "3月7日下午3时，十四届全国人大一次会议将…举行第二次全体会议", then the same
# paragraph of channels) share ~70 % of their words and pass every signature check (the 4 of 3月4日
# is also in "4K超高清频道"). In the generated 100k crawl such pairs (same size, similar, under
# 0.75) joined 109 pairs of different stories and 324 of one story's copies; aligned, 39 of the
# 109 are refused (too little shared for texts that short) and all 324 kept: precision of the
# pairs' components 0.967 -> 0.980. ~0.2 ms for each of those ~430 pairs.
ALIGN_BELOW_JACCARD = 0.75

TokenSource = Callable[[int], "list[str] | None"]


@dataclass
class DocSig:
    """What clustering needs of a document."""

    doc_id: int
    content_hash: str
    n_shingles: int
    signature: np.ndarray
    numbers: tuple[str, ...] = ()
    anchors: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))  # anchor_codes
    windows: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (shingles, signature) of long texts
    samples: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint32))  # signature.SAMPLE_MOD


@dataclass
class Edge:
    a: int
    b: int
    jaccard: float
    containment: float
    kind: str  # similar | contained (b inside a)


@dataclass(eq=False)
class Group:
    """A cluster before attribution: members with roles and the verified edges between them."""

    members: dict[int, str] = field(default_factory=dict)  # doc_id -> role
    similarity: dict[int, float] = field(default_factory=dict)  # doc_id -> best similarity to a member
    # The edges as rows of EDGE_DTYPE: a cluster of 64 copies carries ~2,000, which the attribute
    # stage's workers get pickled (as Edge objects, most of what handing out clusters cost).
    edges: np.ndarray = field(default_factory=lambda: np.empty(0, EDGE_DTYPE))

    def edge_list(self) -> list[Edge]:
        return edges_of(self.edges)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return (
            self.members == other.members
            and self.similarity == other.similarity
            and np.array_equal(self.edges, other.edges)
        )

    __hash__ = None  # mutable, as a dataclass with eq is


def edges_array(edges: list[Edge]) -> np.ndarray:
    """Edges as rows of EDGE_DTYPE (the kind as its index in PAIR_KINDS)."""
    code = {k: n for n, k in enumerate(PAIR_KINDS)}
    return np.array([(e.a, e.b, e.jaccard, e.containment, code[e.kind]) for e in edges], EDGE_DTYPE)


def edges_of(pairs: np.ndarray) -> list[Edge]:
    """Rows of EDGE_DTYPE as Edge records."""
    return [Edge(a, b, j, c, PAIR_KINDS[k]) for a, b, j, c, k in pairs.tolist()]


class UnionFind:
    """Union-find with path compression and union by size."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.size: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        if x not in parent:
            parent[x] = x
            self.size[x] = 1
            return x
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return ra


def component_roots(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The connected components of the graph whose edges join a[i] and b[i] (document ids, >= 0):
    (the ids that appear, sorted; the smallest id of each one's component). Roots hooked under
    the smaller root and pointer jumping, in numpy over an array as long as the largest id: a few
    passes over the edges, where a Python union-find costs ~1 us an edge (a million pages have
    ~7 million verified pairs: ~1.5 s here)."""
    if not len(a):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = a.astype(np.int64, copy=False), b.astype(np.int64, copy=False)
    top = int(max(a.max(), b.max())) + 1
    seen = np.zeros(top, bool)
    seen[a] = True
    seen[b] = True
    parent = np.arange(top)
    while True:
        pa, pb = parent[a], parent[b]
        lo, hi = np.minimum(pa, pb), np.maximum(pa, pb)
        apart = lo != hi
        if not apart.any():
            break
        np.minimum.at(parent, hi[apart], lo[apart])  # a root hooked under a smaller one
        while True:  # every id pointed at its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    ids = np.flatnonzero(seen)
    return ids, parent[ids]


def number_conflicts(small: DocSig, big: DocSig) -> int:
    """How many numbers one text states that the other contradicts.

    Template siblings (one bulletin template, other figures and dates) share almost all their
    wording, so Jaccard alone cannot tell them from copies; their numbers differ. A copy states
    only numbers of its original (typos, ads and boilerplate do not add figures). The larger text
    may hold extra numbers in the part the smaller one lacks (a truncated copy), about in
    proportion to that part; beyond that (and one more), its extra numbers count as conflicts too.
    """
    # Sets, not counts: a page that repeats its own text (a summary line, a mobile copy) repeats
    # its numbers without stating new ones.
    have_big, have_small = set(big.numbers), set(small.numbers)
    missing = len(have_small - have_big)
    uncovered = 1.0 - small.n_shingles / big.n_shingles if big.n_shingles else 0.0
    if uncovered >= 0.15:
        # The smaller text is a part of the larger (truncated, paragraphs dropped): the numbers
        # of the missing part can be anywhere, so only contradictions count.
        return missing
    # One extra number is let pass: a copy may drop a year or a figure in an edit; a sibling
    # that only adds dates adds them in several places.
    extra = len(have_big - have_small)
    return missing + max(0, extra - math.ceil(len(have_big) * uncovered) - 1)


def add_bucket_pairs(
    pairs: set[tuple[int, int]], docs: set[int], whole: set[int], order: dict, batch: set[int] | None = None
) -> None:
    """The candidate pairs of one band bucket: `docs` own a text or a window in it, `whole` their
    whole text; a pair needs one whole text. Oversized buckets are chained (BUCKET_ALL_PAIRS) in
    `order` (doc id -> content-hash key). With `batch`, only pairs with a document of it."""
    if len(docs) < 2:
        return
    ids = sorted(docs)
    reach = len(ids)
    if len(ids) > BUCKET_ALL_PAIRS:
        ids.sort(key=lambda d: order[d])
        reach = CHAIN_NEIGHBOURS
    for i, a in enumerate(ids):
        for b in ids[i + 1 : i + 1 + reach]:
            if (a in whole or b in whole) and (batch is None or a in batch or b in batch):
                pairs.add((min(a, b), max(a, b)))


def sample_query_max(params: Params) -> int:
    """Texts up to this many shingles are looked for inside others by their samples.

    Banding finds the rest: a text inside one less than 2.5 times its size has a Jaccard
    similarity over 0.4 (a candidate 93 % of the time), and a text of 0.4 window or more fills a
    window of a long text that much. What neither sees is a short text inside a text at least 2.5
    times its size: under (2 windows) / 2.5, since longer texts than 2 windows have windows.
    """
    return int((2 * params.window_size - 1) / 2.5)


# A short text (sample_query_max) is a candidate inside another when the other holds at least this
# share of its samples, and at least MIN_SHARED_SAMPLES of them: a text wholly inside another has
# all of its samples there (its copy, edited, most); two texts on one subject share a few set
# phrases. On the dev corpus 0.5 gave 180 candidates beyond the banded ones, against 1,240 from
# the LSH Ensemble it replaced, and every copy that one found (0.3: 442).
SAMPLE_SHARE = 0.5
MIN_SHARED_SAMPLES = 2
# A sample held by more texts than this is a set phrase (a dateline, a template sentence, a
# platform's line): it is not counted, so that a crawl of a million pages does not pair every
# short text holding it with every other. (Its holders still share their other samples.)
SAMPLE_DF_CAP = 256


def sample_candidate(shared, small_samples):
    """A short text with `small_samples` samples, `shared` of them in another text: a candidate
    (numbers or numpy arrays of them)."""
    return shared >= np.maximum(MIN_SHARED_SAMPLES, SAMPLE_SHARE * small_samples)


def anchor_codes(stored: bytes | str | None) -> np.ndarray:
    """A document's (context, word) hashes as stored (store.files.pack_anchors: sorted distinct
    codes context << 32 | word), or as the JSON list of pairs databases signed before kept."""
    if not stored:
        return np.empty(0, dtype=np.uint64)
    if isinstance(stored, bytes):
        return np.frombuffer(stored, dtype=np.uint64)
    return arrays.unique(np.array([(ctx << 32) | word for ctx, word in json.loads(stored)], dtype=np.uint64))


def _found_in(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Which values of `a` the sorted array `b` holds."""
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    return b[at] == a


def _distinct_sorted(a: np.ndarray) -> int:
    """How many distinct values a sorted array holds."""
    return int(np.count_nonzero(a[1:] != a[:-1])) + 1 if len(a) else 0


def substitutions(a: DocSig, b: DocSig) -> int:
    """Contexts where the two texts state different names or numbers (see shingle.anchors): the
    contexts both hold, less those where they share a word. (Sorted codes searched with numpy:
    no set per call.)

    Measured on the development corpus: 7,396 of 7,406 pairs of true copies have none (10 have
    one); 512 of 530 pairs of template siblings have at least one and 408 at least two.
    """
    x, y = a.anchors, b.anchors
    if not len(x) or not len(y):
        return 0
    cx, cy = x >> 32, y >> 32  # sorted, as the codes are
    first_x = np.concatenate(([True], cx[1:] != cx[:-1]))
    first_y = np.concatenate(([True], cy[1:] != cy[:-1]))
    both = int(np.count_nonzero(_found_in(cx[first_x], cy[first_y])))
    if not both:
        return 0
    return both - _distinct_sorted(cx[_found_in(x, y)])


def verify(a: DocSig, b: DocSig, params: Params, tokens: TokenSource | None = None) -> Edge | None:
    """A verified copy relation between two documents, or None.

    The signatures settle most pairs: similar or contained, with no number or name contradicted.
    The rest, when `tokens` gives their words, are aligned (see `aligned_edge`).
    """
    j = jaccard(a.signature, b.signature)
    big, small = (a, b) if a.n_shingles >= b.n_shingles else (b, a)
    c = containment(j, big.n_shingles, small.n_shingles)
    if j < params.jaccard_threshold:
        # A short text inside a long one: estimated against the window that holds it best (the
        # whole page's Jaccard is small and its estimate too rough).
        for n, w in big.windows:
            if small.n_shingles <= n:
                c = max(c, containment(jaccard(w, small.signature), n, small.n_shingles))
    kind = "similar" if j >= params.jaccard_threshold else "contained" if c >= params.containment_threshold else ""
    if (
        kind
        and number_conflicts(small, big) < params.max_number_conflicts
        and substitutions(small, big) < params.max_substitutions
    ):
        # Between texts of unequal size the number check above counts only what the smaller
        # states and the larger lacks: a later issue of a warning that restates the earlier one's
        # figures passes it. Aligned, its figures differ in place.
        if tokens is None:
            return Edge(big.doc_id, small.doc_id, j, c, kind)
        if small.n_shingles >= (1 - UNEQUAL_SIZE) * big.n_shingles and j >= ALIGN_BELOW_JACCARD:
            return None if numerals_changed(big, small, tokens) else Edge(big.doc_id, small.doc_id, j, c, kind)
        return aligned_edge(big, small, j, c, params, tokens)
    if tokens is None or (j < GRAY_JACCARD and c < GRAY_CONTAINMENT):
        return None
    return aligned_edge(big, small, j, c, params, tokens, settled=bool(kind))


def numerals_changed(big: DocSig, small: DocSig, tokens: TokenSource) -> bool:
    """Whether two texts of about one size change a number in place that they write in Chinese
    numerals ("全国政协十四届三次会议" / "四次会议"). The signatures' number checks see only digits;
    the pair is aligned only when the two texts' numeral words differ (~3 % of the similar pairs of
    one story's copies in the generated 100k crawl: ~0.2 ms each)."""
    ta, tb = tokens(big.doc_id), tokens(small.doc_id)
    if not ta or not tb or _numerals_of(tokens, big.doc_id, ta) == _numerals_of(tokens, small.doc_id, tb):
        return False
    al = align(ta, tb)
    return len(al.number_edits()) > al.shared // TOKENS_PER_NUMBER_EDIT


def _numerals_of(tokens: TokenSource, doc_id: int, words: list[str]) -> frozenset[str]:
    """numerals(words), kept in the token source's `numerals` dict when it has one (a verification
    task's: its documents recur from pair to pair, and reading a text's numerals was ~40 % of
    verifying a similar pair in the 100k crawl of ~64 copies a story)."""
    memo = getattr(tokens, "numerals", None)
    if memo is None:
        return numerals(words)
    found = memo.get(doc_id)
    if found is None:
        found = memo[doc_id] = numerals(words)
    return found


def aligned_edge(
    big: DocSig, small: DocSig, j: float, c: float, params: Params, tokens: TokenSource, settled: bool = True
) -> Edge | None:
    """The pair aligned on its words: a copy when it shares most of the smaller text and changes
    no number (and swaps fewer than two names) inside what it shares; when the signatures did not
    find it similar or contained (`settled` False), also only when its shared runs are not
    interleaved with many passages of their own (MAX_OWN_PASSAGES); and never when what it shares
    is a small part of both texts (INSIDE_SHARE, QUOTED_SHARE); nor when a passage replaced in place
    names other names (MAX_PASSAGE_NAME_SWAPS)."""
    ta, tb = tokens(big.doc_id), tokens(small.doc_id)
    if not ta or not tb:
        return None
    al = align(ta, tb)
    rewrite = al.cover_small >= MIN_REWRITE_SHARE and al.loose_cover_small >= MIN_LOOSE_SHARE
    if al.shared < MIN_ALIGNED_TOKENS or (al.cover_small < MIN_ALIGNED_SHARE and not rewrite):
        return None
    if al.shared < SHORT_SHARED_TOKENS and al.cover_small < MIN_SHORT_ALIGNED_SHARE:
        return None
    if not settled and al.passages > MAX_OWN_PASSAGES:
        return None
    if al.cover_small < INSIDE_SHARE and al.cover_big < QUOTED_SHARE:
        # In order, a copy that swapped two paragraphs shares only one of them: look again.
        short, long = sorted((ta, tb), key=len)
        shared = shared_any_order(long, short)
        if shared < INSIDE_SHARE * len(short) and shared < QUOTED_SHARE * len(long):
            return None
    if len(al.number_edits()) > al.shared // TOKENS_PER_NUMBER_EDIT:
        return None
    if len(al.name_edits(is_name)) >= MAX_NAME_SWAPS:
        return None
    if len(al.passage_name_edits(is_name)) >= MAX_PASSAGE_NAME_SWAPS:
        return None
    # The same contexts with other numbers or names anywhere, shared runs or not: a short copy
    # cut just after the figures that tell two bulletins apart has no run after them.
    if substitutions(small, big) >= params.max_substitutions:
        return None
    return Edge(big.doc_id, small.doc_id, j, max(c, al.cover_small), "aligned")


def overlap(a: DocSig, b: DocSig) -> float:
    """Estimated share of the smaller text inside the larger, from the signatures."""
    return containment(jaccard(a.signature, b.signature), a.n_shingles, b.n_shingles)


Overlap = Callable[[int, int], float]  # (doc, doc) -> estimated share of the smaller inside the larger


def find_compilations(
    pairs: np.ndarray, sizes: dict[int, int], params: Params, copies: dict[int, int], overlap: Overlap
) -> dict[int, set[int]]:
    """Documents that wholly contain two or more different stories -> the documents they contain.

    A candidate holds at least two documents much smaller than itself. It is a compilation when
    those documents fall into two or more clusters of the graph without the candidates' own edges,
    and those clusters are different texts: two truncations of one story that the graph failed to
    link still overlap each other, two stories of a compilation do not.
    `pairs`: the verified edges (rows of EDGE_DTYPE); `sizes`: shingles of every representative;
    `copies`: how many documents each stands for (itself and its exact copies).
    """
    if not len(pairs):
        return {}
    a, b = pairs["a"], pairs["b"]
    size = _values_of(sizes, np.concatenate([a, b]))
    held = (pairs["containment"] >= params.containment_threshold) & (
        size[len(a) :] <= params.compilation_part * size[: len(a)]
    )
    inside: dict[int, set[int]] = defaultdict(set)
    for x, y in zip(a[held].tolist(), b[held].tolist(), strict=True):
        inside[x].add(y)
    candidates = {x for x, ys in inside.items() if len(ys) >= 2}
    if not candidates:
        return {}
    apart = ~_touching(candidates, a, b)
    _, _, find = _root_finder(a[apart], b[apart])
    weight: dict[int, int] = defaultdict(int)  # documents per component, exact copies included
    for d in sizes:
        if d not in candidates:
            weight[find(d)] += copies.get(d, 1)
    out = {}
    for x in sorted(candidates):  # by id, not set order: groups made a component at a time match
        parts: dict[int, list[int]] = defaultdict(list)
        for y in inside[x] - candidates:
            parts[find(y)].append(y)
        # Merge parts that overlap: they are pieces of one story, not two stories.
        stories: list[list[int]] = []
        spread: list[int] = []  # documents in the graph that carry each story
        for root, members in parts.items():
            reps = sorted(members, key=lambda d: -sizes[d])[:3]
            for k, st in enumerate(stories):
                if any(overlap(a, b) >= 0.5 for a in reps for b in st[:3]):
                    st.extend(reps)
                    spread[k] += weight[find(root)]
                    break
            else:
                stories.append(reps)
                spread.append(weight[find(root)])
        # A story of a compilation was published on its own somewhere: at least one of the
        # stories has copies of its own. A page split in two (part 1 and part 2 reposted as
        # pages of their own, nothing else) makes its full copies look like compilations of the
        # two halves; then the halves are alone.
        if max(spread, default=0) < 2:
            continue
        # The stories of a compilation are disjoint parts of it: their sizes add up to at most
        # its own (10 % slack for boilerplate). Copies of one story cut in different places
        # (a truncation, a copy with paragraphs dropped) overlap, so theirs add up to more.
        if len(stories) >= 2:
            total = sum(max(sizes[d] for d in st) for st in stories)
            if total <= 1.1 * sizes[x]:
                out[x] = inside[x] - candidates
    return out


def _values_of(table: dict[int, int], ids: np.ndarray) -> np.ndarray:
    """table[i] for each of `ids` (all keys of it), as an array."""
    keys = np.fromiter(table.keys(), np.int64, len(table))
    values = np.fromiter(table.values(), np.int64, len(table))
    order = np.argsort(keys)
    return values[order][np.searchsorted(keys[order], ids)]


def _touching(ids: Iterable[int], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Which edges (a[i], b[i]) have an end in `ids`."""
    sorted_ids = np.array(sorted(ids), np.int64)
    return found_in(sorted_ids, a) | found_in(sorted_ids, b)


def _components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """component_roots over the ids renumbered 0..n-1 first (its arrays as long as the ids that
    appear, not as the largest id): (the ids that appear, sorted; the smallest id of each one's
    component)."""
    if not len(a):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ids, at = np.unique(np.concatenate([a, b]), return_inverse=True)
    _, roots = component_roots(at[: len(a)], at[len(a) :])
    return ids, ids[roots]


def _root_finder(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, Callable[[int], int]]:
    """The connected components of the edges (a[i], b[i]): _components' (ids, roots), and
    d -> the smallest id of d's component (d itself when it is on no edge), what a union-find
    over them would say, from a dict."""
    ids, roots = _components(a, b)
    root = dict(zip(ids.tolist(), roots.tolist(), strict=True))
    return ids, roots, lambda d: root.get(d, d)


UNKNOWN = object()  # a pair no earlier run verified


class Verdicts:
    """Verified pairs carried from run to run: a verdict depends only on the two documents (their
    signatures and words) and the parameters, so it stands until one of them changes (the store
    forgets it then) and a rescan verifies only the pairs it has not seen."""

    def __init__(self, known: dict[tuple[int, int], Edge | None] | None = None) -> None:
        self.known = known or {}
        self.new: dict[tuple[int, int], Edge | None] = {}

    def verdict(self, a: int, b: int):
        return self.known.get((min(a, b), max(a, b)), UNKNOWN)

    def learn(self, a: int, b: int, edge: Edge | None) -> None:
        self.new[(min(a, b), max(a, b))] = edge


def edge_forest(edges: list[Edge]) -> list[tuple[int, int]]:
    """(document, root) of a union-find over some of the edges: the forests of the parts of an
    edge list, united, give the connected components of the whole list (the Ray engine finds them
    so, a part per task)."""
    uf = UnionFind()
    for e in edges:
        uf.union(e.a, e.b)
    return [(d, uf.find(d)) for d in list(uf.parent)]


def in_grouping_order(groups: list[Group], sizes: dict[int, int]) -> list[Group]:
    """Groups made a connected component at a time (group_edges on each), in the order group_pairs
    gives them for all the edges at once: by the first of their representatives (not compilations)
    in `sizes`. Everything group_edges decides, compilations included, depends only on the edges of
    one component, so the groups are the same; their order names new clusters (store.save_clusters)."""
    rank = {d: i for i, d in enumerate(sizes)}
    first = lambda g: min(rank[d] for d, r in g.members.items() if d in rank and r != ROLE_COMPILATION)  # noqa: E731
    return sorted(groups, key=first)


def group_edges(
    sizes: dict[int, int], copies: dict[int, list[int]], edges: list[Edge], params: Params, overlap: Overlap
) -> list[Group]:
    """group_pairs of a list of Edge records (documents clustered in memory, the Ray engine)."""
    return group_pairs(sizes, copies, edges_array(edges), params, overlap)


def group_pairs(
    sizes: dict[int, int], copies: dict[int, list[int]], pairs: np.ndarray, params: Params, overlap: Overlap
) -> list[Group]:
    """Clusters from the verified edges between representatives (`pairs`, rows of EDGE_DTYPE,
    which each group gets in their order).

    `sizes`: shingles of every representative (of each distinct content); `copies`: a
    representative -> the other documents with its content (exact copies, joined without
    verification); `overlap`: for the few pairs compilation detection compares.

    The edges stay in arrays: the connected components come from component_roots, each edge goes
    to its component's group by a sort, and only the few edges that touch a compilation are looked
    at one by one. As Edge records, the 2.8 million pairs of a nightly scope at 1M documents took
    ~40 s of one core to make and group, and handing their clusters to the attribute stage's
    workers (pickled, unpickled there) more than that.
    """
    compilations = find_compilations(pairs, sizes, params, {r: 1 + len(c) for r, c in copies.items()}, overlap)
    a, b = pairs["a"], pairs["b"]
    # Only representatives with an edge or an exact copy can be in a cluster: a crawl's many
    # singletons get no Group (at a million pages those were ~0.5 GB).
    involved = set(a.tolist()) | set(b.tolist()) | copies.keys()
    touching = _touching(compilations.keys(), a, b)
    # Compilations join nothing (copies of one compilation page are compilations too).
    ids, roots, find = _root_finder(a[~touching], b[~touching])
    comp_uf = UnionFind()
    for x, y in zip(a[touching].tolist(), b[touching].tolist(), strict=True):
        if x in compilations and y in compilations:
            comp_uf.union(x, y)

    groups: dict[int, Group] = defaultdict(Group)
    for r in sizes:
        if r in involved and r not in compilations:
            groups[find(r)].members[r] = ROLE_COPY
    # A compilation is a member of every story it carries (and of those its copies carry).
    carried: dict[int, set[int]] = defaultdict(set)
    for x, inner in compilations.items():
        carried[comp_uf.find(x)].update(find(y) for y in inner)
    for x in sorted(compilations):  # by id (see find_compilations)
        for r in carried[comp_uf.find(x)]:
            groups[r].members[x] = ROLE_COMPILATION
    listed = list(groups.values())

    # Each edge's group (its place in `listed`): an edge between two stories' documents is its
    # component's; one that touches a compilation is each group's that holds both its ends.
    place = {r: n for n, r in enumerate(groups)}
    plain = np.flatnonzero(~touching)
    owners = [_places(place, roots[np.searchsorted(ids, a[plain])])]
    taken = [plain]
    for k in np.flatnonzero(touching).tolist():
        x, y = int(a[k]), int(b[k])
        for r in {find(x), find(y)}:
            g = groups.get(r)
            if g is not None and x in g.members and y in g.members:
                owners.append(np.array([place[r]], np.int64))
                taken.append(np.array([k], np.int64))
    owner, taken_at = np.concatenate(owners), np.concatenate(taken)
    verified = pairs[taken_at]
    _best_similarity(listed, owner, verified)

    # Exact copies join their representative's groups, each by an edge after the verified ones.
    exact: list[tuple[int, int, int, float, float, int]] = []  # (group's place, EDGE_DTYPE's fields)
    for n, g in enumerate(listed):
        for rep in list(g.members):
            for d in copies.get(rep, ()):
                g.members[d] = g.members[rep]
                g.similarity[d] = 1.0
                g.similarity[rep] = 1.0
                exact.append((n, rep, d, 1.0, 1.0, EXACT))
    rows = np.concatenate([verified, np.array([e[1:] for e in exact], EDGE_DTYPE)])
    owner = np.concatenate([owner, np.array([e[0] for e in exact], np.int64)])
    order = np.lexsort((np.concatenate([taken_at, len(pairs) + np.arange(len(exact))]), owner))
    rows, owner = rows[order], owner[order]
    if len(rows):
        bounds = [*np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]).tolist(), len(rows)]
        for s, e in zip(bounds, bounds[1:], strict=False):
            listed[int(owner[s])].edges = rows[s:e]

    out = []
    for g in listed:
        stories = sum(1 for r in g.members.values() if r != ROLE_COMPILATION)
        if stories >= 2 or (stories == 1 and len(g.members) >= 2):
            out.append(g)
    return out


def _places(place: dict[int, int], roots: np.ndarray) -> np.ndarray:
    """place[r] of each of `roots`, as an array (a dict lookup per distinct root)."""
    distinct, at = np.unique(roots, return_inverse=True)
    return np.array([place[r] for r in distinct.tolist()], np.int64)[at].reshape(-1)


def _best_similarity(groups: list[Group], owner: np.ndarray, rows: np.ndarray) -> None:
    """Each group's similarity: for each end of its edges (`rows`, of the group at `owner` in
    `groups`), the highest Jaccard of those edges."""
    if not len(rows):
        return
    who = np.concatenate([owner, owner])
    end = np.concatenate([rows["a"], rows["b"]])
    j = np.concatenate([rows["jaccard"], rows["jaccard"]])
    order = np.lexsort((end, who))
    who, end, j = who[order], end[order], j[order]
    starts = np.flatnonzero(np.r_[True, (who[1:] != who[:-1]) | (end[1:] != end[:-1])])
    best = np.maximum.reduceat(j, starts)
    for n, d, v in zip(who[starts].tolist(), end[starts].tolist(), best.tolist(), strict=True):
        groups[n].similarity[d] = v
