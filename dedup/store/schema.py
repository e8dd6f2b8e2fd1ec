"""The schema: numbered migrations, and the runner that brings a database up to the last one."""

from __future__ import annotations

import sqlite3

from dedup.errors import StoreError

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
    # 8: verified candidate pairs carried from run to run (cluster.Verdicts): lo < hi document ids;
    # kind NULL when the pair is not a copy, else the edge (a contains or resembles b).
    """
    CREATE TABLE verdicts (
        lo INTEGER NOT NULL,
        hi INTEGER NOT NULL,
        kind TEXT,
        a INTEGER,
        b INTEGER,
        jaccard REAL,
        containment REAL,
        PRIMARY KEY (lo, hi)
    ) WITHOUT ROWID;
    CREATE INDEX verdicts_hi ON verdicts(hi);
    """,
    # 9: what each clustering did to each cluster (new, grown, shrunk, merged into another, split,
    # dissolved, original changed), for `dedup show` and the run ledger.
    """
    CREATE TABLE cluster_history (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        cluster_id INTEGER NOT NULL REFERENCES clusters(id),
        event TEXT NOT NULL,
        other_id INTEGER REFERENCES clusters(id),
        detail TEXT
    );
    CREATE INDEX cluster_history_cluster ON cluster_history(cluster_id);
    CREATE INDEX cluster_history_other ON cluster_history(other_id);
    """,
    # 10: sampled shingle hashes of a document (signature.SAMPLE_MOD), for short texts inside long ones.
    """
    ALTER TABLE documents ADD COLUMN samples BLOB;
    """,
    # 11: the persistent candidate index (dedup.candidates): its segment files beside the database,
    # and the segment that holds each indexed document's rows (NULL: not indexed).
    """
    CREATE TABLE index_segments (
        id INTEGER PRIMARY KEY,
        rows INTEGER NOT NULL,
        run_id INTEGER
    );
    ALTER TABLE documents ADD COLUMN index_segment INTEGER;
    """,
    # 12: 1 when a document's cluster (or its being in none) was worked out with its current
    # content; anything that changes a document sets it back (Connection._forget_verdicts).
    """
    ALTER TABLE documents ADD COLUMN attributed INTEGER;
    """,
    # 13: full-text search of titles and 原标题 lines (Datasette: `dedup datasette`, its `search` and
    # `title_copies` queries, the search box of `documents`). FTS5 with the trigram tokenizer, external
    # content (nothing stored twice), kept in sync by triggers: every write to `documents` updates it
    # in the same transaction, whichever module writes. Trigram finds any substring of 3 characters
    # or more with no segmentation on either side, so Datasette's own search box and a plain MATCH
    # work as they are; a 1-2 character word (上饶, 暴雨) matches no trigram and is found by LIKE
    # (the canned queries do that). Texts are not in it: measured on a 10,000-document crawl (4.7 M
    # characters, 2 cores shared with other jobs, so noisy), indexing them here too made a first scan
    # take ~43 s of CPU instead of ~37 s (medians of 4 and 3 scans; inserting the 10,000 rows alone:
    # 6.3 s with the texts indexed, 0.5 s with titles only, 0.1 s with no index: all of it FTS5
    # tokenizing) and the database 109 MB instead of 74 MB, for a search many users never open. The
    # titles' index is ~1 MB. The texts have their own index, made and kept only once asked for
    # (migration 15, store.search). The alternative, jieba tokens space-joined in a unicode61 index,
    # finds whole jieba words only (上饶 is not a token of 上饶市; search mode's extra tokens break
    # phrases) and needs every query segmented alike (Datasette's box sends 气象台发布暴雨 as one token).
    """
    CREATE VIRTUAL TABLE documents_fts USING fts5(
        title, original_title, content="documents", content_rowid="id", tokenize="trigram"
    );
    INSERT INTO documents_fts (documents_fts) VALUES ('rebuild');
    CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
        INSERT INTO documents_fts (rowid, title, original_title) VALUES (new.id, new.title, new.original_title);
    END;
    CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
        INSERT INTO documents_fts (documents_fts, rowid, title, original_title)
        VALUES ('delete', old.id, old.title, old.original_title);
    END;
    -- An upsert names every column: only a real change of a title touches the index.
    CREATE TRIGGER documents_fts_update AFTER UPDATE OF id, title, original_title ON documents
    WHEN old.id IS NOT new.id OR old.title IS NOT new.title OR old.original_title IS NOT new.original_title
    BEGIN
        INSERT INTO documents_fts (documents_fts, rowid, title, original_title)
        VALUES ('delete', old.id, old.title, old.original_title);
        INSERT INTO documents_fts (rowid, title, original_title) VALUES (new.id, new.title, new.original_title);
    END;
    """,
    # 14: the words a document was signed from (zlib, shingle.pack_words), so that verifying a pair
    # word by word reads them instead of normalizing and tokenizing both texts again (two thirds
    # of the time to verify a pair). NULL for documents signed before: read from their text.
    """
    ALTER TABLE documents ADD COLUMN words BLOB;
    """,
    # 15: full-text search of the texts, opt-in (`dedup datasette --index-text`): an empty trigram
    # index with no triggers, so that it costs a scan nothing until store.SearchMixin.enable_text_search
    # fills it and adds the triggers that keep it up to date (the setting `text_search` says it did).
    """
    CREATE VIRTUAL TABLE texts_fts USING fts5(text, content="documents", content_rowid="id", tokenize="trigram");
    """,
    # 16: each site's tally of its pages (attribute.SiteTally as JSON), kept between runs so that a
    # rescan counts again only the sites whose pages changed (at 100k documents, recounting every
    # page was ~2 s of a 12 s rescan). Triggers drop a site's tally whenever one of its pages is
    # added, removed or changes what is counted, whichever module writes.
    """
    CREATE TABLE site_tallies (site TEXT PRIMARY KEY, tally TEXT NOT NULL);
    CREATE TRIGGER site_tallies_insert AFTER INSERT ON documents BEGIN
        DELETE FROM site_tallies WHERE site = COALESCE(new.site, '');
    END;
    CREATE TRIGGER site_tallies_delete AFTER DELETE ON documents BEGIN
        DELETE FROM site_tallies WHERE site = COALESCE(old.site, '');
    END;
    CREATE TRIGGER site_tallies_update AFTER UPDATE OF site, status, credits, boilerplate, site_names ON documents
    WHEN old.site IS NOT new.site OR old.status IS NOT new.status OR old.credits IS NOT new.credits
        OR old.boilerplate IS NOT new.boilerplate OR old.site_names IS NOT new.site_names
    BEGIN
        DELETE FROM site_tallies WHERE site IN (COALESCE(old.site, ''), COALESCE(new.site, ''));
    END;
    """,
    # 17: what a rescan reads of the documents in proportion to what changed, not to the crawl.
    # A page added to a site that has a tally no longer drops it: the page is queued in
    # site_tally_added and profiling adds it, as its row is then, to the stored tally (a new page
    # has the largest id: added in id order, they are met in the order a recount meets them) and
    # empties the queue when it saves the tallies. A queued page is in no stored tally, so its
    # changes and its removal drop none; another page's still do. The documents not attributed
    # with their current content get an index of their own: every rescan looks them up (regroup
    # seeds, attribution) and marks them attributed, each a read of the whole table before; so do
    # the documents that are not 'ok' (gone ones stay in it: the members of clusters that went, and
    # the counts, read them).
    """
    CREATE TABLE site_tally_added (document_id INTEGER PRIMARY KEY);
    DROP TRIGGER site_tallies_insert;
    DROP TRIGGER site_tallies_delete;
    DROP TRIGGER site_tallies_update;
    CREATE TRIGGER site_tallies_insert AFTER INSERT ON documents WHEN new.status != 'gone' BEGIN
        INSERT OR IGNORE INTO site_tally_added (document_id)
        SELECT new.id WHERE EXISTS (SELECT 1 FROM site_tallies WHERE site = COALESCE(new.site, ''));
    END;
    CREATE TRIGGER site_tallies_delete AFTER DELETE ON documents
    WHEN old.id NOT IN (SELECT document_id FROM site_tally_added)
    BEGIN
        DELETE FROM site_tallies WHERE site = COALESCE(old.site, '');
    END;
    CREATE TRIGGER site_tallies_update AFTER UPDATE OF site, status, credits, boilerplate, site_names ON documents
    WHEN (old.site IS NOT new.site OR old.status IS NOT new.status OR old.credits IS NOT new.credits
        OR old.boilerplate IS NOT new.boilerplate OR old.site_names IS NOT new.site_names)
        AND old.id NOT IN (SELECT document_id FROM site_tally_added)
    BEGIN
        DELETE FROM site_tallies WHERE site IN (COALESCE(old.site, ''), COALESCE(new.site, ''));
    END;
    CREATE INDEX documents_unattributed ON documents(id) WHERE status = 'ok' AND attributed IS NULL;
    CREATE INDEX documents_not_ok ON documents(id) WHERE status != 'ok';
    """,
    # 18: a short line seen on one page of its site only is counted by a 64-bit key of (site, line)
    # in site_lines_once, and enters site_lines when a second page carries it. At 100k documents
    # 534,106 of site_lines' 543,226 rows were such lines (a short paragraph of one story), keyed by
    # their text: their upserts were 16 s of the read stage. Rows already in site_lines stay and
    # are counted there.
    """
    CREATE TABLE site_lines_once (key INTEGER PRIMARY KEY);
    """,
    # 19: which documents the candidate index holds (and in which segment) and which wait to be
    # attributed, in small tables of their own instead of columns of `documents`. A documents row
    # is ~3.5 KB (text, words, signature): setting a column rewrote the whole row, so a first scan
    # wrote every row twice more (an index batch of 20,000 texts: ~0.9 s, workers idle; marking
    # 100,000 documents attributed: ~3 s, 356 MB of WAL). Dropping the two columns rewrites the
    # table once (~9 s at 100,000 documents). A document inserted is unattributed (a trigger, whoever
    # writes it); a document deleted leaves both tables.
    """
    CREATE TABLE indexed_documents (document_id INTEGER PRIMARY KEY, segment INTEGER NOT NULL);
    INSERT INTO indexed_documents SELECT id, index_segment FROM documents WHERE index_segment IS NOT NULL;
    CREATE INDEX indexed_documents_segment ON indexed_documents(segment);
    CREATE TABLE unattributed (document_id INTEGER PRIMARY KEY);
    INSERT INTO unattributed SELECT id FROM documents WHERE attributed IS NULL;
    DROP INDEX documents_unattributed;
    ALTER TABLE documents DROP COLUMN index_segment;
    ALTER TABLE documents DROP COLUMN attributed;
    CREATE TRIGGER documents_unattributed_insert AFTER INSERT ON documents BEGIN
        INSERT OR IGNORE INTO unattributed (document_id) VALUES (new.id);
    END;
    CREATE TRIGGER documents_bookkeeping_delete AFTER DELETE ON documents BEGIN
        DELETE FROM indexed_documents WHERE document_id = old.id;
        DELETE FROM unattributed WHERE document_id = old.id;
    END;
    """,
    # 20: what the three AFTER INSERT triggers on documents did row by row (index the titles, mark
    # the document unattributed, queue it for its site's tally) is done once per saved batch by
    # store.FilesMixin.save_files, the one writer of new documents, for the rows it inserted (ids
    # above the largest before the insert). The title index's trigger alone was ~95 us a row of
    # the scanning process (FTS5 called through a trigger program for every row: 20,000 rows saved
    # in 3.2 s with the three triggers, 1.3 s without); the same rows added by one INSERT ... SELECT
    # take ~0.7 s. The delete and update triggers stay: many statements delete and change rows.
    """
    DROP TRIGGER IF EXISTS documents_fts_insert;
    DROP TRIGGER IF EXISTS documents_unattributed_insert;
    DROP TRIGGER IF EXISTS site_tallies_insert;
    """,
    # 21: what matching new texts reads of every document (store.IndexMixin.index_rows: its id,
    # content hash, shingle and sample counts, status) read from an index that holds just that,
    # not from the table, whose rows are ~3.5 KB: at 100,000 documents the read took 0.41 s of a
    # 3.9 s rescan with 1,000 new files, 0.12 s from the index. The documents that are not 'ok'
    # are indexed by status too: with only their ids in documents_not_ok, the counts by status
    # (`status != 'ok' AND status = ?`) scanned the whole new index, which holds the status.
    """
    CREATE INDEX documents_index_rows
    ON documents(id, status, content_hash, n_shingles, COALESCE(length(samples), 0) / 4);
    DROP INDEX documents_not_ok;
    CREATE INDEX documents_not_ok ON documents(status, id) WHERE status != 'ok';
    """,
    # 22: the verified pairs by their higher end with their kind: regrouping follows the copy pairs
    # (`kind IS NOT NULL AND hi IN ...`) from the index alone, where verdicts_hi (hi and the key)
    # sent it to the table for each pair's kind. A nightly scope of ~490,000 documents at 1M (2.8
    # million pairs) took 17 s to close, 13 s with this index. The index still serves the reads of
    # every verdict by its higher end (store.IndexMixin.verified_codes).
    """
    DROP INDEX verdicts_hi;
    CREATE INDEX verdicts_hi_kind ON verdicts(hi, kind);
    """,
    # 23: a key of each document's text (store.files.text_key), so that the sign stage hands out
    # equal texts together and a worker tokenizes each once (ingest.tokenize_document): on the
    # generated 100k crawl a third of the pages' texts equal another page's. (The key now also puts
    # together the copies of a story that share their long lines; keys stored before only order
    # less well.) The documents not 'ok' (those signing waits for among them) are indexed with it,
    # so that their order is read from the index alone; those saved before have none (NULL: each
    # keeps its place by id).
    """
    ALTER TABLE documents ADD COLUMN text_key INTEGER;
    DROP INDEX documents_not_ok;
    CREATE INDEX documents_not_ok ON documents(status, id, text_key) WHERE status != 'ok';
    """,
    # 24: the keys of site_lines_once open with a hash of their site (store.files.line_key), so that
    # a batch of one site's pages reads and writes a few pages of that table, not most of it. A
    # database that holds keys made the old way (the whole (site, line) hashed) goes on making them
    # so: a key cannot be made again without its line.
    """
    INSERT INTO settings (key, value) SELECT 'line_keys', 'whole' WHERE EXISTS (SELECT 1 FROM site_lines_once);
    """,
]


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations a database has not had yet (its `user_version` counts those it has)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(f"database schema version {version} is newer than this dedup ({len(MIGRATIONS)})")
    for n in range(version, len(MIGRATIONS)):
        # executescript commits first and runs the whole script, version bump included, as one
        # transaction: a crash leaves the schema either before or after the migration.
        conn.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[n]}; PRAGMA user_version = {n + 1}; COMMIT;")


