"""The database file itself: is it ours, open it read-only or for writing, and the scan lock.

A cron job runs `dedup scan` every night with a path it was given once. Whatever sits at that path
must come to no harm: another application's SQLite file is refused before anything is written to
it (SQLite's `application_id` header field names the application, `PRAGMA application_id`), a
read-only command never migrates or writes, and two scans never run on one database at once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from dedup.errors import LockedError, NotFoundError, StoreError

# 'dedu' in ASCII: written to the header of every database dedup creates (offset 68).
APPLICATION_ID = 0x64656475
SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables a database made before the application id existed (schema version 1..6) must hold to be
# taken as ours; it is then stamped with the id on its first scan.
LEGACY_TABLES = frozenset({"runs", "settings", "files", "documents", "skipped", "clusters", "memberships"})
# How long a writer waits for SQLite's own lock (a reader mid-query) before giving up.
BUSY_TIMEOUT_S = 30
# How often `--wait` looks whether the scan lock was released.
LOCK_POLL_S = 0.2


@dataclass(frozen=True)
class Identity:
    """What the file at a database path is."""

    exists: bool  # False: no file, or an empty one (a new database may be made there)
    schema_version: int = 0
    stamped: bool = False  # carries dedup's application id (else a legacy dedup database)


def identify(path: Path) -> Identity:
    """Look at a database path without writing anything; refuse what is not a dedup database."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Identity(exists=False)
    except OSError as exc:
        raise StoreError(f"cannot open database {path}: {exc.strerror}") from None
    if path.is_dir():
        raise StoreError(f"cannot open database {path}: it is a directory")
    if size == 0:
        return Identity(exists=False)
    try:
        with path.open("rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise StoreError(f"cannot open database {path}: {exc.strerror}") from None
    if not head.startswith(SQLITE_MAGIC):
        raise StoreError(f"{path} is not a dedup database (not an SQLite file); refused, left untouched")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from None
    if app_id == APPLICATION_ID:
        return Identity(exists=True, schema_version=version, stamped=True)
    if app_id == 0 and version >= 1 and tables >= LEGACY_TABLES:
        return Identity(exists=True, schema_version=version, stamped=False)
    if app_id == 0 and not tables:
        return Identity(exists=False)  # an empty SQLite file: nothing in it to harm
    what = f"application id {app_id:#x}" if app_id else f"tables {', '.join(sorted(tables)[:4])}"
    raise StoreError(f"{path} is not a dedup database ({what}); refused, left untouched")


# Whether writing connections have SQLite check the schema's foreign keys. The store keeps them
# whole itself: clusters, files and runs are never deleted, and documents only in one place
# (store.files.FilesMixin._delete_documents), after what refers to them; tests of rescans (pages
# added, changed, removed, emptied) and benchmarks/reliability.py run `PRAGMA foreign_key_check`.
# Checked by SQLite, each membership and evidence row saved looked its document up (~0.7 CPU-s of
# a first scan's saves at 100k documents), and each document deleted read evidence, memberships
# and clusters whole three times over (none of the columns that refer to documents there has an
# index: 30 ms a document at 100k, 0.33 s at 1M, so a nightly run in which a site's 10,000 pages
# lost their article text would have taken most of an hour at 1M). The declarations stay in the
# schema (Datasette links rows by them).
ENFORCE_FOREIGN_KEYS = False


def connect(path: Path, writable: bool) -> sqlite3.Connection:
    """An autocommit connection; read-only ones cannot write even by mistake (mode=ro). A writable
    one may be used from another thread than the one that opened it, one thread at a time (a scan
    writes behind its read stage: dedup.store.writer)."""
    try:
        if writable:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA foreign_keys={'ON' if ENFORCE_FOREIGN_KEYS else 'OFF'}")
        else:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from None
    return conn


def open_for_reading(path: Path, schema_version: int) -> sqlite3.Connection:
    """A read-only connection to an existing dedup database of this schema version."""
    ident = identify(path)
    if not ident.exists:
        raise NotFoundError(f"no database at {path}: run `dedup scan CRAWL_DIR --db {path}` first")
    if ident.schema_version > schema_version:
        raise StoreError(f"database {path} has schema version {ident.schema_version}, newer than this dedup's")
    if ident.schema_version < schema_version:
        raise StoreError(
            f"database {path} was made by an older dedup (schema {ident.schema_version} < {schema_version}): "
            "run `dedup scan` on it once to upgrade it"
        )
    return connect(path, writable=False)


class ScanLock:
    """One scan per database: an exclusive flock on DB.lock, released by the kernel when the
    process ends however it ends, so a killed run never blocks the next one."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(str(db_path) + ".lock")
        self.fd: int | None = None

    def acquire(self, wait: float = 0.0) -> ScanLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise StoreError(f"cannot lock {self.path}: {exc.strerror}") from None
                if time.monotonic() >= deadline:
                    holder = self._holder(fd)
                    os.close(fd)
                    waited = f" after waiting {wait:g} s" if wait > 0 else ""
                    raise LockedError(
                        f"another dedup scan is running on {self.path.with_suffix('')}{holder}{waited}; "
                        "exiting (use --wait SECONDS to wait for it)"
                    ) from None
                time.sleep(LOCK_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode(), 0)
        self.fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f" ({text})" if text else ""

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self) -> ScanLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
