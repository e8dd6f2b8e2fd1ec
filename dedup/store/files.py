"""What reading files writes: the files, their documents and skips, and the short-line counts."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from dedup.errors import StoreError
from dedup.models import Document, Skipped
from dedup.normalize import learnable_lines
from dedup.store.base import in_chunks

# JSON as sqlite-utils stores it (ensure_ascii off), by one encoder made once: json.dumps given any
# argument makes an encoder per call. Most lists saved with a read document are empty (its numbers
# and boilerplate come with its signature). 20,000 documents' rows: 1.07 -> ~0.5 s (cProfile).
_encode = json.JSONEncoder(ensure_ascii=False).encode


def json_text(value) -> str:
    """json.dumps(value, ensure_ascii=False), faster."""
    return "[]" if value == [] else _encode(value)


def pack_anchors(anchors: list[tuple[int, int]]) -> bytes:
    """A text's (context, word) hashes (shingle.anchors) as stored: the distinct codes
    context << 32 | word, sorted, as native uint64 (cluster.anchor_codes reads them). Parsing them
    back from JSON, ~660,000 json.loads a first scan at 100,000 documents, was ~4 s of clustering."""
    return array("Q", sorted({(ctx << 32) | word for ctx, word in anchors})).tobytes()


def unpack_anchors(blob: bytes) -> list[tuple[int, int]]:
    """pack_anchors' codes back as (context, word) hashes (packing them again gives the same bytes)."""
    return [(code >> 32, code & 0xFFFFFFFF) for code in array("Q", blob)]


class FileState(NamedTuple):
    """What the store knows of a file from the last scan that read it, as a scan compares it with
    what discovery finds (its SHA-1 is asked for apart, for the files to read: `file_hashes`)."""

    size: int | None
    mtime: float | None
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


DOC_COLUMNS = (
    "path", "file_path", "kind", "site", "url", "canonical_url", "title", "published_at",
    "time_source", "time_confidence", "fetched_at", "encoding", "text", "content_hash", "n_tokens",
    "n_shingles", "status",
)  # fmt: skip


# The keys of site_lines_once (schema migrations 18 and 24). A scan saves the files it reads a
# batch at a time, mostly the pages of a few sites (a crawl is walked a folder at a time, and
# crawlers keep a host's pages in a folder of its own), and looks up and inserts the short lines
# of each batch. Keys hashed whole from (site, line) fell all over the table, so each batch read
# and dirtied most of its pages: the line counts of the generated 100k crawl's first scan,
# replayed (51 batches, ~534,000 keys), made 369,117 reads and 206,859 writes. A key that opens
# with SITE_KEY_BITS of a hash of the site keeps a site's lines together: 3,801 reads and 22,885
# writes, 3.7-3.9 -> 2.9 CPU-s (benchmarks/RESULTS.md, "Short lines keyed by their site"). The line
# has the other 48 bits: two of one site's lines share a key with a chance of 2**-48 a pair
# (~0.002 expected among the million short lines of a site of 200,000 pages). Such a pair counts
# its second line as seen on two pages: one page more for a line that is learned on five pages and
# a fifth of its site's (ingest.LEARN_MIN_DOCS, LEARN_MIN_SHARE).
SITE_KEY_BITS = 16
_LINE_BITS = 64 - SITE_KEY_BITS


@lru_cache(maxsize=4096)
def _site_key(site: str) -> int:
    digest = hashlib.blake2b(site.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> _LINE_BITS) << _LINE_BITS


