"""What clustering reads: the signatures (documents and windows) and what attribution needs of each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import NamedTuple


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


class SiteText(NamedTuple):
    site: str
    text: str


class IndexMixin:
    """Reads for clustering and the pairs it verified (a persistent candidate index grows from
    here); needs self.db, self.conn and self.write() from Connection."""

    def clusterable(self) -> Iterator[StoredSignature]:
        """The documents that may join clusters, by id."""
        for row in self.db.execute(
            "SELECT id, content_hash, n_shingles, signature, numbers, anchors, samples FROM documents "
            "WHERE status = 'ok' ORDER BY id"
        ):
            yield StoredSignature(*row)

    def windows(self) -> Iterator[StoredWindow]:
        """The windows of documents that may join clusters, by document and position."""
        for row in self.db.execute(
            "SELECT w.document_id, w.n_shingles, w.signature FROM windows w "
            "JOIN documents d ON d.id = w.document_id WHERE d.status = 'ok' ORDER BY w.document_id, w.seq"
        ):
            yield StoredWindow(*row)

    def verdicts(self) -> dict[tuple[int, int], tuple | None]:
        """(lo, hi) -> (a, b, jaccard, containment, kind) of a verified copy pair, or None for a
        pair verified not to be one."""
        return {
            (lo, hi): (a, b, j, c, kind) if kind else None
            for lo, hi, kind, a, b, j, c in self.db.execute(
                "SELECT lo, hi, kind, a, b, jaccard, containment FROM verdicts"
            )
        }

    def save_verdicts(self, new: dict[tuple[int, int], tuple | None]) -> None:
        with self.write():
            self.conn.executemany(
                "INSERT OR REPLACE INTO verdicts (lo, hi, kind, a, b, jaccard, containment) VALUES (?,?,?,?,?,?,?)",
                [(lo, hi, *((e[4], e[0], e[1], e[2], e[3]) if e else (None,) * 5)) for (lo, hi), e in new.items()],
            )

    def clear_verdicts(self) -> None:
        with self.write():
            self.db.execute("DELETE FROM verdicts")

    def site_and_text(self, doc_id: int) -> SiteText | None:
        """A document's site and its text as published (for aligning a pair word by word)."""
        row = self.db.execute("SELECT site, text FROM documents WHERE id = ?", [doc_id]).fetchone()
        return SiteText(row[0] or "", row[1] or "") if row else None

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
