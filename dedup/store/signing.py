"""What signing writes: boilerplate learned from the short-line counts, and the documents' signatures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from dedup.models import Document, Skipped
from dedup.normalize import learnable_lines
from dedup.store.base import in_chunks
from dedup.store.files import json_text, pack_anchors, unpack_anchors
from dedup.store.index import windows_of

# A site's pages, and its gone pages (SigningMixin._live_pages): each query read from an index.
LIVE_PAGES = (
    "SELECT count(*) FROM documents WHERE site = ?",
    "SELECT count(*) FROM documents WHERE status != 'ok' AND status = 'gone' AND site = ?",
)


class SignedRow(NamedTuple):
    """What signing stores of one document (save_signatures), encoded for its columns where it was
    signed: a worker process, not the one process that writes (unpickling Documents and encoding
    their JSON there was ~0.3 ms of its time a document, while the workers waited for it)."""

    doc_id: int
    credits: str  # JSON
    original_title: str | None
    boilerplate: str  # JSON
    numbers: str  # JSON
    anchors: bytes  # pack_anchors
    content_hash: str
    n_tokens: int
    n_shingles: int
    signature: bytes | None
    samples: bytes | None
    words: bytes | None
    status: str  # ok | too_short
    windows: list[tuple[int, bytes]]  # (shingles, signature) of each window

    @classmethod
    def of(cls, doc_id: int, d: Document, text: SignedText | None = None) -> SignedRow:
        """The row of a document normalized and tokenized (ingest.tokenize_document) and of what
        signing made of its words: `text`, taken from a document with the same words, or by
        default the document's own (ingest.sign_tokens)."""
        text = text if text is not None else SignedText.of(d)
        return cls(
            doc_id,
            json_text(d.credits),
            d.original_title or None,
            json_text(d.boilerplate),
            json_text(d.numbers),
            text.anchors,
            d.content_hash,
            text.n_tokens,
            text.n_shingles,
            text.signature,
            text.samples,
            text.words,
            text.status,
            text.windows,
        )


class SignedText(NamedTuple):
    """What signing makes of a document's words alone (ingest.sign_tokens): the same for every
    document with those words, i.e. with the same content hash. 55 % of the documents of the
    generated 100k crawl have the words of another (45,484 distinct of 101,000): signing takes
    these from a document signed before (SigningMixin.signed_texts) instead of making them again."""

    n_tokens: int
    n_shingles: int
    signature: bytes | None
    samples: bytes | None
    words: bytes | None
    anchors: bytes
    status: str  # ok | too_short
    windows: list[tuple[int, bytes]]

    @classmethod
    def of(cls, d: Document) -> SignedText:
        """What signing made of a document's words (ingest.sign_tokens has run on it)."""
        return cls(d.n_tokens, d.n_shingles, d.signature or None, d.samples or None, d.words or None,
                   pack_anchors(d.anchors), d.status, d.windows)  # fmt: skip

    def apply_to(self, d: Document) -> Document:
        """Give a document what signing made of the same words (it has been tokenized: its own
        content hash, credits and numbers are set), as if ingest.sign_tokens had run on it."""
        d.n_tokens, d.n_shingles, d.status, d.windows = self.n_tokens, self.n_shingles, self.status, self.windows
        d.signature, d.samples, d.words = self.signature or b"", self.samples or b"", self.words or b""
        d.anchors = unpack_anchors(self.anchors)
        return d


