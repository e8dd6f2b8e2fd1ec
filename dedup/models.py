"""Plain data passed between the pipeline stages; no I/O here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from dedup.errors import ConfigError

# Roles a member can have in a cluster.
ROLE_ORIGINAL = "original"
ROLE_COPY = "copy"
ROLE_COMPILATION = "compilation"


@dataclass(frozen=True)
class Params:
    """Every knob that changes what the scan computes; `fingerprint` names the combination."""

    shingle_size: int = 3  # word k-shingles
    num_perm: int = 128
    seed: int = 1
    scheme: str = "affine32"  # datasketch 2.x permutation scheme, stored with the signatures
    lsh_bands: int = 42
    lsh_rows: int = 3
    jaccard_threshold: float = 0.5  # a verified pair at or above this is a copy
    containment_threshold: float = 0.8  # ... or the smaller text is this much inside the larger
    compilation_part: float = 0.75  # a story inside a compilation is at most this share of it
    window_size: int = 240  # long texts also get signatures of windows of this many shingles,
    window_step: int = 60  # every this many shingles, to find short texts inside them
    min_shingles: int = 20  # fewer shingles: too little content to ever join a cluster
    max_number_conflicts: int = 1  # this many numbers contradicted: template siblings, not copies
    max_substitutions: int = 2  # this many names/numbers swapped in the same context: siblings
    tokenizer: str = "jieba-0.42 precise HMM=off"
    shingle_hash: str = "crc32"  # hash of a shingle before the MinHash permutations

    def __post_init__(self) -> None:
        if self.shingle_size < 1:
            raise ConfigError("shingle_size must be >= 1")
        if self.lsh_bands * self.lsh_rows > self.num_perm:
            raise ConfigError(
                f"lsh_bands * lsh_rows = {self.lsh_bands * self.lsh_rows} exceeds "
                f"num_perm = {self.num_perm}: lower the bands or rows"
            )
        if self.max_number_conflicts < 1:
            raise ConfigError("max_number_conflicts must be >= 1")
        for name in ("jaccard_threshold", "containment_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{name} must be in (0, 1], got {value}")
        if not 0 < self.window_step <= self.window_size:
            raise ConfigError("window_step must be in (0, window_size]")
        if self.min_shingles < 1:
            raise ConfigError("min_shingles must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def signature_fingerprint(self) -> str:
        """Hash of the knobs that shape a document's signature (stored signatures need it equal)."""
        keys = ("shingle_size", "num_perm", "seed", "scheme", "tokenizer", "shingle_hash", "window_size", "window_step")
        blob = json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


# Seconds one file may take to be read and extracted (or one document to be signed) in a worker
# before the worker is killed and the file skipped: a 256 MB WARC takes about a minute here.
FILE_TIMEOUT_S = 300.0
# The largest file read. A file is held in memory whole while it is read (and a WARC or .gz file's
# pages beside it), in each of the worker processes at once, so this bounds the scan's memory: 4
# workers x 256 MiB stays within a small server. A news page is at most a few MB and a feed or WARC
# file of a daily crawl usually well under this; a bigger file is reported, not read (a crawler that
# writes 1 GB WARC files needs a bigger cap, `max_file_size`).
MAX_FILE_SIZE = 256 * 2**20


@dataclass(frozen=True)
class ScanOptions:
    """How a scan reads the crawl and guards the database (what it computes is in Params)."""

    jobs: int | None = None  # worker processes (default: CPUs, at most 4)
    follow_symlinks: bool = False  # follow links that leave the crawl root
    max_file_size: int = MAX_FILE_SIZE  # bytes; larger files are skipped unread
    file_timeout: float = FILE_TIMEOUT_S  # seconds one file may take to read and extract
    allow_mass_removal: bool = False  # let a scan mark most stored files gone
    wait: float = 0.0  # seconds to wait for another scan's lock before giving up
    engine: str = "local"  # where the heavy stages run: local worker processes, or ray (dedup.engine)
    address: str | None = None  # the Ray cluster to join (None: start one here); engine ray only


