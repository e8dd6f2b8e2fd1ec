"""Full-text search of the texts, opt-in: fill `texts_fts` (migration 15) and keep it up to date.

Titles are always indexed (documents_fts, migration 13). The texts' index costs every scan ~0.6-0.8 ms
of CPU per new or changed document and makes the database ~40 % larger (10,000 documents: 74 to 105
MB, ~4.6 s of CPU to build), so it is made only when asked (`dedup datasette --index-text`):
triggers then keep it in sync with every write to `documents`, in the same transaction, as
migration 13's do for the titles. The setting `text_search` ('1' or '0') says which state a
database is in; the `search` canned query reads it.
"""

from __future__ import annotations

TEXT_SEARCH = "text_search"
# The same three triggers as documents_fts's, on the text only. An upsert names every column: the
# WHEN clause keeps an unchanged text (most of a rescan's rows) from touching the index.
TEXT_TRIGGERS = {
    "texts_fts_insert": """
        CREATE TRIGGER IF NOT EXISTS texts_fts_insert AFTER INSERT ON documents BEGIN
            INSERT INTO texts_fts (rowid, text) VALUES (new.id, new.text);
        END""",
    "texts_fts_delete": """
        CREATE TRIGGER IF NOT EXISTS texts_fts_delete AFTER DELETE ON documents BEGIN
            INSERT INTO texts_fts (texts_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END""",
    "texts_fts_update": """
        CREATE TRIGGER IF NOT EXISTS texts_fts_update AFTER UPDATE OF id, text ON documents
        WHEN old.id IS NOT new.id OR old.text IS NOT new.text BEGIN
            INSERT INTO texts_fts (texts_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO texts_fts (rowid, text) VALUES (new.id, new.text);
        END""",
}


class SearchMixin:
    """Text search on and off; needs self.conn, write() and the settings of Connection."""

    def text_search_enabled(self) -> bool:
        """True when the texts are indexed (texts_fts) and every write keeps them so."""
        return self._get(TEXT_SEARCH) == "1"

    def enable_text_search(self) -> int:
        """Index every document's text and add the triggers that keep the index up to date, in one
        write transaction; returns the documents the index covers. Already enabled: nothing is
        rebuilt (the triggers kept it current)."""
        with self.write():
            if self._get(TEXT_SEARCH) != "1":
                for sql in TEXT_TRIGGERS.values():
                    self.conn.execute(sql)
                # Under the same write lock as the triggers: no document can change in between.
                self.conn.execute("INSERT INTO texts_fts (texts_fts) VALUES ('rebuild')")
                self._set(TEXT_SEARCH, "1")
            (n,) = self.conn.execute("SELECT count(*) FROM documents").fetchone()
        return n

    def disable_text_search(self) -> None:
        """Drop the triggers and empty the index: scans no longer pay for it (the freed pages are
        reused by later writes; VACUUM gives them back to the file system)."""
        with self.write():
            for name in TEXT_TRIGGERS:
                self.conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            self.conn.execute("INSERT INTO texts_fts (texts_fts) VALUES ('delete-all')")
            self._set(TEXT_SEARCH, "0")
