"""Browse a dedup database in Datasette: the shipped metadata (table and column descriptions,
canned queries, full-text search) and a server over one database, opened read-only; and the one
write it asks for, making the texts searchable (`index_texts`, under the scan lock).

Datasette is optional (`pip install 'crawl-dedup-zh[datasette]'`); nothing here imports it until
a server or an instance is asked for. The metadata lives in `dedup/data/datasette.yaml` (package
data, read through importlib.resources); its database section is keyed `DATABASE_KEY`, re-keyed
here to the name Datasette gives the file being served.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from dedup.dbfile import ScanLock, identify, open_for_reading
from dedup.errors import DedupError, LockedError, NotFoundError
from dedup.store.schema import MIGRATIONS

METADATA_FILE = "datasette.yaml"
# Datasette names a database after its file's stem: the shipped metadata is keyed for dedup.db,
# the default --db, so that `datasette dedup.db -m PATH` works as it is.
DATABASE_KEY = "dedup"
INSTALL_HINT = "pip install 'crawl-dedup-zh[datasette]'"
# Datasette stops a query after 1 s by default. A search of one or two characters cannot use a
# trigram index, nor can any search of the texts before `--index-text`: it reads every text (~80 ms
# per 10,000 documents measured on /tmp/c10k, 2 cores under load): 3 s lets it run on a crawl of a
# few hundred thousand pages.
SQL_TIME_LIMIT_MS = 3000
DEFAULT_PORT = 8001
DEFAULT_HOST = "127.0.0.1"


def metadata_path() -> Path:
    """Where the shipped metadata file is (for `datasette DB -m PATH`)."""
    path = resources.files("dedup") / "data" / METADATA_FILE
    if not isinstance(path, Path) or not path.is_file():
        # Only an install from a zip archive lacks a real file; the metadata is still readable.
        raise DedupError(f"the Datasette metadata is not a file on disk ({path}): use `dedup datasette`")
    return path


def database_name(db: Path | str) -> str:
    """The name Datasette gives a database file (its URL path): the file name without suffix."""
    return Path(db).stem


def load_metadata(database: str = DATABASE_KEY) -> dict[str, Any]:
    """The shipped metadata, its database section keyed `database`."""
    yaml = _require("yaml")
    text = (resources.files("dedup") / "data" / METADATA_FILE).read_text(encoding="utf-8")
    meta = yaml.safe_load(text)
    dbs = meta.get("databases", {})
    if database != DATABASE_KEY and DATABASE_KEY in dbs:
        dbs[database] = dbs.pop(DATABASE_KEY)
    return meta


def check_database(db: Path) -> None:
    """A dedup database of this version: refused with advice otherwise (missing, another
    application's, an older schema without the full-text index). Nothing is written."""
    conn = open_for_reading(db, len(MIGRATIONS))
    try:
        conn.execute("SELECT 1 FROM documents_fts LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise DedupError(f"database {db}: full-text index unusable ({exc}): run `dedup scan` on it") from None
    finally:
        conn.close()


@dataclass(frozen=True)
class TextIndex:
    """What `index_texts` did."""

    documents: int  # documents the texts' index covers
    seconds: float
    already: bool  # text search was on before: nothing was rebuilt


def index_texts(db: Path) -> TextIndex:
    """Make the texts searchable (store.SearchMixin.enable_text_search): every later scan keeps the
    index up to date. The database is opened for writing (and migrated, as a scan would) under the
    scan lock: the rebuild holds SQLite's write lock for seconds, which a scan would wait on and then
    fail."""
    from dedup.store import Store  # here: serving needs no sqlite-utils

    if not identify(db).exists:  # Store would make an empty database there
        raise NotFoundError(f"no database at {db}: run `dedup scan CRAWL_DIR --db {db}` first")
    try:
        lock = ScanLock(db).acquire()
    except LockedError:
        raise LockedError(f"a dedup scan is running on {db}: index the texts when it has ended") from None
    with lock:
        store = Store(db)
        try:
            already = store.text_search_enabled()
            t0 = time.perf_counter()
            n = store.enable_text_search()
            return TextIndex(n, round(time.perf_counter() - t0, 2), already)
        finally:
            store.close()


def make_datasette(db: Path, settings: dict[str, Any] | None = None):
    """A Datasette instance over `db` with the shipped metadata (tests call it through `.client`)."""
    app = _require("datasette.app")
    return app.Datasette(
        files=[str(db)],
        metadata=load_metadata(database_name(db)),
        settings={"sql_time_limit_ms": SQL_TIME_LIMIT_MS, **(settings or {})},
    )


def serve(db: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Run Datasette on `db` until interrupted (what `datasette serve DB -m PATH` does)."""
    check_database(db)
    ds = make_datasette(db)
    uvicorn = _require("uvicorn")
    uvicorn.run(ds.app(), host=host, port=port, log_level="info", lifespan="on", workers=1)


def _require(module: str):
    """Import a module of the `datasette` extra, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DedupError(f"Datasette is not installed: {INSTALL_HINT}") from None