@dataclass(slots=True)  # a first scan of a million files holds a million (274 -> 226 bytes each, path included)
class SourceFile:
    """One file found under the crawl root."""

    path: str  # relative to the crawl root, '/'-separated, valid UTF-8 (other bytes shown as \xNN)
    kind: str  # html | txt | json | jsonl | warc | gzip
    size: int
    mtime: float
    sha1: str
    data: bytes = field(repr=False, default=b"")
    known_sha1: str = ""  # what the store holds for this path: equal bytes need no reading
    fs_path: str = ""  # the name to open, relative to the root (surrogate-escaped bytes); "" = same as path
    name_bytes: bytes | None = None  # the raw bytes of the relative path when they are not UTF-8 (path escapes them)
    follow_link: bool = False  # the path is a symbolic link discovery checked: open it following the link


@dataclass
class Skipped:
    """A file or record that could not be read, with the reason (stored, counted, printed)."""

    path: str
    reason: str


@dataclass
class Document:
    """One article: what the page says, before comparison."""

    path: str  # relative path, '#N' appended for the N-th record of a .jsonl file
    file_path: str
    kind: str
    site: str = ""
    url: str = ""
    canonical_url: str = ""
    title: str = ""
    published_at: str | None = None  # ISO 8601 with offset
    time_source: str | None = None  # where the time came from (meta, text, json, ...)
    time_confidence: float = 0.0
    fetched_at: str | None = None  # when the crawler fetched the page (WARC-Date): not a publish time
    credits: list[str] = field(default_factory=list)  # names in 来源/转载自/... lines
    original_title: str = ""  # what a 原标题 line says the story was first called
    site_names: list[str] = field(default_factory=list)  # names the page gives its own site
    text: str = ""  # main text as published
    encoding: str = "utf-8"
    # filled by the shingling stage
    content_hash: str = ""
    n_tokens: int = 0
    n_shingles: int = 0
    numbers: list[str] = field(default_factory=list)
    anchors: list[tuple[int, int]] = field(default_factory=list)  # (context, word) hashes of names and numbers
    boilerplate: list[str] = field(default_factory=list)  # platform boilerplate found in the text
    signature: bytes = field(default=b"", repr=False)
    windows: list[tuple[int, bytes]] = field(default_factory=list, repr=False)  # (shingles, signature)
    samples: bytes = field(default=b"", repr=False)  # uint32 sampled shingle hashes (signature.SAMPLE_MOD)
    words: bytes = field(default=b"", repr=False)  # the tokens it was signed from, packed (shingle.pack_words)
    status: str = "ok"  # ok | too_short
    lines: set[str] = field(default_factory=set, repr=False)  # short lines, for learning (not stored)


@dataclass
class RunSummary:
    run_id: int
    root: str
    status: str = "running"  # running | done | interrupted | refused | failed (| killed, set by the next run)
    files_seen: int = 0
    files_read: int = 0  # new + changed + retried: the files this run opened
    files_new: int = 0  # never seen before (or gone and back)
    files_changed: int = 0  # seen before, other size or time (read again; equal bytes keep their documents)
    files_unchanged: int = 0
    files_gone: int = 0  # no longer under the root: their documents leave the clusters
    files_skipped: int = 0  # could not be read at all this run (kept as they were, retried next run)
    documents: int = 0
    documents_new: int = 0
    skipped: int = 0
    skipped_new: int = 0  # skipped in this run (`skipped` counts all stored)
    too_short: int = 0
    clusters: int = 0
    clustered_documents: int = 0
    compilations: int = 0
    boilerplate_sites_changed: int = 0  # sites whose learned boilerplate changed in this run
    documents_resigned: int = 0  # signed again because what shapes signatures changed
    documents_signed_read: int = 0  # new or changed documents of settled sites, signed as they were read
    documents_signed: int = 0  # documents signed by the sign stage (the rest of the new, and those learning changed)
    clusters_new: int = 0
    clusters_grown: int = 0
    clusters_merged: int = 0
    clusters_split: int = 0
    originals_changed: int = 0
    pairs_verified: int = 0  # candidate pairs verified in this run
    pairs_known: int = 0  # candidate pairs found again whose verdict an earlier run had stored
    clusters_attributed: int = 0  # clusters whose original was picked (again) in this run; the rest kept theirs
    documents_regrouped: int = 0  # documents whose clusters were worked out again in this run; the rest kept theirs
    notes: list[str] = field(default_factory=list)  # what this run did that a user should know of
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # read, sign, cluster, attribute
    skipped_examples: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped_examples"] = [asdict(s) for s in self.skipped_examples]
        return d
