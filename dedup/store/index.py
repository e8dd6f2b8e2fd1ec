"""What clustering reads: the signatures (documents and windows) and what attribution needs of each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from dedup import arrays
from dedup.attribute import DocInfo
from dedup.edges import EDGE_DTYPE, PAIR_KINDS, found_in
from dedup.store.base import in_chunks

# What matching new texts reads of every document (IndexMixin.index_columns), some ids at a time,
# each column one comma-separated string (group_concat: SQLite feeds every aggregate of a query the
# same rows in the same order; no value is NULL, so none is left out). From the index
# documents_index_rows, which holds every column named, with the same expression for the samples
# (INDEXED BY: for an aggregate with no ORDER BY, 3.40 reads the table instead, ~0.26 s at 100k
# documents against ~0.06 s). As rows made into Python tuples then arrays, the same read took
# 0.25 s at 100k documents, every scan with new texts: ~8 % of a nightly step adding 1 %.
INDEX_COLUMNS_SQL = (
    "SELECT group_concat(d.id), group_concat(COALESCE(d.content_hash, '')), group_concat(COALESCE(d.n_shingles, 0)), "
    "group_concat(COALESCE(length(d.samples), 0) / 4), group_concat(COALESCE(i.segment, 0)), "
    "group_concat(d.status = 'ok') "
    "FROM documents d INDEXED BY documents_index_rows LEFT JOIN indexed_documents i ON i.document_id = d.id "
    "WHERE d.id >= ? AND d.id < ? AND (d.status = 'ok' OR i.segment IS NOT NULL)"
)
# Ids read a query at a time by index_columns: its strings and arrays are ~10 MB a 100,000.
INDEX_COLUMNS_IDS = 250_000


# The verdicts table holds pairs of the kinds edges.PAIR_KINDS names (cluster.verify and
# cluster.aligned_edge make them; "exact" is kept for pairs of equal texts): regrouping reads them as
# codes, an index in that tuple, and a kind not in it is refused when pairs are saved.
_KIND_CODE = "CASE kind " + " ".join(f"WHEN '{k}' THEN {n}" for n, k in enumerate(PAIR_KINDS)) + " ELSE -1 END"
# A verified copy pair as regrouping reads it (cluster.Edge's fields, the kind as its code), from
# its lower end. Rows as Python tuples, then columns, cost ~2.5 us a pair more than rows made into
# one structured array: ~7 s of the 2.8 million pairs of a nightly scope at 1M documents.
EDGE_ROWS_SQL = f"SELECT a, b, jaccard, containment, {_KIND_CODE} FROM verdicts WHERE kind IS NOT NULL"


class EdgeTable(NamedTuple):
    """Verified copy pairs as one array of EDGE_DTYPE (a nightly scope at 1M holds ~2.8 million:
    as Edge objects or tuples, ~0.5 GB; as this, 0.1 GB)."""

    pairs: np.ndarray

    @classmethod
    def of(cls, parts: list[np.ndarray]) -> EdgeTable:
        return cls(np.concatenate([np.empty(0, EDGE_DTYPE), *parts]))

    @staticmethod
    def from_rows(rows: list[tuple]) -> np.ndarray:
        """EDGE_ROWS_SQL's rows as an array of EDGE_DTYPE."""
        pairs = np.array(rows, EDGE_DTYPE)
        if (pairs["kind"] < 0).any():
            raise ValueError(f"a verified pair of a kind not in {PAIR_KINDS}")
        return pairs

    @property
    def a(self) -> np.ndarray:
        return self.pairs["a"]

    @property
    def b(self) -> np.ndarray:
        return self.pairs["b"]

    def among(self, ids: np.ndarray) -> np.ndarray:
        """The pairs with both ends in `ids` (sorted), in their order."""
        return self.pairs[found_in(ids, self.pairs["a"]) & found_in(ids, self.pairs["b"])]

    def rows_among(self, ids: np.ndarray) -> Iterator[tuple[int, int, float, float, str]]:
        """(a, b, jaccard, containment, kind) of the pairs with both ends in `ids` (sorted)."""
        for a, b, j, c, k in self.among(ids).tolist():
            yield a, b, j, c, PAIR_KINDS[k]


