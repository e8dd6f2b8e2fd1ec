"""The only sqlite-utils user: schema migrations, batched atomic writes and the queries.

Tables (browse them with `sqlite3` or Datasette):
  runs          one row per scan: root, parameters, counts, status
  settings      key/value: the signature fingerprint the stored signatures were made with
  files         every file seen: size, mtime, sha1, status (ok | skipped | unsupported | gone)
  documents     one row per article (a .jsonl line is one): metadata, text, hashes, signature
  skipped       files and records that could not be read, with the reason
  sites         each site's names and role (publisher | platform | farm), and why
  clusters      one row per story: size, probable original, confidence, reasons
  memberships   document x cluster: role (original | copy | compilation), similarity, parent
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import sqlite_utils

from dedup.dbfile import APPLICATION_ID, connect, identify, open_for_reading
from dedup.errors import NotFoundError, StoreError
from dedup.models import Document, Params, Skipped
from dedup.normalize import learnable_lines

MIGRATIONS: list[str] = [
    # 1: the first schema. Never edit a released migration: add a new one.
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        root TEXT NOT NULL,
        params TEXT NOT NULL,
        params_fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        path TEXT PRIMARY KEY,
        kind TEXT,
        size INTEGER,
        mtime REAL,
        sha1 TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        run_id INTEGER REFERENCES runs(id)
    );
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        file_path TEXT NOT NULL REFERENCES files(path),
        kind TEXT NOT NULL,
        site TEXT,
        url TEXT,
        canonical_url TEXT,
        title TEXT,
        published_at TEXT,
        time_source TEXT,
        time_confidence REAL,
        credits TEXT,
        site_names TEXT,
        encoding TEXT,
        text TEXT,
        content_hash TEXT,
        n_tokens INTEGER,
        n_shingles INTEGER,
        numbers TEXT,
        boilerplate TEXT,
        signature BLOB,
        signature_fingerprint TEXT,
        status TEXT NOT NULL,
        first_run INTEGER REFERENCES runs(id),
        last_run INTEGER REFERENCES runs(id)
    );
    CREATE INDEX documents_file ON documents(file_path);
    CREATE INDEX documents_hash ON documents(content_hash);
    CREATE INDEX documents_site ON documents(site);
    CREATE TABLE skipped (
        path TEXT PRIMARY KEY,
        file_path TEXT NOT NULL,
        reason TEXT NOT NULL,
        run_id INTEGER REFERENCES runs(id)
    );
    CREATE TABLE sites (
        site TEXT PRIMARY KEY,
        names TEXT,
        role TEXT NOT NULL,
        role_reason TEXT,
        n_documents INTEGER
    );
    CREATE TABLE clusters (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        n_compilations INTEGER NOT NULL,
        title TEXT,
        original_id INTEGER REFERENCES documents(id),
        external_source TEXT,
        confidence REAL,
        reasons TEXT,
        first_published TEXT,
        sites TEXT,
        run_id INTEGER REFERENCES runs(id),
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE memberships (
        cluster_id INTEGER NOT NULL REFERENCES clusters(id),
        document_id INTEGER NOT NULL REFERENCES documents(id),
        role TEXT NOT NULL,
        similarity REAL,
        parent_id INTEGER REFERENCES documents(id),
        PRIMARY KEY (cluster_id, document_id)
    );
    CREATE INDEX memberships_document ON memberships(document_id);
    """,
    # 2: the evidence behind each attribution, with its weight; each member's total score.
    """
    CREATE TABLE evidence (
        cluster_id INTEGER NOT NULL REFERENCES clusters(id),
        document_id INTEGER NOT NULL REFERENCES documents(id),
        kind TEXT NOT NULL,
        weight REAL NOT NULL,
        detail TEXT
    );
    CREATE INDEX evidence_cluster ON evidence(cluster_id, document_id);
    ALTER TABLE memberships ADD COLUMN score REAL;
    """,
    # 3: boilerplate learned from the crawl: short lines counted per site, and the learned ones.
    """
    CREATE TABLE site_lines (
        site TEXT NOT NULL,
        line TEXT NOT NULL,
        n_docs INTEGER NOT NULL,
        PRIMARY KEY (site, line)
    ) WITHOUT ROWID;
    CREATE TABLE learned_boilerplate (
        site TEXT NOT NULL,
        line TEXT NOT NULL,
        n_docs INTEGER NOT NULL,
        share REAL NOT NULL,
        PRIMARY KEY (site, line)
    );
    """,
    # 4: (context, word) hashes of the names and numbers of each text (template-sibling check).
    """
    ALTER TABLE documents ADD COLUMN anchors TEXT;
    """,
    # 5: signatures of overlapping windows of long texts (short texts inside long ones).
    """
    CREATE TABLE windows (
        document_id INTEGER NOT NULL REFERENCES documents(id),
        seq INTEGER NOT NULL,
        n_shingles INTEGER NOT NULL,
        signature BLOB NOT NULL,
        PRIMARY KEY (document_id, seq)
    ) WITHOUT ROWID;
    """,
    # 6: when a crawler fetched the page (WARC-Date), kept apart from the publish time; the title
    # a 原标题 line gives.
    """
    ALTER TABLE documents ADD COLUMN fetched_at TEXT;
    ALTER TABLE documents ADD COLUMN original_title TEXT;
    """,
    # 7: the raw bytes of a file name that is not UTF-8 (`path` shows them as \xNN escapes).
    """
    ALTER TABLE files ADD COLUMN name_bytes BLOB;
    """,
]


