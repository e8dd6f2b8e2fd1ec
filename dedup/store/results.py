"""The results: sites and clusters saved by a clustering, and the queries the reports make of them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dedup.errors import NotFoundError


@dataclass(frozen=True)
class ClusterChanges:
    """How one clustering differs from the one before it (the run ledger's cluster columns)."""

    new: int = 0  # clusters whose key did not exist before
    grown: int = 0  # clusters that kept their key and gained members
    merged: int = 0  # clusters that vanished into another one (their members now share a cluster)
    dissolved: int = 0  # clusters that vanished otherwise (members gone or no longer copies)
    originals_changed: int = 0  # clusters that kept their key but name another original

    @classmethod
    def between(cls, before: dict, after: dict) -> ClusterChanges:
        new = sum(1 for k in after if k not in before)
        grown = sum(1 for k, v in after.items() if k in before and len(v[0] - before[k][0]) > 0)
        changed = sum(1 for k, v in after.items() if k in before and v[1:] != before[k][1:])
        home = {d: k for k, v in after.items() for d in v[0]}
        merged = dissolved = 0
        for k, v in before.items():
            if k in after:
                continue
            # Merged: its members now sit in a cluster that also holds documents from elsewhere.
            homes = {home[d] for d in v[0] if d in home}
            if any(len(after[h][0] - v[0]) > 0 for h in homes):
                merged += 1
            else:
                dissolved += 1
        return cls(new, grown, merged, dissolved, changed)


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

    def save_clusters(self, clusters: list[dict], run_id: int, stamp: str = "") -> ClusterChanges:
        """Replace the clustering; a cluster keeps its id while its key (first document) is unchanged.

        Returns what changed against the clustering it replaces (for the run ledger)."""
        with self.write():
            before = self._active_clusters()
            self._set("clusters_stamp", stamp)
            self._set("documents_changed", "0")
            ids = {k: i for k, i in self.db.execute("SELECT key, id FROM clusters")}
            self.db.execute("DELETE FROM memberships")
            self.db.execute("DELETE FROM evidence")
            self.db.execute("UPDATE clusters SET active = 0")
            after: dict[str, tuple[frozenset[int], int | None, str | None]] = {}
            for c in clusters:
                members = c.pop("members")
                evidence = c.pop("evidence", [])
                c["run_id"] = run_id
                c["active"] = 1
                if c["key"] in ids:
                    c["id"] = ids[c["key"]]
                    self.db["clusters"].update(c["id"], c)
                else:
                    c["id"] = self.db["clusters"].insert(c).last_pk
                self.db["memberships"].insert_all({**m, "cluster_id": c["id"]} for m in members)
                self.db["evidence"].insert_all({**e, "cluster_id": c["id"]} for e in evidence)
                after[c["key"]] = (
                    frozenset(m["document_id"] for m in members),
                    c["original_id"],
                    c.get("external_source"),
                )
        return ClusterChanges.between(before, after)

    def _active_clusters(self) -> dict[str, tuple[frozenset[int], int | None, str | None]]:
        """key -> (member ids, original id, external source) of the current clustering."""
        members: dict[int, set[int]] = {}
        for cid, doc_id in self.db.execute(
            "SELECT m.cluster_id, m.document_id FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
            "WHERE c.active = 1"
        ):
            members.setdefault(cid, set()).add(doc_id)
        return {
            key: (frozenset(members.get(cid, ())), orig, ext)
            for cid, key, orig, ext in self.db.execute(
                "SELECT id, key, original_id, external_source FROM clusters WHERE active = 1"
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
        """One row per document: the five stable keys first, then the metadata."""
        member_of: dict[int, list[tuple[int, str]]] = {}
        for doc_id, cid, role in self.db.execute(
            "SELECT m.document_id, m.cluster_id, m.role FROM memberships m "
            "JOIN clusters c ON c.id = m.cluster_id WHERE c.active = 1"
        ):
            member_of.setdefault(doc_id, []).append((cid, role))
        for r in self.db.query(
            "SELECT id, path, site, url, title, published_at, status FROM documents "
            "WHERE status != 'gone' ORDER BY path"
        ):
            ms = sorted(member_of.get(r["id"], []))
            own = [cid for cid, role in ms if role != "compilation"]
            comp = [cid for cid, role in ms if role == "compilation"]
            if own:
                cluster, contains = own[0], comp
                role = next(role for cid, role in ms if cid == own[0])
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
