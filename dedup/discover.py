"""Walk a crawl root and list the files the readers understand, in a stable order.

The crawl is written by crawlers that leave debris, and the scan runs unattended: discovery never
opens anything. It looks at every entry with lstat/stat only, so a FIFO (which would block the
scan forever), a device (/dev/zero never ends), a link out of the crawl, a file too large for memory
or a directory that cannot be listed is reported as a `Found` with a `problem` instead of read.
`read_source` then opens only regular files, re-checks what it opened and reads at most the cap.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from dedup.models import MAX_FILE_SIZE, SourceFile

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

READ_CHUNK = 16 * 2**20  # read() size past the first read (which asks for the whole file at once)

ROOT_KEY = "."  # the `path` of a problem about the crawl root itself

_FILE_TYPES = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "directory"),
)


class Found(NamedTuple):
    """One entry of the crawl: a file to read, a file no reader handles, or something not read and why.

    A named tuple: made once per file of the crawl on every scan, it cost a third of discovery's
    time as a frozen dataclass. A readable file carries its kind, size and mtime, and its
    `SourceFile` is made only when asked for (`source`): a nightly rescan compares the size and
    mtime of every file and reads only the few that changed."""

    path: str  # display/storage key, '/'-separated, valid UTF-8 (bytes that are not UTF-8 appear as \\xNN)
    fs_path: str  # what os functions need (surrogateescape), relative to the root
    problem: str | None = None  # why it is not read (special file, outside link, too large, unlistable dir ...)
    is_dir: bool = False  # the problem is a directory whose contents are unknown: files stored under it stand
    supported: bool = True  # False: a regular file no reader handles (image, .css): nothing to read, no problem
    kind: str | None = None  # the reader kind of a readable file (None when there is a problem or no reader)
    size: int = 0
    mtime: float = 0.0
    follow_link: bool = False  # a symbolic link discovery checked: opened following it

    @property
    def source(self) -> SourceFile | None:
        """A readable regular file of a known kind, ready for read_source (a new one each time); else None."""
        if self.kind is None or self.problem is not None:
            return None
        return SourceFile(
            path=self.path,
            kind=self.kind,
            size=self.size,
            mtime=self.mtime,
            sha1="",
            fs_path="" if self.fs_path == self.path else self.fs_path,
            name_bytes=name_bytes(self.fs_path),
            follow_link=self.follow_link,
        )


class ReadRefused(ValueError):
    """read_source will not read this file (not a regular file, too large); the message is the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def kind_of(name: str) -> str | None:
    """The reader kind of a file name, or None when no reader handles it."""
    dot = name.rfind(".")
    if dot <= 0 or (name[0] == "." and not name[:dot].lstrip(".")):
        return KINDS.get("")  # no extension, as os.path.splitext says of ".bashrc" (leading dots)
    # The extension as os.path.splitext gives it, without its general path handling: this runs
    # for every file of the crawl on every scan.
    return KINDS.get(name[dot:].lower())


def container_kind(name: str) -> str | None:
    """'warc' for .warc / .warc.gz, 'gzip' for a reader's extension + .gz (.html.gz, .jsonl.gz ...), else None."""
    lower = name.lower()
    if lower.endswith((".warc", ".warc.gz")):
        return "warc"
    if lower.endswith(".gz") and kind_of(name[:-3]) is not None:
        return "gzip"
    return None


def display_path(fs_path: str) -> str:
    """A file system name (str with surrogate-escaped bytes) as valid UTF-8: byte 0xB2 becomes '\\xb2'.

    Built from the bytes, so the key is the same whatever the locale's file system encoding.
    """
    if fs_path.isascii():  # most names: their bytes are the string (no escaped byte is ASCII)
        return fs_path
    return os.fsencode(fs_path).decode("utf-8", "backslashreplace")


