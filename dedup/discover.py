"""Walk a crawl root and list the files the readers understand, in a stable order."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from dedup.models import SourceFile

KINDS = {
    ".html": "html",
    ".htm": "html",
    ".shtml": "html",
    ".xhtml": "html",
    ".txt": "txt",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def kind_of(name: str) -> str | None:
    """The reader kind of a file name, or None when no reader handles it."""
    return KINDS.get(os.path.splitext(name)[1].lower())


def container_kind(name: str) -> str | None:
    """'warc' for .warc / .warc.gz, 'gzip' for a reader's extension + .gz (.html.gz, .jsonl.gz ...), else None."""
    lower = name.lower()
    if lower.endswith((".warc", ".warc.gz")):
        return "warc"
    if lower.endswith(".gz") and kind_of(name[:-3]) is not None:
        return "gzip"
    return None


def discover_files(root: Path) -> Iterator[tuple[SourceFile | None, str]]:
    """Yield (SourceFile without bytes, relative path) for every file; None for unsupported ones.

    Hidden files and directories (a crawler's state, `.git`) are not part of the crawl.
    """
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            kind = kind_of(name) or container_kind(name)
            if kind is None:
                yield None, rel
                continue
            try:
                st = full.stat()
            except OSError:
                yield None, rel
                continue
            yield SourceFile(path=rel, kind=kind, size=st.st_size, mtime=st.st_mtime, sha1=""), rel


def read_source(root: Path, sf: SourceFile) -> SourceFile:
    """Fill in the bytes and their SHA-1."""
    data = (Path(root) / sf.path).read_bytes()
    sf.data = data
    sf.sha1 = hashlib.sha1(data).hexdigest()
    sf.size = len(data)
    return sf
