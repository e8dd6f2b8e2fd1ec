"""The results: sites and clusters saved by a clustering, and the queries the reports make of them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from dedup.errors import NotFoundError
from dedup.store.base import in_chunks
from dedup.store.files import json_text


@dataclass(frozen=True)
class ClusterEvent:
    """One line of a cluster's history: what a clustering did to it."""

    key: int  # the cluster's id
    event: str  # new | grown | shrunk | merged | split | dissolved | original_changed
    other: int | None = None  # merged: the cluster it went into; split: a cluster that took part of it
    detail: str = ""


@dataclass(frozen=True)
class ClusterChanges:
    """How one clustering differs from the one before it (the run ledger's cluster columns)."""

    new: int = 0  # clusters that share no story with the clustering before
    grown: int = 0  # clusters that kept their id and gained members
    merged: int = 0  # clusters that vanished into another one (their members now share a cluster)
    dissolved: int = 0  # clusters that vanished otherwise (members gone or no longer copies)
    originals_changed: int = 0  # clusters that kept their id but name another original
    split: int = 0  # clusters that kept their id while some members went to other clusters
    events: tuple[ClusterEvent, ...] = ()

    @classmethod
    def between(cls, before: dict, after: dict) -> ClusterChanges:
        """before/after: cluster id -> (story member ids, original id, external source)."""
        home = {d: k for k, v in after.items() for d in v[0]}
        events: list[ClusterEvent] = []
        for k, v in after.items():
            if k not in before:
                events.append(ClusterEvent(k, "new", detail=_documents(len(v[0]))))
                continue
            old = before[k]
            gained, lost = v[0] - old[0], old[0] - v[0]
            if gained:
                events.append(ClusterEvent(k, "grown", detail=f"+{_documents(len(gained))}"))
            elif lost:
                events.append(ClusterEvent(k, "shrunk", detail=f"-{_documents(len(lost))}"))
            for other in sorted({home[d] for d in lost if d in home and home[d] != k}):
                events.append(ClusterEvent(k, "split", other, _documents(sum(1 for d in lost if home.get(d) == other))))
            if v[1:] != old[1:]:
                was = f"document {old[1]}" if old[1] else f"external {old[2] or '-'}"
                now = f"document {v[1]}" if v[1] else f"external {v[2] or '-'}"
                events.append(ClusterEvent(k, "original_changed", detail=f"{was} -> {now}"))
        for k, v in before.items():
            if k in after:
                continue
            # Merged: its members now sit in a cluster that also holds documents from elsewhere.
            homes = Counter(home[d] for d in v[0] if d in home)
            into = next((h for h, _ in homes.most_common() if after[h][0] - v[0]), None)
            if into is not None:
                events.append(ClusterEvent(k, "merged", into, f"{homes[into]} of its {_documents(len(v[0]))}"))
            else:
                events.append(ClusterEvent(k, "dissolved", detail=_documents(len(v[0]))))
        count = Counter(e.event for e in events)
        return cls(
            count["new"], count["grown"], count["merged"], count["dissolved"], count["original_changed"],
            len({e.key for e in events if e.event == "split"}), tuple(events),
        )  # fmt: skip


def _documents(n: int) -> str:
    return f"{n} document{'' if n == 1 else 's'}"


def _stories(members: list[dict]) -> frozenset[int]:
    """The members of a cluster that are its own story (compilations belong to several)."""
    return frozenset(m["document_id"] for m in members if m["role"] != "compilation")


def claim_ids(clusters: list[dict], home: dict[int, int], taken: set[int]) -> dict[int, int]:
    """Index of a new cluster -> the id of a current one it keeps (see saving_clusters), larger
    clusters first; `home`: a story member -> its current cluster; `taken`: ids claimed before
    (updated)."""
    claimed: dict[int, int] = {}
    for n in sorted(range(len(clusters)), key=lambda n: (-len(clusters[n]["members"]), clusters[n]["key"])):
        olds = sorted({home[d] for d in _stories(clusters[n]["members"]) if d in home} - taken)
        if olds:
            claimed[n] = olds[0]
            taken.add(olds[0])
    return claimed