# The indexes of `documents` that a first scan drops while it fills the table, and makes again once
# the table is signed (pipeline._scan_files, Connection.drop_deferred_indexes / restore_indexes).
# Signing rewrites each row with its content hash, status and sizes, so each of these moved one entry
# per document as the sign stage saved it, the hash index at a random place (every batch of 500
# dirtied most of its pages): replaying the saves of the 100k crawl's sign stage took 6.6-6.7 CPU-s
# with it, 5.0-5.1 without; a first scan there, 6.5-9 CPU-s less in all (benchmarks/RESULTS.md, "A
# first scan without three of its indexes"). Made again from the finished table, the three took
# 0.5 s. Only a first scan writes every row of the table; a rescan keeps them. As the migrations made
# them (a test compares); a scan stopped before it made them again leaves them to the next scan.
DEFERRED_INDEXES = {
    "documents_hash": "CREATE INDEX documents_hash ON documents(content_hash)",
    "documents_index_rows": (
        "CREATE INDEX documents_index_rows\n"  # as migration 21 wrote it, line break included
        "    ON documents(id, status, content_hash, n_shingles, COALESCE(length(samples), 0) / 4)"
    ),
    "documents_not_ok": "CREATE INDEX documents_not_ok ON documents(status, id, text_key) WHERE status != 'ok'",
}
