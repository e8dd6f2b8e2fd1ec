"""Grouping verified edges in arrays (cluster.group_pairs) against the union-find over Edge records
it replaced, written out here as the reference: the same members, roles, similarities and edges
(each group's in the edges' order), on random graphs with exact copies and compilations."""

import random
from collections import defaultdict

import pytest

from dedup.attributing import overlaps
from dedup.cluster import Edge, Group, UnionFind, edges_array, group_edges, group_pairs
from dedup.models import ROLE_COMPILATION, ROLE_COPY, Params

P = Params()


def reference_compilations(edges, sizes, params, copies, overlap):
    inside = defaultdict(set)
    for e in edges:
        if e.containment >= params.containment_threshold and sizes[e.b] <= params.compilation_part * sizes[e.a]:
            inside[e.a].add(e.b)
    candidates = {x for x, ys in inside.items() if len(ys) >= 2}
    if not candidates:
        return {}
    uf = UnionFind()
    for e in edges:
        if e.a not in candidates and e.b not in candidates:
            uf.union(e.a, e.b)
    weight = defaultdict(int)
    for d in sizes:
        if d not in candidates:
            weight[uf.find(d)] += copies.get(d, 1)
    out = {}
    for x in sorted(candidates):
        parts = defaultdict(list)
        for y in inside[x] - candidates:
            parts[uf.find(y)].append(y)
        stories, spread = [], []
        for root, members in parts.items():
            reps = sorted(members, key=lambda d: -sizes[d])[:3]
            for k, st in enumerate(stories):
                if any(overlap(a, b) >= 0.5 for a in reps for b in st[:3]):
                    st.extend(reps)
                    spread[k] += weight[uf.find(root)]
                    break
            else:
                stories.append(reps)
                spread.append(weight[uf.find(root)])
        if max(spread, default=0) < 2:
            continue
        if len(stories) >= 2 and sum(max(sizes[d] for d in st) for st in stories) <= 1.1 * sizes[x]:
            out[x] = inside[x] - candidates
    return out


def reference_groups(sizes, copies, edges, params, overlap):
    """The union-find over Edge records that cluster.group_pairs replaced."""
    compilations = reference_compilations(edges, sizes, params, {r: 1 + len(c) for r, c in copies.items()}, overlap)
    involved = {x for e in edges for x in (e.a, e.b)} | copies.keys()
    uf, comp_uf = UnionFind(), UnionFind()
    for e in edges:
        if e.a not in compilations and e.b not in compilations:
            uf.union(e.a, e.b)
        if e.a in compilations and e.b in compilations:
            comp_uf.union(e.a, e.b)
    groups = defaultdict(lambda: ({}, {}, []))  # members, similarity, edges
    for r in sizes:
        if r in involved and r not in compilations:
            groups[uf.find(r)][0][r] = ROLE_COPY
    carried = defaultdict(set)
    for x, inner in compilations.items():
        carried[comp_uf.find(x)].update(uf.find(y) for y in inner)
    for x in sorted(compilations):
        for root in carried[comp_uf.find(x)]:
            groups[root][0][x] = ROLE_COMPILATION
    for e in edges:
        for root in {uf.find(e.a), uf.find(e.b)}:
            g = groups.get(root)
            if g is not None and e.a in g[0] and e.b in g[0]:
                g[2].append(e)
                for x in (e.a, e.b):
                    g[1][x] = max(g[1].get(x, 0.0), e.jaccard)
    out = []
    for members, similarity, g_edges in groups.values():
        for rep in list(members):
            for d in copies.get(rep, ()):
                members[d] = members[rep]
                similarity[d] = similarity[rep] = 1.0
                g_edges.append(Edge(rep, d, 1.0, 1.0, "exact"))
        stories = sum(1 for r in members.values() if r != ROLE_COMPILATION)
        if stories >= 2 or (stories == 1 and len(members) >= 2):
            out.append((members, similarity, g_edges))
    return out


