"""The results: sites and clusters saved by a clustering, and the queries the reports make of them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dedup.errors import NotFoundError


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
                events.append(ClusterEvent(k, "new", detail=f"{len(v[0])} documents"))
                continue
            old = before[k]
            gained, lost = v[0] - old[0], old[0] - v[0]
            if gained:
                events.append(ClusterEvent(k, "grown", detail=f"+{len(gained)} documents"))
            elif lost:
                events.append(ClusterEvent(k, "shrunk", detail=f"-{len(lost)} documents"))
            for other in sorted({home[d] for d in lost if d in home and home[d] != k}):
                events.append(
                    ClusterEvent(k, "split", other, f"{sum(1 for d in lost if home.get(d) == other)} documents")
                )
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
                events.append(ClusterEvent(k, "merged", into, f"{homes[into]} of its {len(v[0])} documents"))
            else:
                events.append(ClusterEvent(k, "dissolved", detail=f"{len(v[0])} documents"))
        count = Counter(e.event for e in events)
        return cls(
            count["new"], count["grown"], count["merged"], count["dissolved"], count["original_changed"],
            len({e.key for e in events if e.event == "split"}), tuple(events),
        )  # fmt: skip


def _stories(members: list[dict]) -> frozenset[int]:
    """The members of a cluster that are its own story (compilations belong to several)."""
    return frozenset(m["document_id"] for m in members if m["role"] != "compilation")


class ResultsMixin:
    """Saving and querying results; needs self.db, self.write() and self._set() from Connection."""

    def save_sites(self, profiles: Iterable) -> None:
        with self.write():
            self.db.execute("DELETE FROM sites")
            self.db["sites"].insert_all(
                {"site": p.site, "names": json.dumps(p.names, ensure_ascii=False), "role": p.role,
                 "role_reason": p.role_reason, "n_documents": p.n_documents}
                for p in profiles
            )  # fmt: skip

    def save_clusters(
        self, clusters: list[dict], run_id: int, stamp: str = "", keep: set[int] | frozenset[int] = frozenset()
    ) -> ClusterChanges:
        """The new clustering: the active clusters in `keep` stay as they are, the others are
        replaced by `clusters`, keeping cluster ids stable: a new cluster takes the id of the
        oldest current cluster it shares stories with that no larger cluster took first (so a
        cluster keeps its id as it grows, shrinks or loses its first document; of two that merge
        the older id survives; of the parts of a split, the largest keeps it). A cluster that shares
        nothing with the current ones is new. What changed is returned and recorded in
        cluster_history."""
        with self.write():
            before = self._active_clusters()
            self._set("clusters_stamp", stamp)
            self._set("documents_changed", "0")
            going = [(cid,) for cid in before if cid not in keep]
            self.conn.executemany("DELETE FROM memberships WHERE cluster_id = ?", going)
            self.conn.executemany("DELETE FROM evidence WHERE cluster_id = ?", going)
            # Keys are only names now: retired ones must not block a cluster that takes them.
            self.conn.executemany(
                "UPDATE clusters SET active = 0, key = 'retired:' || id WHERE id = ? AND key NOT LIKE 'retired:%'",
                going,
            )
            claimed = self._claim_ids(clusters, {k: v for k, v in before.items() if k not in keep})
            after: dict[int, tuple[frozenset[int], int | None, str | None]] = {k: before[k] for k in keep}
            for n, c in enumerate(clusters):
                members = c.pop("members")
                evidence = c.pop("evidence", [])
                c["run_id"] = run_id
                c["active"] = 1
                if n in claimed:
                    c["id"] = claimed[n]
                    self.db["clusters"].update(c["id"], c)
                else:
                    c["id"] = self.db["clusters"].insert(c).last_pk
                self.db["memberships"].insert_all({**m, "cluster_id": c["id"]} for m in members)
                self.db["evidence"].insert_all({**e, "cluster_id": c["id"]} for e in evidence)
                after[c["id"]] = (_stories(members), c["original_id"], c.get("external_source"))
            changes = ClusterChanges.between(before, after)
            self.db.execute("UPDATE documents SET attributed = 1 WHERE attributed IS NULL AND status = 'ok'")
            self.conn.executemany(
                "INSERT INTO cluster_history (run_id, cluster_id, event, other_id, detail) VALUES (?, ?, ?, ?, ?)",
                [(run_id, e.key, e.event, e.other, e.detail) for e in changes.events],
            )
        return changes

    @staticmethod
    def _claim_ids(clusters: list[dict], before: dict) -> dict[int, int]:
        """Index of a new cluster -> the id it keeps (see save_clusters); larger clusters first."""
        home = {d: cid for cid, v in before.items() for d in v[0]}
        taken: set[int] = set()
        claimed: dict[int, int] = {}
        for n in sorted(range(len(clusters)), key=lambda n: (-len(clusters[n]["members"]), clusters[n]["key"])):
            olds = sorted({home[d] for d in _stories(clusters[n]["members"]) if d in home} - taken)
            if olds:
                claimed[n] = olds[0]
                taken.add(olds[0])
        return claimed

    def history(self, cluster_id: int) -> list[dict]:
        """What the runs did to one cluster, oldest first."""
        return list(
            self.db.query(
                "SELECT h.run_id, r.started_at, h.cluster_id, h.event, h.other_id, h.detail FROM cluster_history h "
                "LEFT JOIN runs r ON r.id = h.run_id WHERE h.cluster_id = ? OR h.other_id = ? ORDER BY h.rowid",
                [cluster_id, cluster_id],
            )
        )

    def active_memberships(self) -> dict[int, frozenset[tuple[int, bool]]]:
        """Active cluster -> its members, each with whether it is there as a compilation."""
        out: dict[int, set[tuple[int, bool]]] = {}
        for cid, doc_id, role in self.db.execute(
            "SELECT m.cluster_id, m.document_id, m.role FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
            "WHERE c.active = 1"
        ):
            out.setdefault(cid, set()).add((doc_id, role == "compilation"))
        return {k: frozenset(v) for k, v in out.items()}

    def unattributed(self) -> set[int]:
        """Documents whose place in the clusters was not worked out with their current content."""
        return {r[0] for r in self.db.execute("SELECT id FROM documents WHERE status = 'ok' AND attributed IS NULL")}

    def site_roles(self) -> dict[str, tuple[list[str], str]]:
        """Site -> (names, role) as the last clustering profiled it."""
        return {
            site: (json.loads(names or "[]"), role)
            for site, names, role in self.db.execute("SELECT site, names, role FROM sites")
        }

    def _active_clusters(self) -> dict[int, tuple[frozenset[int], int | None, str | None]]:
        """id -> (story member ids (compilations left out), original id, external source) of the
        current clustering."""
        members: dict[int, set[int]] = {}
        for cid, doc_id in self.db.execute(
            "SELECT m.cluster_id, m.document_id FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
            "WHERE c.active = 1 AND m.role != 'compilation'"
        ):
            members.setdefault(cid, set()).add(doc_id)
        return {
            cid: (frozenset(members.get(cid, ())), orig, ext)
            for cid, orig, ext in self.db.execute(
                "SELECT id, original_id, external_source FROM clusters WHERE active = 1"
            )
        }

    # ------------------------------------------------------------------ queries

    def clusters(self, limit: int | None = None) -> list[dict]:
        sql = """
            SELECT c.*, d.site AS original_site, d.title AS original_title, d.published_at AS original_time,
                   d.path AS original_path
            FROM clusters c LEFT JOIN documents d ON d.id = c.original_id
            WHERE c.active = 1 ORDER BY c.size DESC, c.id
        """
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._decode_cluster(r) for r in self.db.query(sql)]

    def cluster(self, cluster_id: int) -> dict:
        rows = [r for r in self.db.query("SELECT * FROM clusters WHERE id = ? AND active = 1", [cluster_id])]
        if not rows:
            raise NotFoundError(f"no cluster {cluster_id}: `dedup clusters` lists them")
        c = self._decode_cluster(rows[0])
        c["members"] = list(
            self.db.query(
                """SELECT m.role, m.similarity, m.parent_id, m.score, d.id, d.path, d.site, d.url, d.title,
                          d.published_at, d.time_source, d.time_confidence, d.credits, s.role AS site_role
                   FROM memberships m JOIN documents d ON d.id = m.document_id
                   LEFT JOIN sites s ON s.site = d.site
                   WHERE m.cluster_id = ? ORDER BY coalesce(d.published_at, '9999'), d.path""",
                [cluster_id],
            )
        )
        for m in c["members"]:
            m["credits"] = json.loads(m["credits"] or "[]")
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
        return r

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
                # No copies: its own original; a document an interrupted scan left unsigned is not
                # clustered yet and claims nothing.
                "original": role in ("original", "unique", "too_short"),
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
        return self.db.execute("SELECT count(*) FROM documents WHERE status = 'pending'").fetchone()[0]

    def skipped_rows(self) -> list[dict]:
        return list(self.db.query("SELECT path, reason FROM skipped ORDER BY path"))

    def stats(self) -> dict:
        one = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        active = (
            "SELECT m.document_id, m.role FROM memberships m JOIN clusters c ON c.id = m.cluster_id WHERE c.active = 1"
        )
        return {
            "documents": one("SELECT count(*) FROM documents WHERE status != 'gone'"),
            "clusters": one("SELECT count(*) FROM clusters WHERE active = 1"),
            "skipped": one("SELECT count(*) FROM skipped"),
            "too_short": one("SELECT count(*) FROM documents WHERE status = 'too_short'"),
            "clustered_documents": one(f"SELECT count(DISTINCT document_id) FROM ({active})"),
            "compilations": one(f"SELECT count(DISTINCT document_id) FROM ({active}) WHERE role = 'compilation'"),
        }
