"""The attribute stage's work on the clusters that changed: their documents' metadata read and
each one's probable original picked (attribute.pick_original), giving the rows the store saves.

Many clusters (a first scan: ~18,000 at 100,000 documents) are done in the engine's workers, a
chunk of clusters a task, each worker reading the documents through a read-only connection of
its own (the scanning process sends the groups only): reading and picking were ~7 s of a 15 s
attribute stage on one core. A few (a nightly rescan's) are done in the scanning process, where
starting workers would cost more than it saves. Either way the rows come back in the clusters'
order, so the database is the same.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

from dedup.attribute import DocInfo, SiteProfile, pick_original
from dedup.cluster import ROLE_COMPILATION, Group
from dedup.edges import PAIR_KINDS
from dedup.workers import TaskFailure

log = logging.getLogger(__name__)

# Clusters attributed per read of their documents' metadata in this process (titles, URLs,
# credits: ~1 KB a document), so that a first scan's attribution holds a part of the crawl.
ATTRIBUTE_SLICE = 20_000
# Documents a worker task attributes, in whole clusters (one read of their documents: ~0.1 s of
# work), and the fewest documents worth starting workers for (each forks the scanning process and
# opens the database; a rescan that touches a few dozen small clusters does them here). The
# nightly run of the generated 100k crawl with 1,000 new files attributes ~3,700 documents: here,
# one core idle, until this was lowered from 10,000 (with VERIFY_IN_WORKERS: benchmarks/RESULTS.md,
# "Both cores on a nightly run").
# Counted in documents, not clusters: a story has ~5 copies in the generated 100k crawl and ~64 in
# the 1M one. Counted in clusters (256 a task, 2,000 to start workers), a nightly run at 1M
# attributed the ~800 clusters of each slice (~50,000 documents) in this process, workers idle.
ATTRIBUTE_CHUNK = 1_280
ATTRIBUTE_IN_WORKERS = 2_000


class Picking(NamedTuple):
    """What attributing any cluster needs besides its group (sent to each worker once)."""

    db: str  # the database, read-only in workers
    profiles: dict[str, SiteProfile]  # every site's names and role
    platform_names: dict[str, str]  # a platform's names -> its domain (from the sources file)


_worker: dict[str, Picking] = {}


def init_worker(picking: Picking) -> None:
    _worker["picking"] = picking


def attribute_task(groups: list[Group]) -> list[dict]:
    """Worker: the cluster rows of some groups (their documents read here, read-only; the
    connection closed before returning, as the other stages' tasks do)."""
    from dedup.store import Store

    picking = _worker["picking"]
    with closing(Store(Path(picking.db), readonly=True, checked=True)) as store:
        return cluster_rows(store, groups, picking)


class Attributor:
    """The cluster rows of groups, a slice of a clustering after another (`rows`): in the engine's
    workers when a slice has many, else here. The workers are started for the first slice that
    needs them and kept for the next (engine.task_pool): the local engine forks them once, before
    the scanning process starts saving slices in a thread (store.writer; a fork waits for a save).
    A task that fails in a worker (it crashed or timed out) is done again here, so an error in
    picking an original is raised as it would be without workers."""

    def __init__(self, picking: Picking, jobs: int, engine, timeout: float | None = None) -> None:
        self.picking, self.jobs, self.engine, self.timeout = picking, jobs, engine, timeout
        self._pool = None

    def rows(self, store, groups: list[Group], meanwhile: Callable[[], None] | None = None) -> list[dict]:
        """The groups' cluster rows, in their order (`store` reads their documents here).

        `meanwhile` is called once, in this thread, while the workers work on their first tasks
        (after the first result, when they hold the next ones: WORKER_DEPTH), or first when the
        groups are attributed here: the caller groups its next slice there instead of beside idle
        workers (~0.1 s a slice of 10,000 documents on the 100k crawl, ~1 s a first scan)."""
        if self.jobs <= 1 or sum(len(g.members) for g in groups) < ATTRIBUTE_IN_WORKERS:
            if meanwhile is not None:
                meanwhile()
            return [
                row
                for k in range(0, len(groups), ATTRIBUTE_SLICE)
                for row in cluster_rows(store, groups[k : k + ATTRIBUTE_SLICE], self.picking)
            ]
        if self._pool is None:
            self._pool = self.engine.task_pool(attribute_task, self.jobs, init_worker, (self.picking,), self.timeout)
        tasks = _tasks(groups, ATTRIBUTE_CHUNK)
        out: list[dict] = []
        with closing(self._pool.map(tasks)) as done:
            for part, res in zip(tasks, done, strict=True):
                if isinstance(res, TaskFailure):
                    log.warning("attributing %d clusters failed in a worker (%s): done here", len(part), res.reason)
                    res = cluster_rows(store, part, self.picking)
                out.extend(res)
                if meanwhile is not None:
                    meanwhile()
                    meanwhile = None
        if meanwhile is not None:  # no task at all: still called once
            meanwhile()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _tasks(groups: list[Group], documents: int) -> list[list[Group]]:
    """The groups in order, cut into tasks of whole groups holding about `documents` documents
    each (at least one group a task)."""
    tasks: list[list[Group]] = []
    part: list[Group] = []
    held = 0
    for g in groups:
        part.append(g)
        held += len(g.members)
        if held >= documents:
            tasks.append(part)
            part, held = [], 0
    if part:
        tasks.append(part)
    return tasks


def cluster_rows(store, groups: list[Group], picking: Picking) -> list[dict]:
    """Each group's original picked, as the row the store saves (one read of their documents)."""
    docinfo = doc_infos(store, sorted({d for g in groups for d in g.members}))
    rows = []
    for g in groups:
        att = pick_original(g.members, docinfo, picking.profiles, overlaps(g), picking.platform_names)
        rows.append(cluster_row(g, att, docinfo))
    return rows


def overlaps(g: Group) -> dict[tuple[int, int], float]:
    """Share of one member's text inside another, from the verified pairs: (a, b) -> the share of
    b inside a; both ways for near-equal texts."""
    e = g.edges
    a, b, share = e["a"].tolist(), e["b"].tolist(), e["containment"].tolist()
    out = dict(zip(zip(a, b, strict=True), share, strict=True))
    kind = e["kind"]
    # Two comparisons, not np.isin: a group has a few pairs, and isin's setup was ~15 us a call.
    both = (((kind == BOTH_WAYS[0]) | (kind == BOTH_WAYS[1])) & (e["jaccard"] >= 0.9)).tolist()
    out.update(((y, x), c) for x, y, c, twice in zip(a, b, share, both, strict=True) if twice)
    return out


# The kinds of pair whose texts are near-equal both ways (at a Jaccard of 0.9 or more).
BOTH_WAYS = [PAIR_KINDS.index("similar"), PAIR_KINDS.index("exact")]


def doc_infos(store, ids: list[int]) -> dict[int, DocInfo]:
    """What attribution reads of some documents, by id."""
    return {d.doc_id: d for d in store.doc_infos(ids)}


def cluster_row(g: Group, att, docinfo: dict[int, DocInfo]) -> dict:
    """A cluster as the store saves it."""
    non_comp = sorted(i for i, r in g.members.items() if r != ROLE_COMPILATION)
    key_doc = non_comp[0] if non_comp else min(g.members)
    times = sorted(docinfo[i].published_at for i in g.members if docinfo[i].published_at)
    orig = docinfo.get(att.original_id) if att.original_id else None
    return {
        "key": f"doc:{key_doc}",
        "size": len(g.members),
        "n_compilations": sum(1 for r in g.members.values() if r == ROLE_COMPILATION),
        "title": (orig or docinfo[key_doc]).title,
        "original_id": att.original_id,
        "external_source": att.external_source,
        "confidence": att.confidence,
        "reasons": json.dumps(att.reasons, ensure_ascii=False),
        "first_published": times[0] if times else None,
        "sites": json.dumps(sorted({docinfo[i].site for i in g.members}), ensure_ascii=False),
        "members": [
            {
                "document_id": i,
                "role": att.roles[i],
                "similarity": round(g.similarity.get(i, 0.0), 3),
                "parent_id": att.parents.get(i),
                "score": round(att.scores.get(i, 0.0), 2),
            }
            for i in sorted(g.members)
        ],
        "evidence": [
            {"document_id": e.doc_id, "kind": e.kind, "weight": e.weight, "detail": e.detail} for e in att.evidence
        ],
    }