def line_key(site: str, line: str) -> int:
    """A short line of a site as a signed 64-bit integer (site_lines_once): the site's hash in the
    high bits, the line's below."""
    digest = hashlib.blake2b(f"{site}\n{line}".encode(), digest_size=_LINE_BITS // 8).digest()
    key = _site_key(site) | int.from_bytes(digest, "big")
    return key - (1 << 64) if key >> 63 else key


def whole_line_key(site: str, line: str) -> int:
    """line_key as databases that counted lines before schema migration 24 make it: (site, line)
    hashed whole. Such a database keeps its keys (setting `line_keys`)."""
    digest = hashlib.blake2b(f"{site}\n{line}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# The setting `line_keys` -> how that database keys its lines (no setting: line_key).
LINE_KEYS = {"site-first": line_key, "whole": whole_line_key}


# A line at least this long is story text rather than page furniture (a footer, a byline): the
# lines text_key chooses from. At 20 one footer line keyed 433 pages of a site together on the
# generated 100k crawl; at 40 the largest group was 42 pages (copies of one story).
KEY_MIN_LINE = 40


def text_key(text: str) -> int:
    """A key of a document's text, so that the sign stage hands out together the texts that are
    likely copies of one story (schema migration 23, SigningMixin.docs_to_sign): the smallest
    CRC-32 of its lines of at least KEY_MIN_LINE characters (a MinHash of its lines), else the
    CRC-32 of the whole text. Equal texts have equal keys; two copies of a story share the key
    as often as they share lines (their line sets' Jaccard), and a sign worker then meets their
    common lines again (ingest._LINES) and equal texts again (ingest._PREPARED). Unequal texts
    may share a key: it orders, it does not decide."""
    least = None
    for line in text.split("\n"):
        line = line.strip()
        if len(line) >= KEY_MIN_LINE:
            h = zlib.crc32(line.encode("utf-8", "surrogatepass"))
            if least is None or h < least:
                least = h
    return least if least is not None else zlib.crc32(text.encode("utf-8", "surrogatepass"))


class FilesMixin:
    """Writes of the reading phase; needs self.conn, self.db, self.write() and self._set() from Connection."""

    def file_states(self) -> dict[str, FileState]:
        """path -> what the store knows of every file seen before.

        Read on every scan, one row per file of the crawl: the named tuples are made from the row's
        tail by tuple.__new__ (FileState(...) per row, and the hashes, were most of a 100k crawl's
        0.2 s here)."""
        make = tuple.__new__
        return {r[0]: make(FileState, r[1:]) for r in self.db.execute("SELECT path, size, mtime, status FROM files")}

    def file_hashes(self, paths: list[str]) -> dict[str, str]:
        """path -> the stored SHA-1 of those of `paths` last read whole (status ok or skipped)."""
        out: dict[str, str] = {}
        for part, marks in in_chunks(paths):
            out.update(
                self.db.execute(
                    f"SELECT path, sha1 FROM files WHERE path IN ({marks}) AND status IN ('ok', 'skipped') "
                    "AND sha1 IS NOT NULL",
                    part,
                ).fetchall()
            )
        return out

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
        """Files read again with the same bytes: this run read them (files.run_id, documents.last_run),
        and a new mtime if given."""
        paths = list(paths)
        with self.write():
            for chunk, marks in in_chunks(paths):
                self.db.execute(f"UPDATE files SET run_id = ? WHERE path IN ({marks})", [run_id, *chunk])
                self.db.execute(f"UPDATE documents SET last_run = ? WHERE file_path IN ({marks})", [run_id, *chunk])
                if mtime is not None:
                    self.db.execute(f"UPDATE files SET mtime = ? WHERE path IN ({marks})", [mtime, *chunk])

    def save_files(self, batch: list[FileOutcome], run_id: int, sig_fp: str) -> None:
        """Replace what each file of a batch holds, all in one transaction (a crash keeps all or none).

        Plain SQL, one executemany per table for the whole batch: per-row sqlite-utils calls, then
        per-file statements, were most of this process's time while workers read."""
        c = self.conn
        with self.write(small_statements=True):
            self._set("documents_changed", "1")
            c.executemany(
                "INSERT INTO files (path, kind, size, mtime, sha1, status, reason, run_id, name_bytes) "
                "VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (path) DO UPDATE SET kind=excluded.kind, size=excluded.size, mtime=excluded.mtime, "
                "sha1=excluded.sha1, status=excluded.status, reason=excluded.reason, run_id=excluded.run_id, "
                "name_bytes=excluded.name_bytes",
                [(f.path, f.kind, f.size, f.mtime, f.sha1, f.status, f.reason, run_id, f.name_bytes) for f in batch],
            )
            old: dict[str, list[tuple]] = {}
            for part, marks in in_chunks([f.path for f in batch]):
                for row in c.execute(
                    f"SELECT file_path, id, path, site, text, status FROM documents WHERE file_path IN ({marks})", part
                ):
                    old.setdefault(row[0], []).append(row[1:])
            self._drop_old_documents(
                [(row, {d.path for d in f.documents}) for f in batch for row in old.get(f.path, ())]
            )
            self._count_lines_of(
                (d.site, line, +1) for f in batch for d in f.documents for line in self._lines(d.text, d.lines)
            )
            c.executemany("DELETE FROM skipped WHERE file_path = ?", [(f.path,) for f in batch])
            # A document is saved pending, or signed as it was read (ingest.sign_read): then with
            # all that signing makes (save_signatures' columns) and its windows, below.
            cols = [*DOC_COLUMNS, "credits", "site_names", "numbers", "anchors", "boilerplate", "signature",
                    "samples", "words", "original_title", "signature_fingerprint", "first_run", "last_run",
                    "text_key"]  # fmt: skip
            rows = [
                (
                    *(getattr(d, k) for k in DOC_COLUMNS),
                    json_text(d.credits),
                    json_text(d.site_names),
                    json_text(d.numbers),
                    pack_anchors(d.anchors),
                    json_text(d.boilerplate),
                    d.signature or None,
                    d.samples or None,
                    d.words or None,
                    d.original_title or None,
                    sig_fp,
                    run_id,
                    run_id,
                    text_key(d.text),
                )
                for f in batch
                for d in f.documents
            ]
            # Upsert on the path: a document that was there keeps its id (and its place in clusters);
            # a new one gets the next id after the largest (after the deletes above).
            updates = ", ".join(f"{k}=excluded.{k}" for k in cols if k not in ("path", "first_run"))
            (last_id,) = c.execute("SELECT COALESCE(MAX(id), 0) FROM documents").fetchone()
            c.executemany(
                f"INSERT INTO documents ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                f"ON CONFLICT (path) DO UPDATE SET {updates}",
                rows,
            )
            self._book_inserted(last_id)
            self._save_read_windows([d for f in batch for d in f.documents if d.status != "pending"])
            c.executemany(
                "INSERT OR REPLACE INTO skipped (path, file_path, reason, run_id) VALUES (?, ?, ?, ?)",
                [(s.path, f.path, s.reason, run_id) for f in batch for s in f.skipped],
            )

    def _save_read_windows(self, signed: list[Document]) -> None:
        """The windows of documents signed as they were read, in place of any their rows had."""
        if not signed:
            return
        c = self.conn
        ids: dict[str, int] = {}
        for part, marks in in_chunks([d.path for d in signed]):
            ids.update(c.execute(f"SELECT path, id FROM documents WHERE path IN ({marks})", part).fetchall())
        c.executemany("DELETE FROM windows WHERE document_id = ?", [(ids[d.path],) for d in signed])
        c.executemany(
            "INSERT INTO windows (document_id, seq, n_shingles, signature) VALUES (?, ?, ?, ?)",
            [(ids[d.path], k, n, blob) for d in signed for k, (n, blob) in enumerate(d.windows)],
        )

    def _book_inserted(self, last_id: int) -> None:
        """The documents inserted after `last_id`: their titles indexed (documents_fts), each
        marked unattributed, and queued for its site's stored tally if the site has one
        (site_tally_added: a new page has the largest id, so they are met in id order). Schema
        migration 20 says why this is not done by triggers."""
        c = self.conn
        c.execute(
            "INSERT INTO documents_fts (rowid, title, original_title) "
            "SELECT id, title, original_title FROM documents WHERE id > ? ORDER BY id",
            (last_id,),
        )
        c.execute("INSERT OR IGNORE INTO unattributed (document_id) SELECT id FROM documents WHERE id > ?", (last_id,))
        c.execute(
            "INSERT OR IGNORE INTO site_tally_added (document_id) SELECT d.id FROM documents d "
            "WHERE d.id > ? AND d.status != 'gone' "
            "AND EXISTS (SELECT 1 FROM site_tallies t WHERE t.site = COALESCE(d.site, '')) ORDER BY d.id",
            (last_id,),
        )

    def _drop_old_documents(self, old: list[tuple[tuple, set[str]]]) -> None:
        """The stored documents (id, path, site, text, status) of a batch's changed files, each
        with the paths its file holds now: all out of the counts and the clustering, those their
        file no longer holds deleted with what refers to them."""
        if not old:
            return
        self._forget_verdicts([row[0] for row, _ in old])
        self._count_lines_of(
            (site, line, -1) for (_, _, site, text, st), _ in old if st != "gone" for line in self._lines(text, None)
        )
        self._delete_documents([row[0] for row, keep in old if row[1] not in keep])

    def _delete_documents(self, ids: list[int]) -> None:
        """Documents deleted, and first what refers to them, a few hundred at a time. The columns
        evidence.document_id, memberships.parent_id and clusters.original_id have no index (one
        would cost every first scan its inserts): each statement here reads those tables once.
        One document at a time, with foreign keys enforced (each delete then read the three tables
        again to check), a document took 30 ms at 100k documents and 0.33 s at 1M."""
        c = self.conn
        for part, marks in in_chunks(ids):
            c.execute(f"DELETE FROM memberships WHERE document_id IN ({marks})", part)
            c.execute(f"DELETE FROM evidence WHERE document_id IN ({marks})", part)
            c.execute(f"DELETE FROM windows WHERE document_id IN ({marks})", part)
            c.execute(f"UPDATE memberships SET parent_id = NULL WHERE parent_id IN ({marks})", part)
            c.execute(f"UPDATE clusters SET original_id = NULL WHERE original_id IN ({marks})", part)
            c.execute(f"DELETE FROM documents WHERE id IN ({marks})", part)

    @staticmethod
    def _lines(text: str | None, lines: set[str] | None) -> set[str]:
        return lines if lines is not None else learnable_lines(text or "")

    def _count_lines_of(self, rows: Iterable[tuple[str, str, int]]) -> None:
        """(site, line, delta) added to the page counts of lines, summed first (a site's furniture
        lines repeat on most of its pages). A line on one page is a key in site_lines_once (schema
        migration 18), on two or more a row of site_lines; set-based, through a temporary table."""
        total: Counter[tuple[str, str]] = Counter()
        for site, line, delta in rows:
            total[(site or "", line)] += delta
        key = self._line_key()
        items = [(site, line, key(site, line), n) for (site, line), n in total.items() if n]
        if not items:
            return
        c = self.conn
        c.execute("CREATE TEMP TABLE IF NOT EXISTS line_delta (site, line, key INTEGER, delta INTEGER, once INTEGER)")
        c.execute("DELETE FROM line_delta")
        c.executemany("INSERT INTO line_delta VALUES (?, ?, ?, ?, 0)", items)
        # Lines counted on two or more pages (or before migration 18): counted there.
        c.execute(
            "UPDATE site_lines SET n_docs = n_docs + d.delta FROM line_delta d "
            "WHERE site_lines.site = d.site AND site_lines.line = d.line"
        )
        c.execute(
            "DELETE FROM line_delta WHERE EXISTS "
            "(SELECT 1 FROM site_lines s WHERE s.site = line_delta.site AND s.line = line_delta.line)"
        )
        # The others were on one page (site_lines_once) or on none: on two or more now, they move
        # to site_lines; on one, they are (or stay) a key; on none, they are forgotten.
        c.execute("UPDATE line_delta SET once = 1 WHERE key IN (SELECT key FROM site_lines_once)")
        c.execute("DELETE FROM site_lines_once WHERE key IN (SELECT key FROM line_delta WHERE once = 1)")
        c.execute(
            "INSERT INTO site_lines (site, line, n_docs) SELECT site, line, delta + once FROM line_delta "
            "WHERE delta + once >= 2"
        )
        # In key order: the keys are hashes, spread over the whole table (~500,000 at 100,000
        # documents); inserted in order, each page of it is visited once (0.10 -> 0.05 s a batch).
        c.execute(
            "INSERT OR IGNORE INTO site_lines_once (key) SELECT key FROM line_delta WHERE delta + once = 1 ORDER BY key"
        )

    def _line_key(self) -> Callable[[str, str], int]:
        """This database's line_key (LINE_KEYS by its setting `line_keys`)."""
        scheme = self._get("line_keys") or "site-first"
        if scheme not in LINE_KEYS:
            raise StoreError(f"{self.path}: lines keyed as {scheme!r}, which this dedup does not know")
        return LINE_KEYS[scheme]

    def sites_of_file(self, path: str) -> set[str]:
        return {s for (s,) in self.db.execute("SELECT DISTINCT site FROM documents WHERE file_path = ?", [path])}

    def mark_gone(self, gone: list[str], run_id: int) -> set[str]:
        """Files no longer under the root: their documents leave the clustering (kept, marked).

        Returns the sites that lost documents."""
        sites: set[str] = set()
        with self.write():
            if gone:
                self._set("documents_changed", "1")
            uncounted: list[tuple[str, str, int]] = []  # the gone pages' lines, uncounted in one call
            for p in gone:
                for site, text in self.db.execute(
                    "SELECT site, text FROM documents WHERE file_path = ? AND status != 'gone'", [p]
                ).fetchall():
                    uncounted.extend((site, line, -1) for line in self._lines(text, None))
                    sites.add(site)
                self._forget_verdicts(
                    [i for (i,) in self.db.execute("SELECT id FROM documents WHERE file_path = ?", [p]).fetchall()]
                )
                self.db.execute("UPDATE files SET status = 'gone', run_id = ? WHERE path = ?", [run_id, p])
                self.db.execute("UPDATE documents SET status = 'gone' WHERE file_path = ?", [p])
                self.db.execute("DELETE FROM skipped WHERE file_path = ?", [p])
            self._count_lines_of(uncounted)
        return sites

    def forget_file_hashes(self) -> int:
        """Make every stored file look changed (extraction changed: all must be read again)."""
        with self.write():
            cur = self.db.execute("UPDATE files SET size = NULL, mtime = NULL, sha1 = NULL WHERE status != 'gone'")
        return cur.rowcount