class Representatives(NamedTuple):
    """The documents that may join clusters, by content: the first of each distinct content (its
    representative, clustered for all of them) and the exact copies that follow it."""

    sizes: dict[int, int]  # representative -> its shingles, by id
    copies: dict[int, list[int]]  # representative -> the other documents with its content (only those with any)


class IndexColumns(NamedTuple):
    """What matching new texts reads of some stored documents (IndexMixin.index_columns), a
    column each, by id: those that may join clusters or are indexed."""

    ids: np.ndarray  # int64, ascending
    content_hashes: list[str]  # "" for none
    n_shingles: np.ndarray
    n_samples: np.ndarray  # sampled shingle hashes stored (signature.SAMPLE_MOD)
    segments: np.ndarray  # the index segment that holds its band keys (0: not indexed)
    ok: np.ndarray  # bool: it may join clusters (status 'ok')


def _ints(column: str | None) -> np.ndarray:
    """A group_concat of integers as an array (None: no rows)."""
    return np.fromstring(column, dtype=np.int64, sep=",") if column else np.zeros(0, np.int64)


class TextSize(NamedTuple):
    """A document that may join clusters, by its sizes (IndexMixin.text_sizes)."""

    doc_id: int
    n_shingles: int
    n_samples: int


class SitePage(NamedTuple):
    """What a site's tally counts of one of its pages (attribute.SiteTally.add)."""

    site: str  # "" for pages without one
    credits: list[str]
    boilerplate: list[str]
    site_names: list[str]  # the names the page gives its own site


class RegroupScope(NamedTuple):
    """What regrouping reads of the documents connected to what changed (IndexMixin.regroup_scope)."""

    ids: set[int]  # the documents regrouped
    sizes: dict[int, int]  # representative (first of its content, 'ok') -> shingles
    copies: dict[int, list[int]]  # representative -> the other documents with its content (if any)
    current: dict[int, frozenset[tuple[int, bool]]]  # current cluster -> (member, compilation?)
    edges: EdgeTable  # the verified copy pairs among them


def _first_of_contents(rows) -> Representatives:
    """From (id, content hash, shingles) rows by id: the first document of each content -> its
    shingles, and (for those that have any) -> the other documents with that content."""
    sizes: dict[int, int] = {}
    copies: dict[int, list[int]] = {}
    first: dict[str, int] = {}
    for doc_id, h, n in rows:
        rep = first.setdefault(h, doc_id)
        if rep == doc_id:
            sizes[doc_id] = n
        else:  # only representatives with copies have an entry (a million empty lists: ~100 MB)
            copies.setdefault(rep, []).append(doc_id)
    return Representatives(sizes, copies)


class StoredSignature(NamedTuple):
    """A document that may join clusters, as clustering needs it."""

    doc_id: int
    content_hash: str
    n_shingles: int
    signature: bytes
    numbers: str | None  # JSON list of the numbers the text states
    anchors: str | None  # JSON list of (context, word) hashes
    samples: bytes | None  # uint32 sampled shingle hashes (signature.SAMPLE_MOD)


class StoredWindow(NamedTuple):
    """The signature of one window of a long document."""

    doc_id: int
    n_shingles: int
    signature: bytes


def windows_of(db, ids: list[int]) -> dict[int, list[StoredWindow]]:
    """The windows' signatures of some documents, each document's in order (none: not a key)."""
    out: dict[int, list[StoredWindow]] = {}
    for part, marks in in_chunks(ids):
        for row in db.execute(
            f"SELECT document_id, n_shingles, signature FROM windows WHERE document_id IN ({marks}) "
            "ORDER BY document_id, seq",
            part,
        ):
            out.setdefault(row[0], []).append(StoredWindow(*row))
    return out


class SiteText(NamedTuple):
    """What aligning a document word by word needs: its words as signed, or the text to make them."""

    site: str
    text: str
    words: bytes | None = None  # shingle.pack_words of the tokens it was signed from (None: signed before)