class SigningMixin:
    """Learning and signing; needs self.conn, self.db, self.write() and self._set() from Connection."""

    def learn_boilerplate(self, sites: Iterable[str], min_docs: int, min_share: float) -> dict[str, set[str]]:
        """Recompute the learned lines of these sites; returns site -> lines that changed."""
        changed: dict[str, set[str]] = {}
        with self.write():
            for site in set(sites):
                n = self._live_pages(site)
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

    def _live_pages(self, site: str) -> int:
        """A site's pages that are not gone: all of them, from the site index alone, less the gone
        ones, found by status (documents_not_ok). Counted in one query, `status != 'gone'` read
        every page's row for its status: 1.5 s for the 27 sites of the 1M crawl, 0.04 s so."""
        (pages,) = self.db.execute(LIVE_PAGES[0], [site]).fetchone()
        (gone,) = self.db.execute(LIVE_PAGES[1], [site]).fetchone()
        return pages - gone

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

    def settled_sites(self, min_pages: int) -> dict[str, frozenset[str]]:
        """The sites with at least `min_pages` stored pages that are not gone, each with its
        learned lines (ingest.SIGN_AT_READ_MIN_PAGES): counted from the site index and the index
        of documents not ok, as _live_pages counts them."""
        pages: Counter[str] = Counter()
        for site, n in self.db.execute("SELECT site, count(*) FROM documents GROUP BY site"):
            pages[site or ""] += n
        for site, n in self.db.execute(
            "SELECT site, count(*) FROM documents WHERE status != 'ok' AND status = 'gone' GROUP BY site"
        ):
            pages[site or ""] -= n
        learned = self.learned()
        return {site: learned.get(site, frozenset()) for site, n in pages.items() if n >= min_pages}

    def sites_with_pending(self) -> set[str]:
        # `status != 'ok'` names the partial index documents_not_ok (schema migration 17), which
        # SQLite does not infer from `status = 'pending'`: without it, DISTINCT walked the site
        # index and read every row (40 % of a 1M rescan with nothing new).
        return {s for (s,) in self.db.execute("SELECT site FROM documents WHERE status != 'ok' AND status = 'pending'")}

    def docs_to_sign(self, changed: dict[str, set[str]]) -> list[int]:
        """Documents without a signature (new, or whose signing failed in an earlier run: tried
        again, as an unreadable file is read again), and those of sites whose learned lines they
        carry changed."""
        # Texts with the same key together (store.files.text_key: equal texts, and copies of a
        # story that share their long lines; schema migration 23, read from the index
        # documents_not_ok), so that the worker that gets them tokenizes each text and each line
        # once, at the place of the first of them: otherwise in the order of the ids.
        rows = self.db.execute(
            "SELECT id, text_key FROM documents WHERE status != 'ok' AND status IN ('pending', 'skipped') ORDER BY id"
        ).fetchall()
        first: dict[int, int] = {}  # key -> the first id with it
        placed = sorted((doc_id if key is None else first.setdefault(key, doc_id), doc_id) for doc_id, key in rows)
        ids = [doc_id for _, doc_id in placed]
        for site, lines in changed.items():
            for doc_id, text in self.db.execute(
                "SELECT id, text FROM documents WHERE site = ? AND status IN ('ok', 'too_short')", [site]
            ):
                if learnable_lines(text or "") & lines:
                    ids.append(doc_id)
        return ids

    def documents_to_sign(self, ids: list[int]) -> Iterator[dict]:
        """What signing reads of some documents (docs_to_sign), in that order."""
        cols = "id, path, file_path, kind, site, text, credits, status"
        for part, marks in in_chunks(ids):
            rows = {r["id"]: r for r in self.db.query(f"SELECT {cols} FROM documents WHERE id IN ({marks})", part)}
            yield from (rows[i] for i in part if i in rows)

    def signed_texts(self, hashes: Iterable[str]) -> dict[str, SignedText]:
        """What signing made of stored documents with these content hashes, by hash (any one
        document of each). Only documents signed with the current settings (a change sets every
        document back to pending: resign_all) and in the current form: words kept (schema 14)
        and anchors packed.

        None found while a first scan fills the table without its hash index (schema.DEFERRED_INDEXES):
        each search would read every row. What it spares is signing equal words again, which the sign
        stage's order spares mostly anyway (equal texts are handed out together: docs_to_sign)."""
        found: dict[str, tuple[int, SignedText]] = {}
        if not self.has_index("documents_hash"):
            return {}
        cols = "id, content_hash, n_tokens, n_shingles, signature, samples, words, anchors, status"
        for part, marks in in_chunks(sorted(hashes)):
            for r in self.db.execute(
                f"SELECT {cols} FROM documents WHERE content_hash IN ({marks}) AND status IN ('ok', 'too_short') "
                "AND words IS NOT NULL AND typeof(anchors) = 'blob' "
                "AND (status = 'too_short' OR (signature IS NOT NULL AND samples IS NOT NULL))",
                part,
            ):
                found.setdefault(r[1], (r[0], SignedText(*r[2:], [])))
        windows = windows_of(self.db, [doc_id for doc_id, _ in found.values()])
        return {
            h: text._replace(windows=[(w.n_shingles, w.signature) for w in windows.get(doc_id, [])])
            for h, (doc_id, text) in found.items()
        }

    def save_signatures(self, rows: list[SignedRow]) -> None:
        # In the order of the rows on disk: the sign stage hands out copies of a story together,
        # wherever their ids lie (docs_to_sign).
        rows = sorted(rows, key=lambda r: r.doc_id)
        ids = [r.doc_id for r in rows]
        with self.write(small_statements=True):
            self._set("documents_changed", "1")
            self._forget_verdicts(ids)
            self.conn.executemany("DELETE FROM windows WHERE document_id = ?", [(i,) for i in ids])
            self.conn.executemany(
                "INSERT INTO windows (document_id, seq, n_shingles, signature) VALUES (?, ?, ?, ?)",
                [(r.doc_id, k, n, blob) for r in rows for k, (n, blob) in enumerate(r.windows)],
            )
            self.conn.executemany(
                "DELETE FROM skipped WHERE path = (SELECT path FROM documents WHERE id = ?)", [(i,) for i in ids]
            )
            self.conn.executemany(
                "UPDATE documents SET credits=?, original_title=?, boilerplate=?, numbers=?, anchors=?, "
                "content_hash=?, n_tokens=?, n_shingles=?, signature=?, samples=?, words=?, status=? WHERE id = ?",
                [(*r[1:13], r.doc_id) for r in rows],
            )

    def document_path(self, doc_id: int) -> str | None:
        row = self.db.execute("SELECT path FROM documents WHERE id = ?", [doc_id]).fetchone()
        return row[0] if row else None

    def skip_document(self, doc_id: int, skipped: Skipped) -> None:
        with self.write():
            self._set("documents_changed", "1")
            self._forget_verdicts([doc_id])
            self.db.execute(
                "UPDATE documents SET status = 'skipped', signature = NULL, samples = NULL WHERE id = ?", [doc_id]
            )
            row = self.db.execute("SELECT file_path FROM documents WHERE id = ?", [doc_id]).fetchone()
            if row:
                self.db["skipped"].upsert(
                    {"path": skipped.path, "file_path": row[0], "reason": skipped.reason}, pk="path"
                )

    def resign_all(self) -> int:
        """Every signed document back to 'pending' (what shapes signatures changed); returns how many."""
        with self.write():
            self._set("documents_changed", "1")
            self.db.execute("DELETE FROM verdicts")
            self._forget_index()
            cur = self.db.execute(
                "UPDATE documents SET status = 'pending' WHERE status IN ('ok', 'too_short', 'skipped')"
            )
        return cur.rowcount