class ClusterSaving:
    """A clustering being saved a part at a time (ResultsMixin.saving_clusters). A part is the
    clusters of some whole connected components, and holds every new cluster that shares a story
    with a current cluster it replaces (the pipeline's slices are closed so): then the ids it
    claims and the changes it makes are those the whole clustering saved at once would give."""

    def __init__(self, store, run_id: int, before: dict[int, tuple[frozenset[int], int | None, str | None]]) -> None:
        self.store, self.run_id, self.before = store, run_id, before
        self.home = {d: cid for cid, v in before.items() for d in v[0]}
        self.done: set[int] = set()  # current clusters kept or replaced so far
        self.taken: set[int] = set()
        self.next_id = (store.conn.execute("SELECT max(id) FROM clusters").fetchone()[0] or 0) + 1
        self.changes = ClusterChanges()

    def save(self, clusters: list[dict], keep: set[int] | frozenset[int] = frozenset()) -> None:
        """Part of the new clustering: `clusters` (rows as the pipeline makes them: members and
        evidence inline) replace the current clusters they share stories with; the current
        clusters `keep` stay as they are."""
        self.done.update(k for k in keep if k in self.before)
        olds = {self.home[d] for c in clusters for d in _stories(c["members"]) if d in self.home}
        olds -= self.done
        self._retire(olds)
        self.taken |= self.done  # kept, or replaced by an earlier part
        claimed = claim_ids(clusters, self.home, self.taken)
        updated, inserted, members, evidence = [], [], [], []
        after: dict[int, tuple[frozenset[int], int | None, str | None]] = {}
        for n, c in enumerate(clusters):
            c = dict(c)
            ms, es = c.pop("members"), c.pop("evidence", [])
            c["run_id"], c["active"] = self.run_id, 1
            if n in claimed:
                c["id"] = claimed[n]
                updated.append(c)
            else:
                c["id"], self.next_id = self.next_id, self.next_id + 1
                inserted.append(c)
            members += [{**m, "cluster_id": c["id"]} for m in ms]
            evidence += [{**e, "cluster_id": c["id"]} for e in es]
            after[c["id"]] = (_stories(ms), c["original_id"], c.get("external_source"))
        # Plain executemany over all rows: sqlite-utils' per-cluster insert and update calls were
        # most of attribution's time (4.6 of 11 s at 10,000 documents).
        store = self.store
        store._write_rows("clusters", updated, update_key="id")
        store._write_rows("clusters", inserted)
        store._write_rows("memberships", members)
        store._write_rows("evidence", evidence)
        self._record(ClusterChanges.between({k: self.before[k] for k in olds}, after))
        self.done |= olds

    def finish(self) -> None:
        """The current clusters no part kept or replaced dissolve (none of their stories is in
        a cluster now); every document is attributed with its current content."""
        rest = {k for k in self.before if k not in self.done}
        self._retire(rest)
        self._record(ClusterChanges.between({k: self.before[k] for k in rest}, {}))
        self.done |= rest
        # The rows of `unattributed` (what changed) less the documents not 'ok', read from their
        # partial index (documents_not_ok): a document's own row, looked up for its status, was a
        # page of the documents table read per row (0.2-0.56 s at the end of a 100k first scan,
        # 0.02 s so). A row whose document is gone goes too (deleting a document deletes its row).
        self.store.db.execute(
            "DELETE FROM unattributed WHERE document_id NOT IN (SELECT id FROM documents WHERE status != 'ok')"
        )

    def _retire(self, ids: set[int]) -> None:
        going = [(cid,) for cid in sorted(ids)]
        conn = self.store.conn
        conn.executemany("DELETE FROM memberships WHERE cluster_id = ?", going)
        conn.executemany("DELETE FROM evidence WHERE cluster_id = ?", going)
        # Keys are only names now: retired ones must not block a cluster that takes them.
        conn.executemany(
            "UPDATE clusters SET active = 0, key = 'retired:' || id WHERE id = ? AND key NOT LIKE 'retired:%'", going
        )

    def _record(self, part: ClusterChanges) -> None:
        self.store.conn.executemany(
            "INSERT INTO cluster_history (run_id, cluster_id, event, other_id, detail) VALUES (?, ?, ?, ?, ?)",
            [(self.run_id, e.key, e.event, e.other, e.detail) for e in part.events],
        )
        c = self.changes
        self.changes = ClusterChanges(
            c.new + part.new, c.grown + part.grown, c.merged + part.merged, c.dissolved + part.dissolved,
            c.originals_changed + part.originals_changed, c.split + part.split, c.events + part.events,
        )  # fmt: skip


# The types SQLite takes as they are; a column holding anything else is converted value by value
# (lists and dicts to JSON). Checked per column, in C (map, set): a first scan saves ~340,000
# membership and evidence rows at 100,000 documents, and a test of every value in Python was a
# third of the time to save them.
_PLAIN = frozenset({int, float, str, bytes, type(None), bool})