def random_graph(rnd: random.Random):
    """Stories of a few copies each (some truncated), exact copies, pages that hold two or three
    stories whole, a few stray edges between stories; ids shuffled so that components interleave."""
    ids = rnd.sample(range(1, 10_000), 400)
    sizes, copies, edges, story_of = {}, {}, [], {}
    k = 0
    stories = []
    for s in range(rnd.randint(1, 25)):
        members = ids[k : k + rnd.randint(1, 6)]
        k += len(members)
        for d in members:
            sizes[d] = rnd.randint(40, 300)
            story_of[d] = s
        stories.append(members)
        for i, x in enumerate(members):
            for y in members[i + 1 :]:
                if rnd.random() < 0.7:
                    kind = rnd.choice(["similar", "contained", "aligned"])
                    edges.append(Edge(x, y, rnd.choice([0.95, rnd.random()]), rnd.random() * 0.5 + 0.5, kind))
    for _ in range(rnd.randint(0, 4)):  # compilations: big pages holding whole stories
        x = ids[k]
        k += 1
        held = rnd.sample(stories, min(len(stories), rnd.randint(2, 3)))
        sizes[x] = sum(max(sizes[d] for d in st) for st in held) + rnd.randint(0, 20)
        for st in held:
            for d in st[:2]:
                edges.append(Edge(x, d, rnd.random(), rnd.choice([0.9, 1.0, 0.5]), "contained"))
        if rnd.random() < 0.3 and k < len(ids):  # a copy of the compilation, joined to it
            y = ids[k]
            k += 1
            sizes[y] = sizes[x]
            edges.append(Edge(x, y, 0.97, 0.99, "similar"))
    for _ in range(rnd.randint(0, 3)):  # stray edges
        x, y = rnd.sample(list(sizes), 2)
        if all({x, y} != {e.a, e.b} for e in edges):
            edges.append(Edge(x, y, rnd.random(), rnd.random(), "aligned"))
    for rep in rnd.sample(list(sizes), len(sizes) // 4):
        copies[rep] = ids[k : k + rnd.randint(1, 3)]
        k += len(copies[rep])
    edges.sort(key=lambda e: (min(e.a, e.b), max(e.a, e.b)))
    sizes = dict(sorted(sizes.items()))
    overlap = lambda a, b: 0.9 if story_of.get(a, -a) == story_of.get(b, -b) else 0.1  # noqa: E731
    return sizes, copies, edges, overlap


def as_plain(g: Group):
    return g.members, g.similarity, [(e.a, e.b, e.jaccard, e.containment, e.kind) for e in g.edge_list()]


@pytest.mark.parametrize("seed", range(60))
def test_grouping_in_arrays_gives_what_the_union_find_over_records_gave(seed: int):
    sizes, copies, edges, overlap = random_graph(random.Random(seed))
    want = [(m, s, [(e.a, e.b, e.jaccard, e.containment, e.kind) for e in es]) for m, s, es in
            reference_groups(sizes, copies, edges, P, overlap)]  # fmt: skip
    got = [as_plain(g) for g in group_edges(sizes, copies, edges, P, overlap)]
    assert [list(m.items()) for m, _, _ in got] == [list(m.items()) for m, _, _ in want]  # order too
    assert [s for _, s, _ in got] == [s for _, s, _ in want]
    assert [e for _, _, e in got] == [e for _, _, e in want]


def test_a_graph_with_compilations_is_among_those_compared():
    """The random graphs above exercise the compilation path, not only plain components."""
    found = 0
    for seed in range(60):
        sizes, copies, edges, overlap = random_graph(random.Random(seed))
        found += any(r == ROLE_COMPILATION for g in group_edges(sizes, copies, edges, P, overlap)
                     for r in g.members.values())  # fmt: skip
    assert found >= 10


def test_overlaps_read_from_a_groups_edges():
    """The share of one member inside another, both ways for near-equal texts only."""
    edges = [Edge(1, 2, 0.95, 0.97, "similar"), Edge(1, 3, 0.4, 0.9, "contained"), Edge(2, 3, 0.5, 0.6, "similar")]
    (g,) = group_pairs({1: 100, 2: 98, 3: 40}, {2: [7]}, edges_array(edges), P, lambda a, b: 0.0)
    assert overlaps(g) == {(1, 2): 0.97, (2, 1): 0.97, (1, 3): 0.9, (2, 3): 0.6, (2, 7): 1.0, (7, 2): 1.0}