class IndexMixin:
    """What clustering reads and writes: signatures, the candidate index's bookkeeping (its
    segment files are dedup.candidates'), the pairs it verified; needs self.db, self.conn and
    self.write() from Connection."""

    def _insert_verdicts(self, new: dict[tuple[int, int], tuple | None]) -> None:
        unknown = {e[4] for e in new.values() if e} - set(PAIR_KINDS)
        if unknown:
            raise ValueError(f"verified pairs of kinds {sorted(unknown)} not in store.index.PAIR_KINDS")
        self.conn.executemany(
            "INSERT OR REPLACE INTO verdicts (lo, hi, kind, a, b, jaccard, containment) VALUES (?,?,?,?,?,?,?)",
            [(lo, hi, *((e[4], e[0], e[1], e[2], e[3]) if e else (None,) * 5)) for (lo, hi), e in new.items()],
        )

    def clear_verdicts(self) -> None:
        with self.write():
            self.db.execute("DELETE FROM verdicts")
            self._forget_index()

    # ------------------------------------------------------------------ the candidate index

    def representatives(self, scope: set[int] | None = None) -> Representatives:
        """Of the documents that may join clusters (those in `scope`, which must hold every
        document of each content it holds; all when None): the first of each distinct content ->
        its shingles, and (for those that have any) -> the other documents with that content (exact
        copies)."""
        if scope is None:
            rows = self.db.execute("SELECT id, content_hash, n_shingles FROM documents WHERE status = 'ok' ORDER BY id")
        else:
            rows = []
            for part, marks in in_chunks(sorted(scope)):
                rows += self.db.execute(
                    f"SELECT id, content_hash, n_shingles FROM documents WHERE status = 'ok' AND id IN ({marks})", part
                ).fetchall()
            rows.sort()
        return _first_of_contents(rows)

    def index_columns(self) -> Iterator[IndexColumns]:
        """(id, content hash, shingles, samples, its index segment, whether it may join clusters) of
        every document that may join clusters or is indexed, as columns, INDEX_COLUMNS_IDS ids at a
        time, by id: what matching new texts reads of them all, in one pass (INDEX_COLUMNS_SQL)."""
        (top,) = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM documents").fetchone()
        for lo in range(0, top + 1, INDEX_COLUMNS_IDS):
            row = self.db.execute(INDEX_COLUMNS_SQL, (lo, lo + INDEX_COLUMNS_IDS)).fetchone()
            ids, hashes, n, k, seg, ok = row
            # (A lone row with no hash gives "": one hash, not none.)
            cols = IndexColumns(_ints(ids), hashes.split(",") if ids else [], _ints(n), _ints(k), _ints(seg),
                                _ints(ok).astype(bool))  # fmt: skip
            if not (np.diff(cols.ids) > 0).all():  # (in the index's order, ascending, as far as seen)
                order = np.argsort(cols.ids, kind="stable")
                cols = IndexColumns(cols.ids[order], [cols.content_hashes[j] for j in order.tolist()],
                                    *(c[order] for c in cols[2:]))  # fmt: skip
            if len(cols.ids):
                yield cols

    def text_sizes(self) -> Iterator[TextSize]:
        """The sizes of every document that may join clusters."""
        yield from map(
            TextSize._make,
            self.db.execute(
                "SELECT id, n_shingles, COALESCE(length(samples), 0) / 4 FROM documents WHERE status = 'ok'"
            ),
        )

    def content_hashes(self, ids: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for part, marks in in_chunks(ids):
            out.update(self.db.execute(f"SELECT id, content_hash FROM documents WHERE id IN ({marks})", part))
        return out

    def signatures_of(self, ids: list[int]) -> Iterator[tuple[StoredSignature, list[StoredWindow]]]:
        """The stored signatures (with windows) of some documents."""
        for part, marks in in_chunks(ids):
            wins = windows_of(self.db, part)
            for row in self.db.execute(
                f"SELECT id, content_hash, n_shingles, signature, numbers, anchors, samples FROM documents "
                f"WHERE id IN ({marks}) AND signature IS NOT NULL",
                part,
            ):
                yield StoredSignature(*row), wins.get(row[0], [])

    def index_segments(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM index_segments ORDER BY id")]

    def indexed(self) -> dict[int, int]:
        """Indexed document -> the segment that holds its rows."""
        return dict(self.db.execute("SELECT document_id, segment FROM indexed_documents"))

    def unindex(self, ids: list[int]) -> None:
        with self.write():
            self.conn.executemany("DELETE FROM indexed_documents WHERE document_id = ?", [(i,) for i in ids])

    def forget_index(self) -> None:
        with self.write():
            self._forget_index()

    def verified_codes(self, ids: list[int]) -> np.ndarray:
        """The pairs with one of these documents that have a stored verdict, as sorted unique codes
        lo << 32 | hi (only whether a pair was verified is read: a batch's known verdicts as a dict
        of edges took ~250 MB at 1M documents when the index was rebuilt)."""
        parts = [np.empty(0, np.int64)]
        for part, marks in in_chunks(ids):
            rows = self.conn.execute(
                f"SELECT lo << 32 | hi FROM verdicts WHERE lo IN ({marks}) "
                f"UNION ALL SELECT lo << 32 | hi FROM verdicts WHERE hi IN ({marks})",
                part + part,
            )
            parts.append(np.fromiter((c for (c,) in rows), dtype=np.int64))
        return arrays.unique(np.concatenate(parts))

    def copy_edges(self, scope: set[int] | None = None) -> Iterator[tuple]:
        """(a, b, jaccard, containment, kind) of every stored pair verified to be copies (of
        those with a document in `scope`, when given)."""
        cols = "SELECT a, b, jaccard, containment, kind FROM verdicts WHERE kind IS NOT NULL"
        if scope is None:
            yield from self.db.execute(cols)
            return
        for part, marks in in_chunks(sorted(scope)):  # a closed scope (regroup_scope) holds both ends
            yield from self.db.execute(f"{cols} AND lo IN ({marks})", part)

    def copy_edge_pairs(self, scope: set[int]) -> EdgeTable:
        """copy_edges of the pairs with a document in `scope`, as an array (EDGE_DTYPE)."""
        return EdgeTable.of([
            EdgeTable.from_rows(self.db.execute(f"{EDGE_ROWS_SQL} AND lo IN ({marks})", part).fetchall())
            for part, marks in in_chunks(sorted(scope))
        ])  # fmt: skip

    def copy_edge_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) of every stored pair verified to be copies, as two arrays of ids: what slicing a
        whole clustering reads of every pair (a million pages have ~7 million; as tuples with their
        figures, ~1.3 GB)."""
        parts = [np.zeros((0, 2), np.int64)]
        cur = self.db.execute("SELECT a, b FROM verdicts WHERE kind IS NOT NULL")
        while rows := cur.fetchmany(100_000):
            parts.append(np.array(rows, np.int64))
        ends = np.concatenate(parts)
        return ends[:, 0], ends[:, 1]

    def regroup_scope(self, seeds: set[int]) -> RegroupScope:
        """The documents clustering must group again when `seeds` changed: the seeds, closed under
        verified copy pairs, same content and membership of a current cluster. Every other
        current cluster has no document in it and stays as it is (incremental clustering). What
        regrouping needs of them is taken from the rows the closure reads (their content and
        size, their clusters' members, their verified pairs), not read again after it. A nightly
        scope of the 1M crawl (~490,000 documents, 2.8 million pairs) took 17 s to close; the
        pairs' kinds from an index (schema migration 22) and the pairs as one array made it 7.5 s."""
        scope: set[int] = set()
        clusters: set[int] = set()  # the current clusters whose members are in the scope
        hashes: set[str] = set()  # the contents whose documents are in the scope
        docs: list[tuple[int, str, int]] = []  # (id, content hash, shingles) of its documents 'ok'
        members: dict[int, set[tuple[int, bool]]] = {}
        edges: list[np.ndarray] = []  # EDGE_DTYPE
        # Each content's documents read once, from the content index, and the few not 'ok' left out
        # by their own index: a join per document read every same-content document's row (its
        # status) once per member, ~28 times at 1M (35 of a +1 % rescan's 165 s).
        not_ok = {r[0] for r in self.db.execute("SELECT id FROM documents WHERE status != 'ok'")}
        frontier = set(seeds)
        while frontier:
            scope |= frontier
            found: set[int] = set()
            joined: set[int] = set()
            fresh: set[str] = set()
            for part, marks in in_chunks(sorted(frontier)):
                # A pair is read whole from its lower end (each document enters the frontier once),
                # from the other only for the neighbour.
                pairs = EdgeTable.from_rows(self.db.execute(f"{EDGE_ROWS_SQL} AND lo IN ({marks})", part).fetchall())
                edges.append(pairs)
                found.update(np.maximum(pairs["a"], pairs["b"]).tolist())  # their higher ends
                found.update(r[0] for r in self.db.execute(
                    f"SELECT lo FROM verdicts WHERE kind IS NOT NULL AND hi IN ({marks})", part
                ))  # fmt: skip
                # From the index that holds these columns (schema migration 21), not from the rows
                # (~3.5 KB each): 0.5 s for the 490,000 documents of that scope, against 1.3 s.
                sql = (
                    "SELECT id, content_hash, n_shingles, status = 'ok' FROM documents "
                    f"INDEXED BY documents_index_rows WHERE id IN ({marks})"
                )
                for d, h, n, ok in self.db.execute(sql, part):
                    if h is not None:
                        fresh.add(h)
                    if ok:
                        docs.append((d, h, n))
                joined.update(r[0] for r in self.db.execute(
                    "SELECT DISTINCT m.cluster_id FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
                    f"AND c.active = 1 WHERE m.document_id IN ({marks})", part
                ))  # fmt: skip
            found.update(
                d
                for (d,) in self._unseen_rows(fresh, hashes, "SELECT id FROM documents WHERE content_hash IN ({})")
                if d not in not_ok
            )
            # Each cluster's members read once (a join per document read its whole cluster for
            # every member: ~55 times the scope's rows in a crawl of ~55 copies a story).
            sql = "SELECT cluster_id, document_id, role FROM memberships WHERE cluster_id IN ({})"
            for cid, d, role in self._unseen_rows(joined, clusters, sql):
                members.setdefault(cid, set()).add((d, role == "compilation"))
                found.add(d)
            frontier = found - scope
        docs.sort()
        current = {cid: frozenset(m) for cid, m in sorted(members.items())}
        return RegroupScope(scope, *_first_of_contents(docs), current, EdgeTable.of(edges))

    def _unseen_rows(self, keys: set, seen: set, sql: str) -> list[tuple]:
        """The rows of `sql` (a query with `IN ({})`) for the `keys` not in `seen`, which holds
        them all afterwards: each key is read once however often the search meets it."""
        keys = keys - seen
        seen |= keys
        return [r for part, marks in in_chunks(sorted(keys)) for r in self.db.execute(sql.format(marks), part)]

    def regroup_seeds(self) -> set[int]:
        """Documents whose place in the clusters may have changed since the last clustering: new or
        changed ones (not attributed with their current content), and members of current clusters
        that are gone or no longer compared (regroup_scope adds the rest of their clusters)."""
        seeds = self.unattributed()
        # From the documents that are not 'ok' (an index of their own, schema migration 17), not
        # from every membership: CROSS JOIN keeps that order.
        seeds.update(
            r[0]
            for r in self.db.execute(
                "SELECT m.document_id FROM documents d CROSS JOIN memberships m ON m.document_id = d.id "
                "JOIN clusters c ON c.id = m.cluster_id AND c.active = 1 WHERE d.status != 'ok'"
            )
        )
        return seeds

    def clustered_count(self) -> int:
        """Documents that may join clusters: all but those not 'ok' (indexed; counting the 'ok'
        ones read the whole table)."""
        return self.db.execute(
            "SELECT (SELECT count(*) FROM documents) - (SELECT count(*) FROM documents WHERE status != 'ok')"
        ).fetchone()[0]

    def index_batch(self, seg_id: int, rows: int, doc_ids: list[int], verdicts: dict, run_id: int) -> None:
        """A segment written for these documents, and the pairs verified for them: one write."""
        with self.write(small_statements=True):
            self.conn.execute("INSERT INTO index_segments (id, rows, run_id) VALUES (?, ?, ?)", (seg_id, rows, run_id))
            self.conn.executemany(
                "INSERT OR REPLACE INTO indexed_documents (document_id, segment) VALUES (?, ?)",
                [(d, seg_id) for d in doc_ids],
            )
            self._insert_verdicts(verdicts)

    def replace_segments(self, old: list[int], new_id: int, rows: int, run_id: int) -> None:
        """Compaction: the live rows of `old` are now all in segment `new_id`."""
        with self.write():
            self.conn.execute("INSERT INTO index_segments (id, rows, run_id) VALUES (?, ?, ?)", (new_id, rows, run_id))
            marks = ",".join("?" * len(old))
            self.conn.execute(f"UPDATE indexed_documents SET segment = ? WHERE segment IN ({marks})", [new_id, *old])
            self.conn.execute(f"DELETE FROM index_segments WHERE id IN ({marks})", old)

    def site_and_text(self, doc_id: int) -> SiteText | None:
        """A document's words as signed, or its site and text (for aligning a pair word by word)."""
        sql = f"SELECT site, words, {_TEXT_IF_NO_WORDS} FROM documents WHERE id = ?"
        row = self.db.execute(sql, [doc_id]).fetchone()
        return _site_text(*row) if row else None

    def site_pages(self, sites: set[str] | None = None) -> Iterator[SitePage]:
        """Every page in the crawl (on these sites, when given), as its site's tally counts it."""
        sql = "SELECT site, credits, boilerplate, site_names FROM documents WHERE status != 'gone'"
        if sites is None:
            rows = self.db.execute(sql)
        else:
            # `site = ?` (not COALESCE(site, '')) so that the site index is used: a scan per site
            # of the whole table was 10 s at 100k documents.
            rows = (
                r
                for site in sorted(sites)
                for r in self.db.execute(f"{sql} AND (site = ? OR (? = '' AND site IS NULL))", [site, site])
            )
        yield from _tallied_pages(rows)

    def pages_added_to_tallied_sites(self) -> Iterator[SitePage]:
        """site_pages of the pages added, since the tallies were saved, to sites that have one
        (schema migration 17), by id: the order in which a count of their sites meets them."""
        yield from _tallied_pages(
            self.db.execute(
                "SELECT site, credits, boilerplate, site_names FROM documents WHERE status != 'gone' "
                "AND id IN (SELECT document_id FROM site_tally_added) ORDER BY id"
            )
        )

    def stored_sites(self) -> set[str]:
        """The sites of every stored page, gone ones included (read from the site index alone: the
        live sites, `status != 'gone'`, took a read of the whole table, ~0.7 s at 100k)."""
        return {s or "" for (s,) in self.db.execute("SELECT DISTINCT site FROM documents")}

    def site_tallies(self) -> dict[str, str]:
        """Site -> its stored tally (JSON), for the sites none of whose pages changed since it was saved."""
        return dict(self.db.execute("SELECT site, tally FROM site_tallies"))

    def save_site_tallies(self, tallies: dict[str, str]) -> None:
        """Store tallies counted now (every page added since the last save is in them or in a
        tally counted again: none is queued any more)."""
        with self.write():
            self.conn.executemany("INSERT OR REPLACE INTO site_tallies (site, tally) VALUES (?, ?)", tallies.items())
            self.conn.execute("DELETE FROM site_tally_added")

    def documents_on(self, sites: set[str]) -> set[int]:
        out: set[int] = set()
        for site in sites:
            out.update(r[0] for r in self.db.execute("SELECT id FROM documents WHERE site = ?", [site]))
        return out

    def doc_infos(self, ids: list[int]) -> Iterator[DocInfo]:
        """What attribution reads of some documents, each row made into its record at once (the
        SQL gives the defaults of missing values; credits and boilerplate are JSON lists)."""
        sql = (
            "SELECT id, path, COALESCE(site, ''), COALESCE(url, ''), COALESCE(canonical_url, ''), "
            "COALESCE(title, ''), published_at, COALESCE(time_confidence, 0.0), credits, boilerplate, "
            "COALESCE(original_title, ''), fetched_at FROM documents WHERE id IN ({})"
        )
        loads = json.loads
        for part, marks in in_chunks(ids):
            for r in self.db.execute(sql.format(marks), part):
                yield DocInfo(*r[:8], loads(r[8] or "[]"), loads(r[9] or "[]"), *r[10:])


def _tallied_pages(rows) -> Iterator[SitePage]:
    for site, credits, boilerplate, names in rows:
        yield SitePage(
            site or "", json.loads(credits or "[]"), json.loads(boilerplate or "[]"), json.loads(names or "[]")
        )


# The text is read only where the words are not stored (it is the larger of the two).
_TEXT_IF_NO_WORDS = "CASE WHEN words IS NULL THEN text END"


def _site_text(site: str | None, words: bytes | None, text: str | None) -> SiteText:
    return SiteText(site or "", text or "", words)
