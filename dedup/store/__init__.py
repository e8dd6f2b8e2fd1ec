"""The only sqlite-utils user: schema migrations, batched atomic writes and the queries.

Tables (browse them with `sqlite3` or `dedup datasette`), and the module that writes them:
  runs                one row per scan: root, parameters, counts, status                        base
  settings            key/value: stamps of what stored results were computed with               base
  files               every file seen: size, mtime, sha1, name bytes,
                      status (ok | skipped | unreadable | unsupported | gone)                   files
  documents           one row per article (a .jsonl line is one): metadata, text, hashes,
                      signature, status (pending | ok | too_short | skipped | gone)             files, signing
  skipped             files, folders and records that could not be read, with the reason       files, signing
  site_lines          short lines counted per site (the evidence boilerplate is learned from)   files, signing
  site_lines_once     keys of the short lines seen on one page of their site only            files
  learned_boilerplate the lines learned as a site's boilerplate, with their share of its pages  signing
  windows             signatures of overlapping windows of long texts                           signing
  sites               each site's names and role (publisher | platform | farm), and why         results
  clusters            one row per story: size, probable original, confidence, reasons           results
  memberships         document x cluster: role (original | copy | compilation), similarity,
                      parent, score                                                             results
  evidence            the weighted evidence behind each attribution                             results
  documents_fts       full-text index (FTS5 trigram) of documents' titles and 原标题 lines:
                      new rows added per batch, changes and deletes by triggers (migration 20)  files
  texts_fts           full-text index (FTS5 trigram) of documents' texts, opt-in: empty until
                      enable_text_search (settings text_search = 1) adds its triggers           search

`dedup datasette` (dedup.browse) serves them with descriptions and canned queries.

Modules: `schema` (MIGRATIONS, the runner), `base` (Connection: open, write(), settings, stamps,
runs), `files` (what reading files writes), `signing` (learned boilerplate, signatures), `index`
(what clustering reads), `results` (clusters saved, and the queries), `search` (text search on and
off). `Store` is all of them.
"""

from __future__ import annotations

from dedup.store.base import Connection, now
from dedup.store.files import DOC_COLUMNS, FileOutcome, FileProblem, FilesMixin, FileState
from dedup.store.index import IndexMixin
from dedup.store.report_queries import ReportQueriesMixin
from dedup.store.results import ClusterChanges, ResultsMixin
from dedup.store.schema import MIGRATIONS
from dedup.store.search import SearchMixin
from dedup.store.signing import SignedRow, SignedText, SigningMixin

__all__ = [
    "DOC_COLUMNS",
    "MIGRATIONS",
    "ClusterChanges",
    "FileOutcome",
    "FileProblem",
    "FileState",
    "SignedRow",
    "SignedText",
    "Store",
    "now",
]


class Store(SearchMixin, ReportQueriesMixin, ResultsMixin, IndexMixin, SigningMixin, FilesMixin, Connection):
    """A dedup database."""