class FileState(NamedTuple):
    """What the store knows of a file from the last scan that read it."""

    size: int | None
    mtime: float | None
    sha1: str | None
    status: str  # ok | skipped | unreadable | unsupported | gone


@dataclass
class FileOutcome:
    """One file read by a scan: what replaces the file's stored documents and skips."""

    path: str
    kind: str
    size: int
    mtime: float
    sha1: str
    status: str  # ok (has documents) | skipped (nothing readable in it)
    reason: str | None
    documents: list[Document]
    skipped: list[Skipped]
    name_bytes: bytes | None = None


@dataclass(frozen=True)
class FileProblem:
    """A file or folder that could not be read at all this time (kept, retried next scan)."""

    path: str
    reason: str
    is_dir: bool = False
    name_bytes: bytes | None = None


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


DOC_COLUMNS = (
    "path", "file_path", "kind", "site", "url", "canonical_url", "title", "published_at",
    "time_source", "time_confidence", "fetched_at", "encoding", "text", "content_hash", "n_tokens",
    "n_shingles", "status",
)  # fmt: skip


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Store:
    """A dedup database."""

    def __init__(self, path: Path | str, readonly: bool = False) -> None:
        """Open a dedup database: for writing (made if missing; scans only) or read-only.

        Another application's file is refused before anything is written (dbfile.identify); a
        read-only open never migrates, stamps or switches the journal mode."""
        path = Path(path)
        self.path = path
        self.readonly = readonly
        if readonly:
            self.conn = open_for_reading(path, len(MIGRATIONS))
            self.db = sqlite_utils.Database(self.conn)
            return
        ident = identify(path)
        self.conn = connect(path, writable=True)
        self.db = sqlite_utils.Database(self.conn)
        try:
            if not ident.stamped:
                self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"cannot open database {path}: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic write; BEGIN IMMEDIATE so a concurrent writer fails early, not mid-way."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write to {self.path}: {exc} (is another dedup scan running on it?)") from None
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"database schema version {version} is newer than this dedup ({len(MIGRATIONS)})")
        for n in range(version, len(MIGRATIONS)):
            # executescript commits first and runs the whole script, version bump included, as one
            # transaction: a crash leaves the schema either before or after the migration.
            self.conn.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[n]}; PRAGMA user_version = {n + 1}; COMMIT;")

    # ------------------------------------------------------------------ runs and settings

    def stamp(self, key: str) -> str | None:
        """What the stored results of one stage were computed with (see pipeline.Stamps)."""
        return self._get(key)

    def set_stamp(self, key: str, value: str) -> None:
        with self.write():
            self._set(key, value)

    def start_run(self, root: str, params: Params) -> int:
        """A new row in the run ledger. Called with the scan lock held, so a run still 'running'
        was killed (SIGKILL, power loss): it is marked so."""
        with self.write():
            self.db.execute("UPDATE runs SET status = 'killed' WHERE status = 'running'")
            self.db["settings"].upsert({"key": "params", "value": json.dumps(params.to_dict())}, pk="key")
            cur = self.db.execute(
                "INSERT INTO runs (started_at, root, params, params_fingerprint, status) "
                "VALUES (?, ?, ?, ?, 'running')",
                [now(), root, json.dumps(params.to_dict()), params.fingerprint],
            )
        return cur.lastrowid

    def finish_run(self, run_id: int, summary: dict, status: str = "done") -> None:
        with self.write():
            self.db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                [now(), status, json.dumps(summary, ensure_ascii=False), run_id],
            )

    def runs(self, limit: int | None = None) -> list[dict]:
        """The run ledger, newest first: times, status and the summary's counts."""
        sql = "SELECT id, started_at, finished_at, root, status, summary FROM runs ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        out = []
        for r in self.db.query(sql):
            r["summary"] = json.loads(r["summary"] or "{}")
            out.append(r)
        return out

    def last_run(self) -> dict | None:
        rows = self.runs(1)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ files and documents

    def file_states(self) -> dict[str, FileState]:
        """path -> what the store knows of every file seen before."""
        return {
            r[0]: FileState(r[1], r[2], r[3], r[4])
            for r in self.db.execute("SELECT path, size, mtime, sha1, status FROM files")
        }

    def mark_unsupported(self, paths: list[str], run_id: int) -> None:
        """Record files no reader handles (images, scripts...): seen, not read."""
        with self.write():
            self.conn.executemany(
                "INSERT INTO files (path, status, reason, run_id) VALUES (?, 'unsupported', ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET status = excluded.status, reason = excluded.reason, "
                "run_id = excluded.run_id",
                [(p, f"unsupported file type {os.path.splitext(p)[1] or '(none)'}", run_id) for p in paths],
            )

    def mark_unreadable(self, problems: list[FileProblem], run_id: int) -> None:
        """Files (or folders) that could not be read this time: a `skipped` row each, and the file
        keeps its stored documents and its last good size/mtime/sha1, so the next scan reads it
        again (status 'unreadable' is never taken as unchanged)."""
        if not problems:
            return
        with self.write():
            for p in problems:
                if not p.is_dir:
                    self.conn.execute(
                        "INSERT INTO files (path, status, reason, run_id, name_bytes) "
                        "VALUES (?, 'unreadable', ?, ?, ?) "
                        "ON CONFLICT (path) DO UPDATE SET status = excluded.status, reason = excluded.reason, "
                        "run_id = excluded.run_id",
                        (p.path, p.reason, run_id, p.name_bytes),
                    )
                key = p.path.rstrip("/") + "/" if p.is_dir else p.path  # a folder's row ends in '/'
                self.conn.execute(
                    "INSERT OR REPLACE INTO skipped (path, file_path, reason, run_id) VALUES (?, ?, ?, ?)",
                    (key, key, p.reason, run_id),
                )

    def clear_folder_problems(self) -> None:
        """Forget last run's unlistable folders (rows ending in '/'); this run reports its own."""
        with self.write():
            self.db.execute("DELETE FROM skipped WHERE path = file_path AND path LIKE '%/'")

    def touch_files(self, paths: Iterable[str], run_id: int, mtime: float | None = None) -> None:
        """Mark unchanged files and their documents as seen by this run (and a new mtime if given)."""
        paths = list(paths)
        with self.write():
            for i in range(0, len(paths), 500):
                chunk = paths[i : i + 500]
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"UPDATE files SET run_id = ? WHERE path IN ({marks})", [run_id, *chunk])
                self.db.execute(f"UPDATE documents SET last_run = ? WHERE file_path IN ({marks})", [run_id, *chunk])
                if mtime is not None:
                    self.db.execute(f"UPDATE files SET mtime = ? WHERE path IN ({marks})", [mtime, *chunk])

    def save_files(self, batch: list[FileOutcome], run_id: int, sig_fp: str) -> None:
        """Replace what each file of a batch holds, all in one transaction (a crash keeps all or none).

        Plain SQL with executemany: per-row sqlite-utils calls were most of the scan's time here."""
        with self.write():
            for f in batch:
                self._save_file(f, run_id, sig_fp)

    def _set(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def clustering_is_current(self, stamp: str) -> bool:
        """True when no document changed since clusters were computed with this stamp."""
        return self._get("clusters_stamp") == stamp and self._get("documents_changed") == "0"

    def _save_file(self, f: FileOutcome, run_id: int, sig_fp: str) -> None:
        c = self.conn
        path, docs, skipped = f.path, f.documents, f.skipped
        self._set("documents_changed", "1")
        c.execute(
            "INSERT INTO files (path, kind, size, mtime, sha1, status, reason, run_id, name_bytes) "
            "VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (path) DO UPDATE SET kind=excluded.kind, size=excluded.size, mtime=excluded.mtime, "
            "sha1=excluded.sha1, status=excluded.status, reason=excluded.reason, run_id=excluded.run_id, "
            "name_bytes=excluded.name_bytes",
            (path, f.kind, f.size, f.mtime, f.sha1, f.status, f.reason, run_id, f.name_bytes),
        )
        keep = {d.path for d in docs}
        old = c.execute("SELECT id, path, site, text, status FROM documents WHERE file_path = ?", (path,)).fetchall()
        for doc_id, p, site, text, st in old:
            if st != "gone":
                self._count_lines(site, text, -1)
            if p not in keep:
                c.execute("DELETE FROM memberships WHERE document_id = ?", (doc_id,))
                c.execute("DELETE FROM evidence WHERE document_id = ?", (doc_id,))
                c.execute("DELETE FROM windows WHERE document_id = ?", (doc_id,))
                c.execute("UPDATE memberships SET parent_id = NULL WHERE parent_id = ?", (doc_id,))
                c.execute("UPDATE clusters SET original_id = NULL WHERE original_id = ?", (doc_id,))
                c.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        for d in docs:
            self._count_lines(d.site, d.text, +1, d.lines or None)
        c.execute("DELETE FROM skipped WHERE file_path = ?", (path,))
        cols = [*DOC_COLUMNS, "credits", "site_names", "numbers", "anchors", "boilerplate", "signature",
                "signature_fingerprint", "first_run", "last_run"]  # fmt: skip
        rows = [
            (
                *(getattr(d, k) for k in DOC_COLUMNS),
                json.dumps(d.credits, ensure_ascii=False),
                json.dumps(d.site_names, ensure_ascii=False),
                json.dumps(d.numbers),
                json.dumps(d.anchors),
                json.dumps(d.boilerplate, ensure_ascii=False),
                d.signature or None,
                sig_fp,
                run_id,
                run_id,
            )
            for d in docs
        ]
        # Upsert on the path: a document that was there keeps its id (and its place in clusters).
        updates = ", ".join(f"{k}=excluded.{k}" for k in cols if k not in ("path", "first_run"))
        c.executemany(
            f"INSERT INTO documents ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT (path) DO UPDATE SET {updates}",
            rows,
        )
        c.executemany(
            "INSERT OR REPLACE INTO skipped (path, file_path, reason, run_id) VALUES (?, ?, ?, ?)",
            [(s.path, path, s.reason, run_id) for s in skipped],
        )

    def _count_lines(self, site: str, text: str, delta: int, lines: set[str] | None = None) -> None:
        """Add `delta` to the page counts of the short lines of a text (`lines` when known)."""
        rows = [(site or "", line, delta) for line in (lines if lines is not None else learnable_lines(text or ""))]
        self.conn.executemany(
            "INSERT INTO site_lines (site, line, n_docs) VALUES (?, ?, ?) "
            "ON CONFLICT (site, line) DO UPDATE SET n_docs = n_docs + excluded.n_docs",
            rows,
        )

    def learn_boilerplate(self, sites: Iterable[str], min_docs: int, min_share: float) -> dict[str, set[str]]:
        """Recompute the learned lines of these sites; returns site -> lines that changed."""
        changed: dict[str, set[str]] = {}
        with self.write():
            for site in set(sites):
                n = self.db.execute(
                    "SELECT count(*) FROM documents WHERE site = ? AND status != 'gone'", [site]
                ).fetchone()[0]
                need = max(min_docs, min_share * n)
                new = {
                    line: c
                    for line, c in self.db.execute(
                        "SELECT line, n_docs FROM site_lines WHERE site = ? AND n_docs >= ?", [site, need]
                    )
                }
                old = {
                    line for (line,) in self.db.execute("SELECT line FROM learned_boilerplate WHERE site = ?", [site])
                }
                if set(new) != old:
                    changed[site] = set(new) ^ old
                self.db.execute("DELETE FROM learned_boilerplate WHERE site = ?", [site])
                self.db["learned_boilerplate"].insert_all(
                    {"site": site, "line": line, "n_docs": c, "share": round(c / max(n, 1), 3)}
                    for line, c in new.items()
                )
                self.db.execute("DELETE FROM site_lines WHERE site = ? AND n_docs <= 0", [site])
        return changed

    def learned(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for site, line in self.db.execute("SELECT site, line FROM learned_boilerplate"):
            out.setdefault(site, set()).add(line)
        return {k: frozenset(v) for k, v in out.items()}

    def learned_rows(self, site: str | None = None) -> list[dict]:
        sql = "SELECT site, n_docs, share, line FROM learned_boilerplate"
        args: list = []
        if site:
            sql += " WHERE site = ?"
            args.append(site)
        return list(self.db.query(sql + " ORDER BY site, n_docs DESC, line", args))

    def docs_to_sign(self, changed: dict[str, set[str]]) -> Iterator[dict]:
        """Documents without a signature, and those of sites whose learned lines they carry changed."""
        cols = "id, path, file_path, kind, site, text, credits, status"
        for r in self.db.query(f"SELECT {cols} FROM documents WHERE status = 'pending'"):
            yield r
        for site, lines in changed.items():
            for r in self.db.query(
                f"SELECT {cols} FROM documents WHERE site = ? AND status IN ('ok', 'too_short')", [site]
            ):
                if learnable_lines(r["text"] or "") & lines:
                    yield r

    def save_signatures(self, docs: list[Document], ids: list[int]) -> None:
        rows = [
            (
                json.dumps(d.credits, ensure_ascii=False),
                d.original_title or None,
                json.dumps(d.boilerplate, ensure_ascii=False),
                json.dumps(d.numbers),
                json.dumps(d.anchors),
                d.content_hash,
                d.n_tokens,
                d.n_shingles,
                d.signature or None,
                d.status,
                doc_id,
            )
            for doc_id, d in zip(ids, docs, strict=True)
        ]
        with self.write():
            self._set("documents_changed", "1")
            self.conn.executemany("DELETE FROM windows WHERE document_id = ?", [(i,) for i in ids])
            self.conn.executemany(
                "INSERT INTO windows (document_id, seq, n_shingles, signature) VALUES (?, ?, ?, ?)",
                [(i, k, n, blob) for i, d in zip(ids, docs, strict=True) for k, (n, blob) in enumerate(d.windows)],
            )
            self.conn.executemany(
                "DELETE FROM skipped WHERE path = (SELECT path FROM documents WHERE id = ?)", [(i,) for i in ids]
            )
            self.conn.executemany(
                "UPDATE documents SET credits=?, original_title=?, boilerplate=?, numbers=?, anchors=?, "
                "content_hash=?, n_tokens=?, n_shingles=?, signature=?, status=? WHERE id = ?",
                rows,
            )

    def sites_with_pending(self) -> set[str]:
        return {s for (s,) in self.db.execute("SELECT DISTINCT site FROM documents WHERE status = 'pending'")}

    def sites_of_file(self, path: str) -> set[str]:
        return {s for (s,) in self.db.execute("SELECT DISTINCT site FROM documents WHERE file_path = ?", [path])}

    def skip_document(self, doc_id: int, skipped: Skipped) -> None:
        with self.write():
            self._set("documents_changed", "1")
            self.db.execute("UPDATE documents SET status = 'skipped', signature = NULL WHERE id = ?", [doc_id])
            file_path = self.db.execute("SELECT file_path FROM documents WHERE id = ?", [doc_id]).fetchone()[0]
            self.db["skipped"].upsert(
                {"path": skipped.path, "file_path": file_path, "reason": skipped.reason}, pk="path"
            )

    def live_files(self) -> list[str]:
        """Paths of the stored files that are not gone (what a scan expects to find again)."""
        return [p for (p,) in self.db.execute("SELECT path FROM files WHERE status != 'gone'")]

    def mark_gone(self, gone: list[str], run_id: int) -> set[str]:
        """Files no longer under the root: their documents leave the clustering (kept, marked).

        Returns the sites that lost documents."""
        sites: set[str] = set()
        with self.write():
            if gone:
                self._set("documents_changed", "1")
            for p in gone:
                for site, text in self.db.execute(
                    "SELECT site, text FROM documents WHERE file_path = ? AND status != 'gone'", [p]
                ).fetchall():
                    self._count_lines(site, text, -1)
                    sites.add(site)
                self.db.execute("UPDATE files SET status = 'gone', run_id = ? WHERE path = ?", [run_id, p])
                self.db.execute("UPDATE documents SET status = 'gone' WHERE file_path = ?", [p])
                self.db.execute("DELETE FROM skipped WHERE file_path = ?", [p])
        return sites

    def resign_all(self) -> int:
        """Every signed document back to 'pending' (what shapes signatures changed); returns how many."""
        with self.write():
            self._set("documents_changed", "1")
            cur = self.db.execute(
                "UPDATE documents SET status = 'pending' WHERE status IN ('ok', 'too_short', 'skipped')"
            )
        return cur.rowcount

    def forget_file_hashes(self) -> int:
        """Make every stored file look changed (extraction changed: all must be read again)."""
        with self.write():
            cur = self.db.execute("UPDATE files SET size = NULL, mtime = NULL, sha1 = NULL WHERE status != 'gone'")
        return cur.rowcount

    def all_sites(self) -> set[str]:
        return {s or "" for (s,) in self.db.execute("SELECT DISTINCT site FROM documents WHERE status != 'gone'")}

    def clusterable(self) -> Iterator[tuple]:
        """(id, content_hash, n_shingles, signature, numbers, anchors) of documents that may join clusters."""
        yield from self.db.execute(
            "SELECT id, content_hash, n_shingles, signature, numbers, anchors FROM documents "
            "WHERE status = 'ok' ORDER BY id"
        )

    def windows(self) -> Iterator[tuple[int, int, bytes]]:
        """(document id, shingles, signature) of the windows of documents that may join clusters."""
        yield from self.db.execute(
            "SELECT w.document_id, w.n_shingles, w.signature FROM windows w "
            "JOIN documents d ON d.id = w.document_id WHERE d.status = 'ok' ORDER BY w.document_id, w.seq"
        )

    def site_and_text(self, doc_id: int) -> tuple[str, str] | None:
        """A document's site and its text as published (for aligning a pair word by word)."""
        row = self.db.execute("SELECT site, text FROM documents WHERE id = ?", [doc_id]).fetchone()
        return (row[0] or "", row[1] or "") if row else None

    def doc_infos(self) -> Iterator[dict]:
        cols = (
            "id, path, site, url, canonical_url, title, published_at, time_confidence, credits, site_names, "
            "boilerplate, original_title, fetched_at"
        )
        rows = self.db.execute(f"SELECT {cols} FROM documents WHERE status != 'gone'")
        names = [c.strip() for c in cols.split(",")]
        for r in rows:
            d = dict(zip(names, r, strict=True))
            for k in ("credits", "site_names", "boilerplate"):
                d[k] = json.loads(d[k] or "[]")
            yield d

    # ------------------------------------------------------------------ clusters

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