def _values(rows: list[dict], cols: tuple[str, ...]) -> list[tuple]:
    """The rows' values of `cols`, in that order, lists and dicts as JSON (as sqlite-utils stores them)."""
    values = list(map(itemgetter(*cols), rows)) if len(cols) > 1 else [(r[cols[0]],) for r in rows]
    mixed = [i for i, k in enumerate(cols) if not _PLAIN.issuperset(map(type, map(itemgetter(k), rows)))]
    if not mixed:
        return values
    out = []
    for row in values:
        row = list(row)
        for i in mixed:
            if isinstance(row[i], list | dict):
                row[i] = json_text(row[i])
        out.append(tuple(row))
    return out


class SiteRole(NamedTuple):
    """A site as the last clustering profiled it (the `sites` table)."""

    names: list[str]  # what it is called: a known source's names first, then those its pages give it most
    role: str  # publisher | platform | farm | unknown


class ResultsMixin:
    """Saving and querying results; needs self.db, self.write() and self._set() from Connection."""

    def _write_sites(self, profiles: Iterable) -> None:
        self.db.execute("DELETE FROM sites")
        self.db["sites"].insert_all(
            {"site": p.site, "names": json.dumps(p.names, ensure_ascii=False), "role": p.role,
             "role_reason": p.role_reason, "n_documents": p.n_documents}
            for p in profiles
        )  # fmt: skip

    def save_clusters(
        self,
        clusters: list[dict],
        run_id: int,
        stamp: str = "",
        keep: set[int] | frozenset[int] = frozenset(),
        among: set[int] | None = None,
    ) -> ClusterChanges:
        """The new clustering, in one piece (see saving_clusters)."""
        with self.saving_clusters(run_id, stamp, among) as saving:
            saving.save(clusters, keep)
        return saving.changes

    @contextmanager
    def saving_clusters(
        self, run_id: int, stamp: str = "", among: set[int] | None = None, sites: Iterable | None = None
    ) -> Iterator[ClusterSaving]:
        """A new clustering, saved a part at a time (ClusterSaving.save) in one transaction: the
        active clusters the parts keep stay as they are, and so do those not `among` the ones
        worked out again (when given: the clusters of the documents regrouped); the others are
        replaced by the parts' clusters, keeping cluster ids stable: a new cluster takes the id of
        the oldest current cluster it shares stories with that no larger cluster took first (so a
        cluster keeps its id as it grows, shrinks or loses its first document; of two that merge
        the older id survives; of the parts of a split, the largest keeps it). A cluster that
        shares nothing with the current ones is new. What changed is recorded in cluster_history
        and is the saving's `changes` at the end. `sites`: the site profiles the clusters were
        attributed with, saved in the same transaction (a run stopped before its clusters are saved
        leaves the sites as they were, so the next run sees the same sites changed)."""
        with self.write(small_statements=True):
            if sites is not None:
                self._write_sites(sites)
            saving = ClusterSaving(self, run_id, self._active_clusters(among))
            self._set("clusters_stamp", stamp)
            self._set("documents_changed", "0")
            yield saving
            saving.finish()

    def _write_rows(self, table: str, rows: list[dict], update_key: str | None = None) -> None:
        """Insert rows (or update them by `update_key`), one statement per set of columns; lists and
        dicts stored as JSON, as sqlite-utils stores them."""
        shapes: dict[tuple[str, ...], list[dict]] = {}
        for r in rows:
            shapes.setdefault(tuple(r), []).append(r)
        for cols, group in shapes.items():
            if update_key is None:
                sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            else:
                cols = (*(k for k in cols if k != update_key), update_key)  # the key last, for WHERE
                sql = f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in cols[:-1])} WHERE {update_key} = ?"
            self.conn.executemany(sql, _values(group, cols))

    def history(self, cluster_id: int) -> list[dict]:
        """What the runs did to one cluster, oldest first."""
        return list(
            self.db.query(
                "SELECT h.run_id, r.started_at, h.cluster_id, h.event, h.other_id, h.detail FROM cluster_history h "
                "LEFT JOIN runs r ON r.id = h.run_id WHERE h.cluster_id = ? OR h.other_id = ? ORDER BY h.rowid",
                [cluster_id, cluster_id],
            )
        )

    def active_memberships(self, of: set[int] | None = None) -> dict[int, frozenset[tuple[int, bool]]]:
        """Active cluster -> its members, each with whether it is there as a compilation (of the
        clusters with a member in `of`, when given)."""
        out: dict[int, set[tuple[int, bool]]] = {}
        sql = (
            "SELECT m.cluster_id, m.document_id, m.role FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
            "WHERE c.active = 1"
        )
        if of is None:
            rows = self.db.execute(sql)
        else:
            rows = (r for part, marks in in_chunks(self.clusters_of(of)) for r in self.db.execute(
                f"{sql} AND m.cluster_id IN ({marks})", part
            ))  # fmt: skip
        for cid, doc_id, role in rows:
            out.setdefault(cid, set()).add((doc_id, role == "compilation"))
        return {k: frozenset(v) for k, v in out.items()}

    def clusters_of(self, ids: set[int]) -> list[int]:
        """The active clusters that have one of these documents as a member, sorted."""
        found: set[int] = set()
        for part, marks in in_chunks(sorted(ids)):
            found.update(r[0] for r in self.db.execute(
                "SELECT m.cluster_id FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
                f"WHERE c.active = 1 AND m.document_id IN ({marks})", part
            ))  # fmt: skip
        return sorted(found)

    def unattributed(self) -> set[int]:
        """Documents whose place in the clusters was not worked out with their current content."""
        # CROSS JOIN keeps that order: the rows of `unattributed`, each document found by its id.
        sql = (
            "SELECT u.document_id FROM unattributed u CROSS JOIN documents d ON d.id = u.document_id "
            "WHERE d.status = 'ok'"
        )
        return {r[0] for r in self.db.execute(sql)}

    def site_roles(self) -> dict[str, SiteRole]:
        """Site -> its names and role as the last clustering profiled it."""
        return {
            site: SiteRole(json.loads(names or "[]"), role)
            for site, names, role in self.db.execute("SELECT site, names, role FROM sites")
        }

    def _active_clusters(
        self, among: set[int] | None = None
    ) -> dict[int, tuple[frozenset[int], int | None, str | None]]:
        """id -> (story member ids (compilations left out), original id, external source) of the
        current clustering (of the active clusters `among` these, when given)."""
        members: dict[int, set[int]] = {}
        sql = (
            "SELECT m.cluster_id, m.document_id FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
            "WHERE c.active = 1 AND m.role != 'compilation'"
        )
        heads = "SELECT id, original_id, external_source FROM clusters WHERE active = 1"
        if among is None:
            rows, clusters = self.db.execute(sql), self.db.execute(heads).fetchall()
        else:
            parts = list(in_chunks(sorted(among)))
            rows = (r for part, marks in parts for r in self.db.execute(f"{sql} AND m.cluster_id IN ({marks})", part))
            clusters = [r for part, marks in parts for r in self.db.execute(f"{heads} AND id IN ({marks})", part)]
        for cid, doc_id in rows:
            members.setdefault(cid, set()).add(doc_id)
        return {cid: (frozenset(members.get(cid, ())), orig, ext) for cid, orig, ext in clusters}

    # ------------------------------------------------------------------ queries

    def clusters(self, limit: int | None = None, **filters) -> list[dict]:
        """Active clusters, largest first (see cluster_page for the filters)."""
        return self.cluster_page(limit, **filters)[0]

    def cluster_page(
        self,
        limit: int | None = None,
        *,
        sites: Iterable[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        min_size: int | None = None,
        changed_in_run: int | None = None,
    ) -> tuple[list[dict], int]:
        """(the largest `limit` active clusters that pass the filters, how many pass them).

        sites: a member on one of these hosts; since / until: the story first published at or
        after `since`, before `until` (ISO strings, compared as text: '2023-03-10' <= any time of
        that day); min_size: members; changed_in_run: new, grown, shrunk, split, merged into or
        given another original by that run (cluster_history)."""
        where, args = ["c.active = 1"], []
        if sites is not None:
            hosts = sorted(set(sites))
            where.append(f"EXISTS (SELECT 1 FROM json_each(c.sites) j WHERE j.value IN ({','.join('?' * len(hosts))}))")
            args += hosts
        if since:
            where.append("c.first_published >= ?")
            args.append(since)
        if until:
            where.append("c.first_published < ?")
            args.append(until)
        if min_size:
            where.append("c.size >= ?")
            args.append(int(min_size))
        if changed_in_run is not None:
            where.append(
                "c.id IN (SELECT cluster_id FROM cluster_history WHERE run_id = ? "
                "UNION SELECT other_id FROM cluster_history WHERE run_id = ? AND event = 'merged')"
            )
            args += [changed_in_run, changed_in_run]
        cond = " AND ".join(where)
        total = self.db.execute(f"SELECT count(*) FROM clusters c WHERE {cond}", args).fetchone()[0]
        sql = f"""
            SELECT c.*, d.site AS original_site, d.title AS original_title, d.published_at AS original_time,
                   d.time_confidence AS original_time_confidence, d.path AS original_path,
                   s.names AS original_site_names
            FROM clusters c LEFT JOIN documents d ON d.id = c.original_id LEFT JOIN sites s ON s.site = d.site
            WHERE {cond} ORDER BY c.size DESC, c.id
        """
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._decode_cluster(r) for r in self.db.query(sql, args)], total

    def sites_matching(self, name: str) -> list[str]:
        """The crawl's hosts a user means by `name`: the host itself, a domain it ends with
        (`qcnews.cn` for www.qcnews.cn), or one of the site's names (青川日报)."""
        want = name.strip().lower().removeprefix("www.")
        out = []
        for site, names in self.db.execute("SELECT site, names FROM sites"):
            host = (site or "").lower()
            if (
                host == name.strip().lower()
                or host.removeprefix("www.") == want
                or host.endswith("." + want)
                or name.strip() in json.loads(names or "[]")
            ):
                out.append(site)
        return sorted(out)

    def site_names(self, sites: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Host -> the names the crawl gives it (sites.names: 青川日报, 网易号 ...)."""
        rows = self.db.execute("SELECT site, names FROM sites")
        wanted = None if sites is None else set(sites)
        return {s: json.loads(n or "[]") for s, n in rows if wanted is None or s in wanted}

    def last_run_id(self) -> int | None:
        row = self.db.execute("SELECT max(id) FROM runs").fetchone()
        return row[0] if row else None

    def run_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM runs").fetchone()[0]

    def stored_params(self) -> dict | None:
        """The parameters of the last scan (settings 'params'), as a dict; None before any scan."""
        value = self._get("params")
        return json.loads(value) if value else None

    def cluster(self, cluster_id: int) -> dict:
        rows = [
            r
            for r in self.db.query(
                "SELECT c.*, s.names AS original_site_names, d.site AS original_site FROM clusters c "
                "LEFT JOIN documents d ON d.id = c.original_id LEFT JOIN sites s ON s.site = d.site "
                "WHERE c.id = ? AND c.active = 1",
                [cluster_id],
            )
        ]
        if not rows:
            raise NotFoundError(f"no cluster {cluster_id}: `dedup clusters` lists them")
        c = self._decode_cluster(rows[0])
        c["members"] = list(
            self.db.query(
                """SELECT m.role, m.similarity, m.parent_id, m.score, d.id, d.path, d.site, d.url, d.title,
                          d.published_at, d.time_source, d.time_confidence, d.credits, s.role AS site_role,
                          s.names AS site_names
                   FROM memberships m JOIN documents d ON d.id = m.document_id
                   LEFT JOIN sites s ON s.site = d.site
                   WHERE m.cluster_id = ? ORDER BY coalesce(d.published_at, '9999'), d.path""",
                [cluster_id],
            )
        )
        for m in c["members"]:
            m["credits"] = json.loads(m["credits"] or "[]")
            m["site_names"] = json.loads(m["site_names"] or "[]")
        c["evidence"] = list(
            self.db.query(
                "SELECT document_id, kind, weight, detail FROM evidence WHERE cluster_id = ? "
                "ORDER BY document_id, weight DESC",
                [cluster_id],
            )
        )
        return c

    @staticmethod
    def _decode_cluster(r: dict) -> dict:
        r = dict(r)
        r["reasons"] = json.loads(r.get("reasons") or "[]")
        r["sites"] = json.loads(r.get("sites") or "[]")
        if "original_site_names" in r:
            r["original_site_names"] = json.loads(r["original_site_names"] or "[]")
        # attribute.rank says a tie in words: the confidence of a tie (0.5) is no verdict.
        r["tie"] = r.get("original_id") is not None and any(x.startswith("a tie with") for x in r["reasons"])
        return r

    # ------------------------------------------------------------------ one document

    def find_documents(self, ref: str, crawl_roots: Iterable[str] = ()) -> list[dict]:
        """The documents `ref` names: an id, a stored path (`site/…/page.html`, `feed.jsonl#3`), the
        path of a file on disk under a crawl root that was scanned (every record of it), or the end
        of stored paths (`1000234567.html`); most specific first, so one match is the usual answer."""
        cols = "SELECT id, path, status FROM documents"
        ref = ref.strip()
        if ref.isdigit():
            rows = list(self.db.query(f"{cols} WHERE id = ?", [int(ref)]))
            if rows:
                return rows
        rows = list(self.db.query(f"{cols} WHERE path = ?", [ref]))
        if rows:
            return rows
        for root in crawl_roots:
            rel = _relative_to(ref, root)
            if rel is not None:
                rows = list(self.db.query(f"{cols} WHERE file_path = ? ORDER BY id", [rel]))
                if rows:
                    return rows
        rows = list(self.db.query(f"{cols} WHERE file_path = ? ORDER BY id", [ref]))
        if rows:
            return rows
        tail = ref.lstrip("./")
        if tail:
            pattern = "%/" + tail.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = list(self.db.query(f"{cols} WHERE path LIKE ? ESCAPE '\\' ORDER BY path LIMIT 21", [pattern]))
        return rows

    def crawl_roots(self) -> list[str]:
        """The crawl directories scanned into this database, newest first."""
        return [r[0] for r in self.db.execute("SELECT root FROM runs GROUP BY root ORDER BY max(id) DESC")]

    def document_story(self, doc_id: int) -> dict:
        """One document's place in the clusters: its metadata and site, its role, each cluster it is
        in (with the cluster's verdict), its likely parent and the members that copied it, the
        verified copies of its text with their similarity, and the evidence weighed for it."""
        rows = list(
            self.db.query(
                """SELECT d.id, d.path, d.file_path, d.kind, d.site, d.url, d.canonical_url, d.title,
                          d.original_title, d.published_at, d.time_source, d.time_confidence, d.fetched_at,
                          d.credits, d.status, d.n_shingles, d.content_hash, d.first_run, d.last_run,
                          s.names AS site_names, s.role AS site_role, s.role_reason AS site_role_reason
                   FROM documents d LEFT JOIN sites s ON s.site = d.site WHERE d.id = ?""",
                [doc_id],
            )
        )
        if not rows:
            raise NotFoundError(f"no document {doc_id}: `dedup export` lists them")
        doc = rows[0]
        doc["credits"] = json.loads(doc["credits"] or "[]")
        doc["site_names"] = json.loads(doc["site_names"] or "[]")
        member = list(
            self.db.query(
                "SELECT m.cluster_id, m.role, m.similarity, m.parent_id, m.score FROM memberships m "
                "JOIN clusters c ON c.id = m.cluster_id WHERE c.active = 1 AND m.document_id = ? "
                "ORDER BY m.role = 'compilation', m.cluster_id",
                [doc_id],
            )
        )
        own = [m for m in member if m["role"] != "compilation"]
        carried = [m for m in member if m["role"] == "compilation"]
        if own:
            role = own[0]["role"]
        elif carried:
            role = "compilation"
        else:
            role = "unique" if doc["status"] == "ok" else doc["status"]
        clusters = []
        for m in member:
            row = next(
                iter(
                    self.db.query(
                        """SELECT c.id, c.size, c.n_compilations, c.title, c.original_id, c.external_source,
                                  c.confidence, c.reasons, c.sites, c.first_published, d.site AS original_site,
                                  d.path AS original_path, s.names AS original_site_names
                           FROM clusters c LEFT JOIN documents d ON d.id = c.original_id
                           LEFT JOIN sites s ON s.site = d.site WHERE c.id = ?""",
                        [m["cluster_id"]],
                    )
                )
            )
            row = self._decode_cluster(row)
            row.update(
                role=m["role"], similarity=m["similarity"], score=m["score"], parent=self._doc_brief(m["parent_id"])
            )
            row["copied_by"] = [
                self._doc_brief(r[0])
                for r in self.db.execute(
                    "SELECT m.document_id FROM memberships m JOIN documents d ON d.id = m.document_id "
                    "WHERE m.cluster_id = ? AND m.parent_id = ? AND m.document_id != ? "
                    "ORDER BY coalesce(d.published_at, '9999'), d.path",
                    [m["cluster_id"], doc_id, doc_id],
                )
            ]
            row["evidence"] = list(
                self.db.query(
                    "SELECT kind, weight, detail FROM evidence WHERE cluster_id = ? AND document_id = ? "
                    "ORDER BY weight DESC",
                    [m["cluster_id"], doc_id],
                )
            )
            clusters.append(row)
        doc.update(role=role, clusters=clusters, matches=self._verified_copies(doc))
        return doc

    def _doc_brief(self, doc_id: int | None) -> dict | None:
        if doc_id is None:
            return None
        rows = list(
            self.db.query(
                "SELECT d.id, d.path, d.site, d.title, d.published_at, d.time_confidence, s.names AS site_names "
                "FROM documents d LEFT JOIN sites s ON s.site = d.site WHERE d.id = ?",
                [doc_id],
            )
        )
        if not rows:
            return None
        rows[0]["site_names"] = json.loads(rows[0]["site_names"] or "[]")
        return rows[0]

    def _verified_copies(self, doc: dict) -> list[dict]:
        """The documents verified to be copies of this one's text (the stored verdicts, which are
        kept between texts of distinct content, and the exact copies of either side), most similar
        first: similarity (estimated Jaccard), the share of the smaller text inside the larger, and
        which way it lies (`inside`: this document inside the other; `holds`: the other inside it)."""
        if doc["status"] != "ok" or not doc["content_hash"]:
            return []
        same = [r[0] for r in self.db.execute(
            "SELECT id FROM documents WHERE content_hash = ? AND status = 'ok' ORDER BY id", [doc["content_hash"]]
        )]  # fmt: skip
        if not same:
            return []
        rep = same[0]
        found: dict[int, dict] = {
            d: {"jaccard": 1.0, "containment": 1.0, "way": "exact"} for d in same if d != doc["id"]
        }
        for lo, hi, kind, a, j, c in self.db.execute(
            "SELECT lo, hi, kind, a, jaccard, containment FROM verdicts WHERE (lo = ? OR hi = ?) AND kind IS NOT NULL",
            [rep, rep],
        ):
            other = hi if lo == rep else lo
            # An edge runs from the larger text (a) to the smaller.
            way = "similar" if kind == "similar" else ("holds" if a == rep else "inside")
            h = self.db.execute("SELECT content_hash FROM documents WHERE id = ?", [other]).fetchone()
            group = [other]
            if h and h[0]:
                group = [r[0] for r in self.db.execute(
                    "SELECT id FROM documents WHERE content_hash = ? AND status = 'ok'", [h[0]]
                )] or [other]  # fmt: skip
            for d in group:
                if d != doc["id"]:
                    found[d] = {"jaccard": round(j or 0.0, 3), "containment": round(c or 0.0, 3), "way": way}
        out = []
        for d, m in found.items():
            brief = self._doc_brief(d)
            if brief is None:
                continue
            status = self.db.execute("SELECT status FROM documents WHERE id = ?", [d]).fetchone()[0]
            if status != "ok":
                continue
            clusters = [r[0] for r in self.db.execute(
                "SELECT m.cluster_id FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
                "WHERE c.active = 1 AND m.document_id = ? ORDER BY m.cluster_id", [d]
            )]  # fmt: skip
            out.append({**brief, **m, "clusters": clusters})
        out.sort(key=lambda r: (-max(r["jaccard"], r["containment"]), -r["jaccard"], r["published_at"] or "9999"))
        return out

    def stored_as(self, path: str, content_hash: str) -> int | None:
        """The stored document at `path` when its text is this one (a query of a crawled page)."""
        row = self.db.execute(
            "SELECT id FROM documents WHERE path = ? AND content_hash = ? AND status = 'ok'", [path, content_hash]
        ).fetchone()
        return row[0] if row else None

    def first_with_content(self, content_hash: str) -> int | None:
        """The representative of a content: the first document that has it (store.representatives)."""
        row = self.db.execute(
            "SELECT min(id) FROM documents WHERE content_hash = ? AND status = 'ok'", [content_hash]
        ).fetchone()
        return row[0] if row else None

    def document_briefs(self, ids: Iterable[int]) -> dict[int, dict]:
        """id -> (path, site, its names, title, publish time, status, active clusters with its role)."""
        out: dict[int, dict] = {}
        for part, marks in in_chunks(sorted(set(ids))):
            for r in self.db.query(
                "SELECT d.id, d.path, d.site, d.title, d.published_at, d.time_confidence, d.status, "
                f"s.names AS site_names FROM documents d LEFT JOIN sites s ON s.site = d.site WHERE d.id IN ({marks})",
                part,
            ):
                r["site_names"] = json.loads(r["site_names"] or "[]")
                r["clusters"] = []
                out[r["id"]] = r
            for doc_id, cid, role in self.db.execute(
                "SELECT m.document_id, m.cluster_id, m.role FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
                f"WHERE c.active = 1 AND m.document_id IN ({marks}) ORDER BY m.cluster_id",
                part,
            ):
                out[doc_id]["clusters"].append((cid, role))
        return out

    def cluster_briefs(self, ids: Iterable[int]) -> dict[int, dict]:
        """Active cluster id -> its list row (as `clusters` gives it)."""
        out: dict[int, dict] = {}
        for part, marks in in_chunks(sorted(set(ids))):
            for r in self.db.query(
                "SELECT c.*, d.site AS original_site, d.title AS original_title, d.published_at AS original_time, "
                "d.time_confidence AS original_time_confidence, d.path AS original_path, "
                "s.names AS original_site_names FROM clusters c LEFT JOIN documents d ON d.id = c.original_id "
                f"LEFT JOIN sites s ON s.site = d.site WHERE c.active = 1 AND c.id IN ({marks})",
                part,
            ):
                out[r["id"]] = self._decode_cluster(r)
        return out

    def export_rows(self) -> Iterator[dict]:
        """One row per document: the five stable keys first, then how it sits in its cluster
        (document id, similarity to its closest member, likely parent, the cluster's confidence),
        then its metadata."""
        member_of: dict[int, list[tuple[int, str, float | None, int | None]]] = {}
        confidence: dict[int, float | None] = {}
        for doc_id, cid, role, similarity, parent, conf in self.db.execute(
            "SELECT m.document_id, m.cluster_id, m.role, m.similarity, m.parent_id, c.confidence FROM memberships m "
            "JOIN clusters c ON c.id = m.cluster_id WHERE c.active = 1"
        ):
            member_of.setdefault(doc_id, []).append((cid, role, similarity, parent))
            confidence[cid] = conf
        for r in self.db.query(
            "SELECT id, path, site, url, title, published_at, status FROM documents "
            "WHERE status != 'gone' ORDER BY path"
        ):
            ms = sorted(member_of.get(r["id"], []))
            own = [m for m in ms if m[1] != "compilation"]
            comp = [m[0] for m in ms if m[1] == "compilation"]
            similarity = parent = None
            if own:
                (cluster, role, similarity, parent), contains = own[0], comp
            elif comp:
                cluster, contains, role = comp[0], comp[1:], "compilation"
            else:
                cluster, contains, role = None, [], "unique" if r["status"] == "ok" else r["status"]
            yield {
                "path": r["path"],
                "cluster": cluster,
                # Compared and no copies found: the only page of its story, its own original. A text
                # too short to compare was never compared, and a document an interrupted scan left
                # unsigned is not clustered yet: they claim nothing.
                "original": role in ("original", "unique"),
                "contains": contains,
                "role": role,
                "document_id": r["id"],
                "similarity": similarity,
                "parent_id": parent,
                "confidence": confidence.get(cluster) if cluster is not None else None,
                "site": r["site"],
                "url": r["url"],
                "title": r["title"],
                "published_at": r["published_at"],
            }

    def pending_count(self) -> int:
        sql = "SELECT count(*) FROM documents WHERE status != 'ok' AND status = 'pending'"  # documents_not_ok
        return self.db.execute(sql).fetchone()[0]

    def skipped_rows(self) -> list[dict]:
        return list(self.db.query("SELECT path, reason FROM skipped ORDER BY path"))

    def stats(self) -> dict:
        one = lambda sql, *args: self.db.execute(sql, args).fetchone()[0]  # noqa: E731
        active = (
            "SELECT m.document_id, m.role FROM memberships m JOIN clusters c ON c.id = m.cluster_id WHERE c.active = 1"
        )
        # Documents of a status other than 'ok' counted by their index (schema migration 17): each
        # count of the whole table was ~0.2 s of a 100k rescan.
        not_ok = "SELECT count(*) FROM documents WHERE status != 'ok' AND status = ?"
        return {
            "documents": one("SELECT count(*) FROM documents") - one(not_ok, "gone"),
            "clusters": one("SELECT count(*) FROM clusters WHERE active = 1"),
            "skipped": one("SELECT count(*) FROM skipped"),
            "too_short": one(not_ok, "too_short"),
            "clustered_documents": one(f"SELECT count(DISTINCT document_id) FROM ({active})"),
            "compilations": one(f"SELECT count(DISTINCT document_id) FROM ({active}) WHERE role = 'compilation'"),
        }


def _relative_to(path: str, root: str) -> str | None:
    """`path` (absolute, or relative to the working directory) relative to a crawl root, or None."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except (ValueError, OSError):
        return None