def name_bytes(fs_path: str) -> bytes | None:
    """The raw bytes of a name that is not valid UTF-8 (to store faithfully); None for a UTF-8 name."""
    if fs_path.isascii():
        return None
    raw = os.fsencode(fs_path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


def is_under(dir_path: str, path: str) -> bool:
    """Whether `path` lies in the directory `dir_path` (both display keys; ROOT_KEY holds everything)."""
    return dir_path == ROOT_KEY or path.startswith(dir_path.rstrip("/") + "/")


def human_size(n: int) -> str:
    """'300 MB' (MiB, as the cap is counted), '12.5 KB', '900 bytes'."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def too_large(size: int, cap: int) -> str:
    return f"file too large: {human_size(size)} > {human_size(cap)} cap"


def _type_name(mode: int) -> str:
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return f"unknown type 0o{stat.S_IFMT(mode):o}"


def _inside(target: str, root_real: str) -> bool:
    return target == root_real or target.startswith(root_real.rstrip(os.sep) + os.sep)


def _link_problem(full: str, root_real: str, follow_symlinks: bool) -> str | None:
    """Why a symbolic link is not followed, or None when it may be."""
    try:
        os.stat(full)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return f"broken symbolic link: -> {display_path(_readlink(full))}"
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (too many levels of symbolic links)"
        return f"cannot follow symbolic link: {exc.strerror}"
    target = os.path.realpath(full)
    if not follow_symlinks and not _inside(target, root_real):
        return f"symbolic link leads outside the crawl root: -> {display_path(target)}"
    return None


def _readlink(full: str) -> str:
    try:
        return os.readlink(full)
    except OSError:
        return "?"


def discover_files(
    root: Path,
    follow_symlinks: bool = False,
    max_file_size: int = MAX_FILE_SIZE,
    unchanged: Callable[[str, int, float], bool] | None = None,
    top: str | None = None,
    subdirs: list[str] | None = None,
) -> Iterator[Found]:
    """Every entry of the crawl, one `Found` each, in a stable order (names sorted, a directory's files first).

    Hidden files and directories (a crawler's state, `.git`) are not part of the crawl. Nothing is opened:
    - a regular file of a known kind gets a `source`; of an unknown kind, `supported=False`;
    - a FIFO, socket or device, a link leaving the root (unless `follow_symlinks`), a broken link and a
      file over `max_file_size` get a `problem` and are not read;
    - a directory that cannot be listed gets a `problem` with `is_dir=True` (the root itself: ROOT_KEY).
    A symbolic link to a file inside the root is read as that file under its own path. Links to
    directories are only descended with `follow_symlinks`, and then only into a directory (by device and
    inode) not walked yet and not among the real directories listed so far, so link loops end.

    `unchanged(path, size, mtime)`, when given, is asked about each regular file (not a link, not over
    the cap) as soon as it is stat'ed: a file it says is unchanged (the caller keeps count of it) is
    not yielded, nor made into a `Found`. A nightly rescan compares 100,000 files and reads a few.

    A walk in parts (ingest.plan_files walks them in two processes): with `subdirs` (a list to
    fill), only the root's own entries, the directories it would descend into appended to it in
    walk order; with `top`, one of those, all below it. The root's part, then each directory's in
    that order, give what one walk gives. Not with `follow_symlinks` (its loop check is the whole
    walk's).
    """
    if (top is not None or subdirs is not None) and follow_symlinks:
        raise ValueError("a walk in parts does not follow symbolic links")
    root_str = os.fspath(root)
    root_real = os.path.realpath(root_str)
    unlisted: list[OSError] = []
    visited: set[tuple[int, int]] = set()
    try:
        st = os.stat(root_str)
        visited.add((st.st_dev, st.st_ino))
    except OSError:
        pass  # os.walk reports it through onerror

    under_root = os.path.join(root_str, "")

    def rel_of(full: str) -> str:
        # The walk joins names onto the root: a prefix to cut (os.path.relpath, once per folder,
        # was an eighth of a rescan's discovery).
        rel = (full[len(under_root) :] or ".") if full.startswith(under_root) else os.path.relpath(full, root_str)
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def problem(rel: str, reason: str, is_dir: bool = False) -> Found:
        return Found(path=display_path(rel), fs_path=rel, problem=reason, is_dir=is_dir)

    def unlistable(exc: OSError) -> Iterator[Found]:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return  # removed (or replaced by a file) while the walk ran: gone, not unreadable
        where = exc.filename if isinstance(exc.filename, str) else root_str
        rel = rel_of(where)
        yield problem(ROOT_KEY if rel == "." else rel, f"cannot list directory: {exc.strerror}", is_dir=True)

    start = root_str if top is None else os.path.join(root_str, top)
    walk = _walk(start, onerror=unlisted.append, followlinks=follow_symlinks)
    for dirpath, dirnames, filenames, dir_links in walk:
        # os.walk calls onerror before it moves on, so an error is reported in walk order.
        while unlisted:
            yield from unlistable(unlisted.pop(0))
        rel_dir = rel_of(dirpath)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        real: list[str] = []
        links: list[str] = []
        for d in sorted(dirnames):
            if not d.startswith("."):
                (links if d in dir_links else real).append(d)
        for d in real if follow_symlinks else ():  # (only links followed can lead back into them)
            try:
                st = os.stat(os.path.join(dirpath, d))
                visited.add((st.st_dev, st.st_ino))
            except OSError:
                pass  # os.walk reports it when it gets there
        keep = set(real)
        link_problems: list[Found] = []  # reported after the folder's files, where the walk would go next
        for d in links:
            full = os.path.join(dirpath, d)
            if not follow_symlinks:
                # A link to a directory inside the root is not descended (its files are reached by their
                # own path); one that leaves the root is reported.
                why = _link_problem(full, root_real, follow_symlinks)
                if why:
                    link_problems.append(problem(prefix + d, why))
                continue
            try:
                st = os.stat(full)
            except OSError as exc:
                link_problems.append(problem(prefix + d, f"cannot follow symbolic link: {exc.strerror}"))
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:
                continue  # a loop (an enclosing directory), or a directory walked already or about to be
            visited.add(key)
            keep.add(d)
        dirnames[:] = [d for d in sorted(dirnames) if d in keep]
        if subdirs is not None:  # the root's part: its directories are walked as parts of their own
            subdirs.extend(dirnames)
            dirnames[:] = []
        here = os.path.join(dirpath, "")  # joined once per folder, not once per file
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full, rel = here + name, prefix + name
            if unchanged is not None and _unchanged(full, rel, max_file_size, unchanged):
                continue
            found = _file(full, name, rel, root_real, follow_symlinks, max_file_size)
            if found is not None:
                yield found
        yield from link_problems
    while unlisted:
        yield from unlistable(unlisted.pop(0))


def _walk(top: str, onerror, followlinks: bool) -> Iterator[tuple[str, list[str], list[str], set[str]]]:
    """os.walk top-down, without recursion: Python 3.11's os.walk recurses once per level, so a
    crawl nested 1,000 folders deep raised RecursionError and stopped the whole scan. The caller
    may prune `dirnames` in place, as with os.walk. Also yields which of `dirnames` are symbolic
    links, as the listing says (os.path.islink per folder, twice, was ~20,000 lstat calls of a
    100k crawl's rescan)."""
    stack = [top]
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as exc:
            onerror(exc)
            continue
        dirnames: list[str] = []
        filenames: list[str] = []
        links: set[str] = set()
        for e in entries:
            try:
                is_dir = e.is_dir()  # follows links, as os.walk does
            except OSError:
                is_dir = False
            if is_dir:
                dirnames.append(e.name)
                if _is_link(e):
                    links.add(e.name)
            else:
                filenames.append(e.name)
        yield path, dirnames, filenames, links
        for d in reversed(dirnames):
            if followlinks or d not in links:
                stack.append(os.path.join(path, d))


def _is_link(entry: os.DirEntry) -> bool:
    """As os.path.islink: False when it cannot tell."""
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _unchanged(full: str, rel: str, cap: int, unchanged: Callable[[str, int, float], bool]) -> bool:
    """discover_files' question about one file: a regular file within the cap that `unchanged`
    says is as it was. Anything else (a link, a special file, one that cannot be stat'ed) goes the
    way of every file (_file), which stats it again. No `Found` is made for the files kept: ~1.2 us
    less a file of the ~8.6 a rescan's walk spent on each at 100k."""
    try:
        st = os.lstat(full)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size <= cap and unchanged(display_path(rel), st.st_size, st.st_mtime)


def _file(full: str, name: str, rel: str, root_real: str, follow: bool, cap: int) -> Found | None:
    """One file entry (a link or special file included) at `full`; None when it vanished since it was listed."""
    path = display_path(rel)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Found(path, rel, f"cannot stat: {exc.strerror}")
    is_link = stat.S_ISLNK(st.st_mode)
    if is_link:
        why = _link_problem(full, root_real, follow)
        if why:
            return Found(path, rel, why)
        try:
            st = os.stat(full)
        except OSError as exc:
            return Found(path, rel, f"cannot follow symbolic link: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return Found(path, rel, f"not a regular file ({_type_name(st.st_mode)})")
    kind = kind_of(name) or container_kind(name)
    if kind is None:
        return Found(path, rel, supported=False)
    if st.st_size > cap:
        return Found(path, rel, too_large(st.st_size, cap))
    return Found(path, rel, None, False, True, kind, st.st_size, st.st_mtime, is_link)  # positional: per file


def read_source(root: Path | str, sf: SourceFile, max_file_size: int = MAX_FILE_SIZE) -> SourceFile:
    """Fill in the bytes and their SHA-1.

    Raises OSError (open/read failed, strerror says why) or ReadRefused: the path is no longer a regular
    file (a FIFO or device put there since discovery), a link appeared where a file was, or the file is
    larger than `max_file_size` (it may grow between discovery and reading: at most cap + 1 bytes are read).
    """
    full = os.path.join(os.fspath(root), sf.fs_path or sf.path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not sf.follow_link:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(full, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not sf.follow_link and os.path.islink(full):
            raise ReadRefused("became a symbolic link since it was listed: not followed") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ReadRefused(f"not a regular file ({_type_name(st.st_mode)})")
        if st.st_size > max_file_size:
            raise ReadRefused(too_large(st.st_size, max_file_size))
        chunks: list[bytes] = []
        total = 0
        want = st.st_size + 1  # the whole file and the end of it in one read, usually
        while total <= max_file_size:
            chunk = os.read(fd, min(want, max_file_size + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            want = READ_CHUNK
        if total > max_file_size:
            raise ReadRefused(f"file too large: grew past the {human_size(max_file_size)} cap while being read")
    finally:
        os.close(fd)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one read: no copy
    sf.data = data
    sf.sha1 = hashlib.sha1(data).hexdigest()
    sf.size = len(data)
    return sf
