"""The connection: opening (identify, stamp, migrate), atomic writes, settings, stamps and the run ledger."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from dedup.dbfile import APPLICATION_ID, connect, identify, open_for_reading
from dedup.errors import StoreError
from dedup.models import Params
from dedup.store.schema import DEFERRED_INDEXES, MIGRATIONS, migrate

# Values bound per `IN (...)` list: SQLite allows 32,766 variables a statement; smaller lists keep
# each statement's plan and memory small.
IN_CHUNK = 500


def in_chunks(values: list) -> Iterator[tuple[list, str]]:
    """`values` in slices of IN_CHUNK, each with its placeholders ("?,?,?") for an `IN (...)`."""
    for k in range(0, len(values), IN_CHUNK):
        part = values[k : k + IN_CHUNK]
        yield part, ",".join("?" * len(part))


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# Tables whose first page a scan reads on opening the database (see Connection.__init__).
PROBED_TABLES = ("files", "documents", "clusters", "memberships")


class Connection:
    """An open dedup database: `conn` (sqlite3), `db` (sqlite-utils over it) and `write()`."""

    def __init__(self, path: Path | str, readonly: bool = False, checked: bool = False) -> None:
        """Open a dedup database: for writing (made if missing; scans only) or read-only.

        Another application's file is refused before anything is written (dbfile.identify); a
        read-only open never migrates, stamps or switches the journal mode. `checked` (read-only
        only): the scanning process opened this file as a dedup database of this schema, and its
        worker tasks open it again (a task a connection): not identified again, which was ~0.7 of
        the ~1.2 ms an open cost (~1,300 opens in a first scan of 100k pages)."""
        path = Path(path)
        self.path = path
        self.readonly = readonly
        if readonly:
            self.conn = connect(path, writable=False) if checked else open_for_reading(path, len(MIGRATIONS))
            self.db = sqlite_utils.Database(self.conn)
            return
        ident = identify(path)
        self.conn = connect(path, writable=True)
        self.db = sqlite_utils.Database(self.conn)
        try:
            if not ident.stamped:
                self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            migrate(self.conn)
            # The root page of each large table read once: a nightly rescan with nothing new reads
            # these tables through their indexes only (a full read of a million rows was most of
            # its time), and would otherwise not notice a damaged table at all.
            for table in PROBED_TABLES:
                self.conn.execute(f"SELECT * FROM {table} NOT INDEXED LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"cannot open database {path}: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    def reader(self):
        """The same database opened again, read-only: reads beside a write this connection is
        making in another thread (store.writer); they see what was committed before it."""
        return type(self)(self.path, readonly=True)

    @contextmanager
    def write(self, small_statements: bool = False) -> Iterator[None]:
        """One atomic write; BEGIN IMMEDIATE so a concurrent writer fails early, not mid-way.

        `small_statements`: each statement of the write changes a few rows (the batches a scan
        saves, one statement a row): their statement journals are then kept in memory. Inside a
        transaction, a statement that may fail half-way (a foreign key, a trigger) first copies
        each page it changes that the transaction changed before, so that it alone can be undone.
        SQLite keeps those copies in memory up to 64 KiB, then in a temporary file until the
        transaction ends (rewritten from its start by each statement). A batch's statements touch
        pages the batch already changed: a scan of 20,200 files wrote 1.2 GB to such files (618,786
        writes) for a 123 MB database. In memory, each statement's copies are freed as it ends. Not
        for every write: a statement that changes much of a large table (signing everything again,
        a migration) would hold a copy of each page it changes in memory."""
        if small_statements:
            self.conn.execute("PRAGMA temp_store = MEMORY")
        try:
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
        finally:
            if small_statements:
                self.conn.execute("PRAGMA temp_store = DEFAULT")

    # ------------------------------------------------------------------ settings and stamps

    def _set(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _forget_verdicts(self, ids: list[int]) -> None:
        """Inside a write: the verified pairs of documents that changed no longer stand, and their
        rows in the candidate index neither (they are matched again as new)."""
        rows = [(i,) for i in ids]
        self.conn.executemany("DELETE FROM verdicts WHERE lo = ?", rows)
        self.conn.executemany("DELETE FROM verdicts WHERE hi = ?", rows)
        self.conn.executemany("DELETE FROM indexed_documents WHERE document_id = ?", rows)
        self.conn.executemany("INSERT OR IGNORE INTO unattributed (document_id) VALUES (?)", rows)

    def _forget_index(self) -> None:
        """Inside a write: no document is indexed any more (every verdict was dropped, or the
        segment files are gone): the next clustering indexes and matches every text again."""
        self.conn.execute("DELETE FROM index_segments")
        self.conn.execute("DELETE FROM indexed_documents")

    def stamp(self, key: str) -> str | None:
        """What the stored results of one stage were computed with (see pipeline.Stamps)."""
        return self._get(key)

    def set_stamp(self, key: str, value: str) -> None:
        with self.write():
            self._set(key, value)

    def clustering_is_current(self, stamp: str) -> bool:
        """True when no document changed since clusters were computed with this stamp."""
        return self._get("clusters_stamp") == stamp and self._get("documents_changed") == "0"

    # ------------------------------------------------------------------ indexes a first scan defers

    def is_empty(self) -> bool:
        """No document stored: a first scan's database (schema.DEFERRED_INDEXES)."""
        return self.conn.execute("SELECT 1 FROM documents LIMIT 1").fetchone() is None

    def has_index(self, name: str) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
            is not None
        )

    def drop_deferred_indexes(self) -> None:
        """Drop the indexes a first scan fills the documents table without (schema.DEFERRED_INDEXES)."""
        with self.write():
            for name in DEFERRED_INDEXES:
                self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    def restore_indexes(self, names: Iterable[str] = tuple(DEFERRED_INDEXES)) -> None:
        """Make again those of the deferred indexes (`names`) that are missing (every scan asks)."""
        present = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        missing = [name for name in names if name not in present]
        if missing:
            with self.write():
                for name in missing:
                    self.conn.execute(DEFERRED_INDEXES[name])

    # ------------------------------------------------------------------ runs

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
