"""Reliability of `dedup scan`: hostile inputs, and kills in the middle of a scan.

    python benchmarks/reliability.py [--kills 20] [--seed 1] [--jobs 2] [--keep DIR] [--timeout S]
                                     [--per-kind auto|always|never] [--kind-timeout S] [--mem-gb 4]
                                     [--deep 1200] [--only a|b] [--b-files N] [--dedup CMD]

(A) Hostile inputs. Builds a crawl = a copy of ../shared/corpus/dev/crawl with debris of many kinds
mixed into its folders: a FIFO, symlinks to /dev/zero and /dev/urandom, symlinks to a file and to a
directory outside the root, a dangling symlink, symlink loops, file and directory names that are
not UTF-8 (GBK, latin-1) or hold control characters (these hold good pages), empty, binary and
truncated pages, a sparse file above the 256 MiB size cap, a gzip bomb and a cut gzip, damaged
WARCs, a .jsonl of good records mixed with broken lines, a .json that is `null`, 1,200 nested
directories, an unreadable file and directory, a directory named *.html, a socket, a page with NUL
bytes and one with 100,000 nested tags. It scans that crawl once with `dedup scan`, under a memory
limit (RLIMIT_AS) and a wall-clock limit (a hang is a failure), and counts:
  crashes    a traceback on stderr, a non-0 exit or a timeout of `scan`, `export` or `skipped`;
  lost       good documents (the dev corpus's, and the good pages and records planted with the
             debris) missing from `dedup export`, by path; a planted one also when exported with
             another title (mangled);
  leaked     pages reached through symlinks out of the root (or through a loop) that are exported.
As root, chmod 000 stops nothing, so the scans of (A) then run as user 65534 (the tree is made
world-readable, the database folder world-writable) or, when that user cannot run the interpreter
(a Python installed under /root), as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (dropped
from the bounding set before exec); when neither works, the chmod 000 kinds are reported as not
tested. When anything fails (or with --per-kind always) each builder's debris is scanned again
alone beside a few dev pages, to tell which kinds fail.

(B) Kills. A clean scan of a copy of the dev crawl (no debris: a hostile-input bug would hide the
kill results) times the scan. Then, into another database, until `--kills` kills have landed: start
the scan, SIGKILL its process group (the CLI and its workers) after a delay drawn uniformly in
[0.05, 0.95] of the expected length of the run, and check a copy of the killed database with
PRAGMA integrity_check and foreign_key_check. The expected length is the clean scan's at first, and
the length of the last run that ended before its kill after that (resumed runs have less to do).
Before every other run, and after a run that ended, the crawl changes a little (in turn: a page
edited, one renamed, 60 pages added (read and signed in workers again), one deleted, one added, a
record appended to a .jsonl), the same way in a reference copy. At the end the scan runs to
completion, and its export is compared with that of a clean scan of the reference copy into a fresh
database, cluster ids replaced by their smallest member path (ids are row ids: they depend on the
order documents came in). (B) uses the whole dev crawl: on a quiet 2-core machine the whole script
takes a few minutes; on a loaded one, --b-files N runs (B) on the first N files of the dev crawl.

Prints a short report, the two result sentences and one JSON line with all figures.
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dedup_command, live_processes  # noqa: E402

SHARED = HERE.parent / "shared"
NOBODY = 65534
HUGE = 300 * 2**20  # above the default 256 MiB size cap; sparse, so it costs nothing
DEEP = 1200  # nested directories (--deep): past Python's default recursion limit of 1000
TRACEBACK = b"Traceback (most recent call last)"
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # <linux/prctl.h>, <linux/capability.h>
AS_WHOM = {"": "", "user": "as user 65534 ", "caps": "as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH "}
PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}_示例新闻网</title>
<meta name="publishdate" content="{time}"></head><body><h1>{title}</h1>
<div class="info">时间：{time} 来源：示例新闻网</div><div class="content">{paras}</div>
<div class="footer">版权所有</div></body></html>"""


# --------------------------------------------------------------------------- running dedup


@dataclass
class Run:
    """One finished (or killed) command."""

    args: list[str]
    rc: int | None
    seconds: float
    timed_out: bool
    stdout: bytes
    stderr: bytes
    cpu: float = 0.0  # user + system seconds of the command and the workers it waited for

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.stderr

    @property
    def crashed(self) -> bool:
        return self.timed_out or self.rc != 0 or self.traceback

    def why(self) -> str:
        if self.timed_out:
            return f"timeout after {self.seconds:.0f} s"
        parts = []
        if self.rc is not None and self.rc < 0:
            parts.append(f"killed by signal {-self.rc}")
        elif self.rc:
            parts.append(f"exit {self.rc}")
        if self.traceback:
            parts.append("traceback")
        lines = [ln for ln in self.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        if (self.rc or self.traceback) and lines:
            parts.append(lines[-1].strip()[:160])
        return ", ".join(parts) or "ok"


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    return [pid for pid, fields in live_processes().items() if int(fields[2]) == pgid]


def kill_group(proc: subprocess.Popen) -> list[int]:
    """SIGKILL the process group of proc (started with start_new_session); the pids still alive after 5 s."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    deadline = time.monotonic() + 5
    while (alive := group_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


class Runner:
    """Starts dedup commands in their own session, under a memory limit, with less privilege on request."""

    def __init__(self, dedup: list[str], mem_bytes: int, logs: Path) -> None:
        self.dedup = dedup
        self.mem = mem_bytes
        self.logs = logs
        self.n = 0
        self.env = dict(os.environ)
        if dedup[1:3] == ["-m", "dedup"]:
            self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), self.env.get("PYTHONPATH")) if p)

    def _preexec(self, drop: str) -> Callable[[], None]:
        mem = self.mem
        libc = ctypes.CDLL(None, use_errno=True) if drop == "caps" else None

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if drop == "user":
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            elif libc is not None:  # root that the permission bits apply to: no DAC override after exec
                for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
                    if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

        return limit

    def start(self, args: list[str], name: str, drop: str = "", cmd: list[str] | None = None):
        """(Popen, stdout path, stderr path): output goes to files, never to pipes that could fill."""
        self.n += 1
        out, err = self.logs / f"{self.n:03d}-{name}.out", self.logs / f"{self.n:03d}-{name}.err"
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = subprocess.Popen(
                (cmd or self.dedup) + args,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                cwd=str(self.logs),
                env=self.env,
                start_new_session=True,
                preexec_fn=self._preexec(drop),
            )
        return proc, out, err

    def run(self, args: list[str], name: str, timeout: float, drop: str = "", cmd: list[str] | None = None) -> Run:
        t0, cpu0 = time.monotonic(), _children_cpu()
        proc, out, err = self.start(args, name, drop, cmd)
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_group(proc)  # on a timeout, and any worker a dead CLI left behind
        took, cpu = time.monotonic() - t0, _children_cpu() - cpu0
        return Run(args, proc.returncode, took, timed_out, out.read_bytes(), err.read_bytes(), cpu)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def parse_export(raw: bytes) -> tuple[list[dict], int, bool]:
    """(rows, lines that are not JSON, whether the output was valid UTF-8)."""
    try:
        text, valid = raw.decode("utf-8"), True
    except UnicodeDecodeError:
        text, valid = raw.decode("utf-8", "replace"), False
    rows, bad = [], 0
    for line in text.split("\n"):  # not splitlines(): U+2028 and U+0085 may stand unescaped inside a line
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("path"), str):
            rows.append(row)
        else:
            bad += 1
    return rows, bad, valid


# --------------------------------------------------------------------------- crawl material


class Stories:
    """Real news texts as pages and records with unique titles."""

    def __init__(self, path: Path, n: int = 400) -> None:
        self.items = []
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                s = json.loads(line)
                if len(s.get("paragraphs") or []) >= 3 and sum(map(len, s["paragraphs"])) > 400:
                    self.items.append(s)
                if len(self.items) >= n:
                    break
        self.i = 0

    def next(self, tag: str) -> tuple[str, list[str]]:
        s = self.items[self.i % len(self.items)]
        self.i += 1
        return f"{s['title']}（{tag}{self.i:03d}）", s["paragraphs"]

    def page(self, tag: str = "样本") -> tuple[str, bytes]:
        title, paras = self.next(tag)
        html = PAGE.format(title=title, time=f"2023-05-{self.i % 28 + 1:02d} 08:00",
                           paras="".join(f"<p>{p}</p>" for p in paras))  # fmt: skip
        return title, html.encode("utf-8")

    def record(self, tag: str = "记录") -> tuple[str, bytes]:
        title, paras = self.next(tag)
        obj = {"url": f"https://www.example-news.cn/feed/{self.i}.html", "title": title, "content": "\n".join(paras),
               "publish_time": f"2023-06-{self.i % 28 + 1:02d} 09:00:00", "source": "示例新闻网"}  # fmt: skip
        return title, json.dumps(obj, ensure_ascii=False).encode("utf-8")


def copy_tree(src: Path, dst: Path, only: set[str] | None = None) -> list[str]:
    """Copy the files with their times (not their read-only modes) of src into dst; their relative paths."""
    files = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(src)
        for name in sorted(filenames):
            rel = (rel_dir / name).as_posix()
            if only is not None and rel not in only:
                continue
            out = dst / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(dirpath) / name, out)
            st = os.stat(Path(dirpath) / name)
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))  # a copy is the same crawl, to the second
            files.append(rel)
    return files


# --------------------------------------------------------------------------- (A) the debris


@dataclass
class Bad:
    kind: str
    path: str  # relative to the root, non-UTF-8 bytes shown as \xNN
    marker: str  # ASCII text that a listing of this input contains


@dataclass
class Good:
    kind: str
    path: str  # the exact relative path; with `suffix`, a prefix
    title: str = ""
    suffix: str | None = None  # a non-UTF-8 name: however the tool spells it, prefix + ... + suffix

    def find(self, by_path: dict[str, dict]) -> dict | None:
        if self.suffix is None:
            return by_path.get(self.path)
        return next((r for p, r in by_path.items() if p.startswith(self.path) and p.endswith(self.suffix)), None)


@dataclass
class Plan:
    """A crawl under construction and what a scan of it must and must not give."""

    root: Path
    outside: Path
    rnd: random.Random
    stories: Stories
    dirs: list[Path]
    can_lock: bool
    deep: int = DEEP
    bad: list[Bad] = field(default_factory=list)
    good: list[Good] = field(default_factory=list)
    info: list[Good] = field(default_factory=list)  # pages in hostile places: found or not, only reported
    forbidden: list[str] = field(default_factory=list)  # paths, or prefixes ending in '/'
    forbidden_titles: list[str] = field(default_factory=list)
    locked: list[Path] = field(default_factory=list)
    untested: list[tuple[str, str]] = field(default_factory=list)

    def spot(self) -> Path:
        return self.rnd.choice(self.dirs)

    def rel(self, path: Path | bytes) -> str:
        return os.fsencode(path)[len(os.fsencode(self.root)) + 1 :].decode("utf-8", "backslashreplace")

    def add_bad(self, kind: str, path: Path | bytes, marker: str | None = None) -> None:
        rel = self.rel(path)
        self.bad.append(Bad(kind, rel, marker or rel.rsplit("/", 1)[-1]))

    def plant(self, path: Path | bytes, tag: str = "样本") -> str:
        """Write a good page at path; its title."""
        title, html = self.stories.page(tag)
        with open(path, "wb") as f:
            f.write(html)
        return title

    def forbids(self, path: str) -> bool:
        return any(path == f or (f.endswith("/") and path.startswith(f)) for f in self.forbidden)


def b_fifo(p: Plan) -> None:
    f = p.spot() / "fifo-pipe.html"
    os.mkfifo(f)
    p.add_bad("FIFO named *.html", f)


def b_devices(p: Plan) -> None:
    for dev in ("/dev/zero", "/dev/urandom"):
        f = p.spot() / f"dev-{Path(dev).name}.html"
        os.symlink(dev, f)
        p.add_bad(f"symlink to {dev}", f)


def b_outside(p: Plan) -> None:
    target = p.outside / "outside-page.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    p.forbidden_titles.append(p.plant(target, "外部"))
    link = p.spot() / "outside-file-link.html"
    os.symlink(target, link)
    p.add_bad("symlink to a file outside the root", link)
    p.forbidden.append(p.rel(link))
    d = p.outside / "outside-dir" / "2023" / "0501"
    d.mkdir(parents=True)
    for i in range(3):
        p.forbidden_titles.append(p.plant(d / f"outside-{i}.html", "外部"))
    link = p.spot() / "outside-dir-link"
    os.symlink(p.outside / "outside-dir", link, target_is_directory=True)
    p.add_bad("symlink to a directory outside the root", link)
    p.forbidden.append(p.rel(link) + "/")


def b_dangling(p: Plan) -> None:
    link = p.spot() / "dangling-link.html"
    os.symlink(p.outside / "no-such-page.html", link)
    p.add_bad("dangling symlink", link)


def b_loops(p: Plan) -> None:
    d = p.spot()
    link = d / "loop-to-parent"
    os.symlink("..", link, target_is_directory=True)  # -> d's parent, which holds d, which holds the link
    p.add_bad("symlink loop", link)
    p.forbidden.append(p.rel(link) + "/")  # all of it is indexed under its real path already
    self_link = d / "self-loop.html"
    os.symlink("self-loop.html", self_link)
    p.add_bad("symlink loop", self_link)


def b_names(p: Plan) -> None:
    gbk = "新闻稿".encode("gbk")
    for kind, name in (("file name not UTF-8 (GBK bytes)", b"nonutf8-gbk-" + gbk + b".html"),
                       ("file name not UTF-8 (latin-1 bytes)", b"nonutf8-latin1-caf\xe9.html")):  # fmt: skip
        _assert_not_utf8(name)
        d = p.spot()
        path = os.fsencode(d) + b"/" + name
        title = p.plant(path)
        prefix = name.split(b"-")[0] + b"-" + name.split(b"-")[1] + b"-"
        p.add_bad(kind, path, marker=prefix.decode())
        p.good.append(Good(kind, f"{p.rel(d)}/{prefix.decode()}", title, suffix=".html"))
    kind = "directory name not UTF-8 (GBK bytes)"
    d = p.spot()
    sub = os.fsencode(d) + b"/nonutf8-gbkdir-" + "新闻目录".encode("gbk")
    _assert_not_utf8(sub)
    os.mkdir(sub)
    title = p.plant(sub + b"/inner-page.html")
    p.add_bad(kind, sub, marker="nonutf8-gbkdir-")
    p.good.append(Good(kind, f"{p.rel(d)}/nonutf8-gbkdir-", title, suffix="/inner-page.html"))
    kind = "file name with control characters (newline, tab, ESC)"
    path = p.spot() / "ctrl-name\nnewline\ttab\x1besc.html"
    p.good.append(Good(kind, p.rel(path), p.plant(path)))
    p.add_bad(kind, path, marker="ctrl-name")


def _assert_not_utf8(name: bytes) -> None:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return
    raise AssertionError(f"{name!r} is valid UTF-8")


def b_broken_pages(p: Plan) -> None:
    f = p.spot() / "empty-page.html"
    f.write_bytes(b"")
    p.add_bad("0-byte .html", f)
    f = p.spot() / "binary-page.html"
    f.write_bytes(p.rnd.randbytes(8192))
    p.add_bad("binary (random bytes) .html", f)
    _, html = p.stories.page()
    cut = [m.start() for m in re.finditer(b"<p>", html)][2] + 2  # "...<p"
    f = p.spot() / "truncated-page.html"
    f.write_bytes(html[:cut])
    p.add_bad("truncated .html (cut mid-tag)", f)
    f = p.spot() / "nul-bytes-page.html"
    title, html = p.stories.page()
    f.write_bytes(html.replace("。".encode(), "。\x00\x01\x07\x1b".encode()))
    p.add_bad("page with NUL and control bytes", f)
    p.info.append(Good("page with NUL and control bytes", p.rel(f), title))
    f = p.spot() / "nested-tags-page.html"
    title, paras = p.stories.next("嵌套")
    f.write_bytes(f"<html><head><title>{title}</title></head><body>{'<div>' * 100_000}<p>{'</p><p>'.join(paras)}</p>"
                  f"{'</div>' * 100_000}</body></html>".encode())  # fmt: skip
    p.add_bad("deeply nested markup (100,000 <div>)", f)
    p.info.append(Good("deeply nested markup (100,000 <div>)", p.rel(f), title))
    f = p.spot() / "null.json"
    f.write_bytes(b"null")
    p.add_bad(".json that is null", f)


def b_huge(p: Plan) -> None:
    f = p.spot() / "huge-sparse.html"
    _, html = p.stories.page()
    with f.open("wb") as fh:
        fh.write(html)
        fh.truncate(HUGE)
    p.add_bad(f"file above the size cap ({HUGE // 2**20} MiB, sparse)", f)


def b_gzip(p: Plan) -> None:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(2**20)
    bomb = z.compress(b"<html><body><p>") + b"".join(z.compress(zero) for _ in range(100)) + z.flush()
    f = p.spot() / "bomb-page.html.gz"
    f.write_bytes(bomb)
    p.add_bad("gzip bomb (.html.gz expanding to 100 MiB)", f)
    _, html = p.stories.page()
    packed = gzip.compress(html)
    f = p.spot() / "cut-page.html.gz"
    f.write_bytes(packed[: len(packed) // 2])
    p.add_bad("truncated gzip (.html.gz)", f)


def b_warc(p: Plan) -> None:
    kind = "WARC with garbage"
    title, html = p.stories.page()
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % len(html)
    block = http + html
    head = (
        b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:6f1f3a1e-8c2a-4b7e-9f31-2d5e4a1b0c01>\r\n"
        b"WARC-Date: 2023-05-01T08:00:00Z\r\nWARC-Target-URI: http://www.example-news.cn/warc/1.html\r\n"
        b"Content-Type: application/http; msgtype=response\r\nContent-Length: %d\r\n\r\n" % len(block)
    )
    f = p.spot() / "damaged-crawl.warc"
    f.write_bytes(head + block + b"\r\n\r\n" + b"WARC/1.0\r\nWARC-Type: resp" + p.rnd.randbytes(4096))
    p.add_bad(kind, f)
    p.good.append(Good(kind, p.rel(f) + "#0", title))
    f = p.spot() / "junk-crawl.warc.gz"
    f.write_bytes(p.rnd.randbytes(4096))
    p.add_bad(kind, f)


def b_jsonl(p: Plan) -> None:
    feeds = [d for d in p.dirs if d.name == "feeds"]
    f = (feeds[0] if feeds else p.spot()) / "mixed-debris.jsonl"
    rel = p.rel(f)
    lines: list[bytes] = []
    for kind, line in (
        ("", None),
        ("jsonl: invalid UTF-8 line", b'{"title": "bad \xff\xfe\xc3(", "content": "\xe4\xb8 broken \x80\x81 bytes"}'),
        ("", None),
        ("jsonl: lone-surrogate escape in a title", None),
        ("jsonl: a line that is a JSON list", b'["not", "an", "object"]'),
        ("", None),
        ("jsonl: truncated last line", None),
    ):
        n = len(lines)
        if not kind:  # a good record
            title, rec = p.stories.record()
            p.good.append(Good("good record in a .jsonl with broken lines", f"{rel}#{n}", title))
            lines.append(rec)
            continue
        if line is None and "surrogate" in kind:
            title, rec = p.stories.record()
            line = rec.replace(b'"title": "', b'"title": "\\ud800', 1)
            p.info.append(Good(kind, f"{rel}#{n}"))
        elif line is None:
            _, rec = p.stories.record()
            line = rec[: len(rec) // 2]
        lines.append(line)
        p.add_bad(kind, f, marker=f"{f.name}#{n}")
    f.write_bytes(b"\n".join(lines))  # no newline after the truncated last line


def b_deep(p: Plan) -> None:
    kind = f"deeply nested directories ({p.deep} levels)"
    base = p.spot() / "deep"
    bottom = base.joinpath(*["n"] * p.deep)
    os.makedirs(bottom)
    mid = base.joinpath(*["n"] * min(30, p.deep)) / "nested-30.html"
    p.good.append(Good(kind, p.rel(mid), p.plant(mid)))
    p.info.append(Good(kind, p.rel(bottom / "bottom.html"), p.plant(bottom / "bottom.html")))
    p.add_bad(kind, base)


def b_unreadable(p: Plan) -> None:
    kinds = ("unreadable file (chmod 000)", "unreadable directory (chmod 000)")
    if not p.can_lock:
        p.untested.extend((k, "running as root, and chmod 000 cannot be made to bite") for k in kinds)
        return
    f = p.spot() / "unreadable-page.html"
    p.plant(f)
    os.chmod(f, 0)
    p.locked.append(f)
    p.add_bad(kinds[0], f)
    d = p.spot() / "unreadable-dir"
    d.mkdir()
    p.plant(d / "page.html")
    os.chmod(d, 0)
    p.locked.append(d)
    p.add_bad(kinds[1], d)


def b_dir_html(p: Plan) -> None:
    kind = "directory named *.html"
    d = p.spot() / "folder.html"
    d.mkdir()
    p.good.append(Good(kind, p.rel(d / "inside.html"), p.plant(d / "inside.html")))
    p.add_bad(kind, d)


def b_socket(p: Plan) -> None:
    kind = "socket named *.html"
    f = p.spot() / "socket-file.html"
    here = os.getcwd()
    try:
        os.chdir(f.parent)  # a relative name: AF_UNIX paths are limited to 108 bytes
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(f.name)
    except OSError as exc:
        p.untested.append((kind, f"cannot bind a socket: {exc}"))
        return
    finally:
        os.chdir(here)
    p.add_bad(kind, f)


BUILDERS: list[tuple[str, Callable[[Plan], None]]] = [
    ("fifo", b_fifo),
    ("devices", b_devices),
    ("outside symlinks", b_outside),
    ("dangling symlink", b_dangling),
    ("symlink loops", b_loops),
    ("hostile names", b_names),
    ("broken pages", b_broken_pages),
    ("huge file", b_huge),
    ("gzip", b_gzip),
    ("warc", b_warc),
    ("jsonl", b_jsonl),
    ("deep dirs", b_deep),
    ("unreadable", b_unreadable),
    ("dir named .html", b_dir_html),
    ("socket", b_socket),
]


@dataclass
class Ctx:
    a: argparse.Namespace
    runner: Runner
    stories: Stories
    dev: Path
    dev_docs: list[str]  # labelled document paths of the dev crawl
    drop: str  # how the scans of (A) run: "" as we are, "user" as 65534, "caps" as root without DAC override
    can_lock: bool
    lock_note: str
    scan_timeout: float


def hostile_run(ctx: Ctx, where: Path, builders, only: set[str] | None, timeout: float, name: str) -> dict:
    """Build a crawl (dev files + debris) in `where`, scan, export, list skipped; the figures."""
    crawl, outside, dbdir = where / "crawl", where / "outside", where / "db"
    files = copy_tree(ctx.dev, crawl, only)
    outside.mkdir(parents=True)
    dbdir.mkdir()
    for d in (where, crawl, outside):
        os.chmod(d, 0o755)
    os.chmod(dbdir, 0o777)
    dirs = sorted({(crawl / f).parent for f in files})
    plan = Plan(crawl, outside, random.Random(f"{ctx.a.seed}-{name}"), ctx.stories, dirs, ctx.can_lock, ctx.a.deep)
    kept = set(files)
    plan.good = [Good("dev corpus", p) for p in ctx.dev_docs if p.split("#")[0] in kept]
    for _, build in builders:
        build(plan)
    db = dbdir / "reliability.db"
    try:
        scan = ctx.runner.run(["scan", str(crawl), "--db", str(db), "--jobs", str(ctx.a.jobs)], f"{name}-scan",
                              timeout, drop=ctx.drop)  # fmt: skip
    finally:
        for path in plan.locked:  # readable again for the export, --keep and the clean-up
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    runs = {"scan": scan}
    rows: list[dict] = []
    not_json, utf8 = 0, True
    if db.exists():
        runs["export"] = ctx.runner.run(["export", "--db", str(db)], f"{name}-export", 120)
        rows, not_json, utf8 = parse_export(runs["export"].stdout)
        runs["skipped"] = ctx.runner.run(["skipped", "--db", str(db)], f"{name}-skipped", 120)
    by_path = {r["path"]: r for r in rows}
    lost = []
    for g in plan.good:
        r = g.find(by_path)
        if r is None:
            lost.append((g, "missing"))
        elif g.title and g.title not in str(r.get("title") or ""):
            lost.append((g, f"exported with the title {str(r.get('title'))[:60]!r}"))
    leaked = {p for p in by_path if plan.forbids(p)}
    leaked |= {r["path"] for r in rows if any(t in str(r.get("title") or "") for t in plan.forbidden_titles)}
    listing = runs["skipped"].stdout.decode("utf-8", "replace") if "skipped" in runs else ""
    return {
        "plan": plan,
        "runs": runs,
        "crashes": [(k, r.why()) for k, r in runs.items() if r.crashed],
        "lost": lost,
        "leaked": sorted(leaked),
        "rows": len(rows),
        "not_json": not_json,
        "utf8": utf8,
        "info": [(g, g.find(by_path) is not None) for g in plan.info],
        "listed": sum(1 for b in plan.bad if b.marker in listing),
        "unlisted": [b.marker for b in plan.bad if b.marker not in listing],
    }


def part_a(ctx: Ctx, work: Path) -> dict:
    print(f"\n== (A) hostile inputs: the dev crawl + debris, scanned {AS_WHOM[ctx.drop]}"
          f"with --jobs {ctx.a.jobs}, RLIMIT_AS {ctx.a.mem_gb} GB, timeout {ctx.scan_timeout:.0f} s")  # fmt: skip
    if ctx.lock_note:
        print(f"   note: {ctx.lock_note}")
    res = hostile_run(ctx, work / "a", BUILDERS, None, ctx.scan_timeout, "a")
    plan = res["plan"]
    kinds = sorted({b.kind for b in plan.bad})
    print(f"   {len(plan.bad)} bad inputs of {len(kinds)} kinds:")
    for kind, n in Counter(b.kind for b in plan.bad).items():
        print(f"     {n} x {kind}")
    for kind, why in plan.untested:
        print(f"     not tested: {kind} ({why})")
    scan = res["runs"]["scan"]
    said = scan.stdout.decode("utf-8", "replace").strip()[-200:]
    print(f"   scan: {scan.why()} in {scan.seconds:.1f} s; stdout: {said}")
    for k, r in res["runs"].items():
        if k != "scan" and r.crashed:
            print(f"   {k}: {r.why()}")
    dev_lost = [g for g, _ in res["lost"] if g.kind == "dev corpus"]
    planted_lost = [(g, why) for g, why in res["lost"] if g.kind != "dev corpus"]
    n_planted = sum(1 for g in plan.good if g.kind != "dev corpus")
    flaws = ("" if res["utf8"] else " (NOT valid UTF-8)") + (f", {res['not_json']} not JSON" if res["not_json"] else "")
    print(
        f"   export: {res['rows']} rows{flaws}; good documents lost: {len(dev_lost)} of "
        f"{len(plan.good) - n_planted} dev corpus, {len(planted_lost)} of {n_planted} planted"
    )
    for g, why in planted_lost:
        print(f"     lost: {g.kind}: {g.path!r}{'...' + g.suffix if g.suffix else ''} ({why})")
    for g in dev_lost[:3]:
        print(f"     lost: dev corpus: {g.path}")
    print(f"   outside-root / loop pages exported (must be 0): {len(res['leaked'])}"
          + "".join(f"\n     leaked: {p!r}" for p in res["leaked"][:5]))  # fmt: skip
    print(
        f"   bad inputs named by `dedup skipped`: {res['listed']} of {len(plan.bad)}; not named: {res['unlisted'][:8]}"
    )
    for g, found in res["info"]:
        print(f"   (info) {g.kind}: its page {'was' if found else 'was not'} exported")
    out = {
        "bad_inputs": len(plan.bad),
        "kinds": len(kinds),
        "kinds_list": kinds,
        "not_tested": [k for k, _ in plan.untested],
        "crashes": len(res["crashes"]),
        "crash_details": [f"{k}: {why}" for k, why in res["crashes"]],
        "good_documents": len(plan.good),
        "good_lost": len(res["lost"]),
        "good_lost_planted": len(planted_lost),
        "leaked": len(res["leaked"]),
        "listed_in_skipped": res["listed"],
        "scan_seconds": round(scan.seconds, 1),
        "scanned_as": ctx.drop or "as is",
    }
    failed = res["crashes"] or res["lost"] or res["leaked"]
    if ctx.a.per_kind == "always" or (ctx.a.per_kind == "auto" and failed):
        out["per_kind"] = per_kind(ctx, work)
    return out


def per_kind(ctx: Ctx, work: Path) -> dict:
    """Each builder's debris alone beside a few dev files: which ones fail."""
    by_dir: dict[str, list[str]] = defaultdict(list)
    for p in ctx.dev_docs:
        f = p.split("#")[0]
        if f not in by_dir[f.rsplit("/", 1)[0]]:
            by_dir[f.rsplit("/", 1)[0]].append(f)
    only: set[str] = set()
    sites: set[str] = set()
    for d in sorted(by_dir):
        if d.split("/")[0] not in sites and len(by_dir[d]) >= 2:
            sites.add(d.split("/")[0])
            only.update(by_dir[d][:8])
        if len(sites) == 3:
            break
    timeout = ctx.a.kind_timeout
    print(f"\n   each builder alone beside {len(only)} dev files (timeout {timeout:.0f} s):")
    out = {}
    for i, (name, build) in enumerate(BUILDERS):
        res = hostile_run(ctx, work / f"kind-{i:02d}", [(name, build)], only, timeout, f"kind-{i:02d}")
        problems = [f"{k} {why}" for k, why in res["crashes"]]
        if res["lost"]:
            planted = [f"{g.path[-40:]!r} {why}" for g, why in res["lost"] if g.kind != "dev corpus"]
            problems.append(f"lost {len(res['lost'])} ({len(planted)} planted{': ' if planted else ''}"
                            f"{'; '.join(planted[:2])})")  # fmt: skip
        if res["leaked"]:
            problems.append(f"leaked {len(res['leaked'])}")
        kinds = sorted({b.kind for b in res["plan"].bad})
        verdict = "ok" if not problems else "FAIL: " + " | ".join(problems)
        listed = f"{res['listed']}/{len(res['plan'].bad)} named by `skipped`"
        print(f"     {name:18s} {res['runs']['scan'].seconds:5.1f} s  {listed:22s} {verdict}")
        out[name] = {"kinds": kinds, "ok": not problems, "problems": problems}
        if not ctx.a.keep:
            shutil.rmtree(work / f"kind-{i:02d}", ignore_errors=True)
    return out


# --------------------------------------------------------------------------- (B) kills


def check_db(db: Path, scratch: Path) -> list[str]:
    """integrity_check and foreign_key_check on a copy of the database files (the next scan sees them as left)."""
    if not db.exists():
        return []
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for suffix in ("", "-wal", "-journal"):
        src = Path(str(db) + suffix)
        if src.exists():
            shutil.copyfile(src, scratch / (db.name + suffix))
    try:
        con = sqlite3.connect(scratch / db.name)
        try:
            problems = [str(r[0]) for r in con.execute("PRAGMA integrity_check") if r[0] != "ok"]
            problems += [f"foreign key: {tuple(r)}" for r in con.execute("PRAGMA foreign_key_check")]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        problems = [f"cannot open: {exc}"]
    return problems


def stage_of(pid: int, db: Path) -> str:
    """What the scan was doing, from outside: workers alive, or the database open in the CLI."""
    procs = [m for m in group_members(pid) if m != pid]
    workers = []
    for m in procs:
        try:
            cmd = Path(f"/proc/{m}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmd:
            workers.append(m)
    if workers:
        return "workers (read/sign)"
    try:
        target = str(db.resolve())
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return "exiting"
    if target in fds:
        return "main process, database open"
    return "database not open (startup, lock)"


class Mutator:
    """Small changes to the crawl, made the same way in the killed crawl and the reference copy."""

    OPS = ("edit", "rename", "batch", "delete", "add", "append")
    BATCH = 60  # pages a "batch" adds: enough to read and sign them in worker processes again

    def __init__(self, crawl: Path, ref: Path, files: list[str], rnd: random.Random, stories: Stories) -> None:
        self.crawl, self.ref, self.files, self.rnd, self.stories = crawl, ref, list(files), rnd, stories
        self.n = 0

    def _both(self, rel: str, data: bytes) -> None:
        now = time.time_ns()
        for root in (self.crawl, self.ref):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
            os.utime(root / rel, ns=(now, now))

    def step(self) -> str:
        op = self.OPS[self.n % len(self.OPS)]
        self.n += 1
        if op == "edit":
            for _ in range(50):
                rel = self.rnd.choice(self.files)
                data = (self.crawl / rel).read_bytes()
                paras = list(re.finditer(rb"<p[ >].*?</p>", data, re.S))
                if len(paras) >= 3:
                    m = paras[len(paras) // 2]
                    self._both(rel, data[: m.start()] + data[m.end() :])
                    return f"edit (a paragraph out of) {rel}"
            op = "add"
        if op == "rename":
            rel = self.rnd.choice(self.files)
            stem, dot, ext = rel.rpartition("/")[2].partition(".")
            new = f"{rel.rpartition('/')[0]}/{stem}-renamed-{self.n}{dot}{ext}"
            for root in (self.crawl, self.ref):
                os.rename(root / rel, root / new)
            self.files[self.files.index(rel)] = new
            return f"rename {rel} -> {new}"
        if op == "delete":
            rel = self.rnd.choice(self.files)
            for root in (self.crawl, self.ref):
                (root / rel).unlink()
            self.files.remove(rel)
            return f"delete {rel}"
        if op == "batch":
            for i in range(self.BATCH):
                d = self.rnd.choice(self.files).rpartition("/")[0]
                rel = f"{d}/batch-{self.n}-{i}.html"
                self._both(rel, self.stories.page("批量")[1])
                self.files.append(rel)
            return f"add {self.BATCH} pages (batch-{self.n}-*.html)"
        if op == "append":
            jsonl = [f for f in self.files if f.endswith(".jsonl")]
            if jsonl:
                rel = self.rnd.choice(jsonl)
                data = (self.crawl / rel).read_bytes()
                _, rec = self.stories.record("追加")
                self._both(rel, data + (b"" if data.endswith(b"\n") or not data else b"\n") + rec + b"\n")
                return f"append a record to {rel}"
        d = self.rnd.choice(self.files).rpartition("/")[0]
        rel = f"{d}/added-{self.n}.html"
        self._both(rel, self.stories.page("新增")[1])
        self.files.append(rel)
        return f"add {rel}"


def canonical(rows: list[dict]) -> dict[str, str]:
    """path -> the row as a JSON line, cluster ids replaced by the smallest path of their members."""
    members: dict[object, list[str]] = defaultdict(list)
    for r in rows:
        if r.get("cluster") is not None:
            members[r["cluster"]].append(r["path"])
        for c in r.get("contains") or []:
            members[c].append(r["path"])
    label = {c: min(ps) for c, ps in members.items()}
    out = {}
    for r in rows:
        r = dict(r)
        if r.get("cluster") is not None:
            r["cluster"] = label[r["cluster"]]
        r["contains"] = sorted(label.get(c, str(c)) for c in r.get("contains") or [])
        out[r["path"]] = json.dumps(r, ensure_ascii=False, sort_keys=True)
    return out


def part_b(ctx: Ctx, work: Path, crawl: Path, ref: Path, files: list[str], clean_seconds: float) -> dict:
    a, runner = ctx.a, ctx.runner
    rnd = random.Random(a.seed)
    scan_args = ["scan", str(crawl), "--db"]
    db = work / "b" / "killed.db"
    print(f"\n== (B) kills: {len(files)} files{' (a subset: --b-files)' if a.b_files else ' (the whole dev crawl)'}, "
          f"no debris, --jobs {a.jobs}; clean scan {clean_seconds:.1f} s")  # fmt: skip
    mut = Mutator(crawl, ref, files, rnd, ctx.stories)
    est = clean_seconds
    landed = attempts = 0
    early: list[tuple[float, str]] = []
    resume_failures: list[str] = []
    failures: list[tuple[int, list[str]]] = []
    survivors = 0
    stages: Counter = Counter()
    mutations: list[str] = []
    delays: list[float] = []
    last_completed = False
    while landed < a.kills and attempts < 3 * a.kills + 5:
        attempts += 1
        changed = ""
        if attempts > 1 and (last_completed or attempts % 2 == 0):
            mutations.append(mut.step())
            changed = f" [after: {mutations[-1][:70]}]"
        delay = rnd.uniform(0.05, 0.95) * est
        proc, _, err = runner.start([*scan_args, str(db), "--jobs", str(a.jobs)], f"b-kill-{attempts:02d}")
        t0 = time.monotonic()
        while time.monotonic() - t0 < delay and proc.poll() is None:
            time.sleep(0.01)
        last_completed = proc.poll() is not None
        if last_completed:
            took = time.monotonic() - t0
            kill_group(proc)
            early.append((took, f"exit {proc.returncode}"))
            if proc.returncode != 0 or TRACEBACK in err.read_bytes():
                tail = err.read_bytes().decode("utf-8", "replace").strip().splitlines()[-1:]
                resume_failures.append(f"run {attempts}: exit {proc.returncode} {' '.join(tail)[:160]}")
            est = max(took, 0.5)
        else:
            stage = stage_of(proc.pid, db)
            left = kill_group(proc)
            survivors += len(left)
            landed += 1
            stages[stage] += 1
            delays.append(delay)
        problems = check_db(db, work / "b" / "check")
        if problems:
            failures.append((attempts, problems[:3]))
        what = (
            f"finished before the kill after {early[-1][0]:5.1f} s"
            if last_completed
            else f"killed after {delay:5.1f} s ({stage})"
        )
        print(f"   run {attempts:2d}: {what}; integrity: {'ok' if not problems else problems[:2]}{changed}")
    final = runner.run([*scan_args, str(db), "--jobs", str(a.jobs)], "b-final", ctx.scan_timeout)
    if final.crashed:
        resume_failures.append(f"final run: {final.why()}")
    problems = check_db(db, work / "b" / "check")
    if problems:
        failures.append((attempts + 1, problems[:3]))
    killed_export = runner.run(["export", "--db", str(db)], "b-final-export", 120)
    clean_db = work / "b" / "clean-final.db"
    clean = runner.run(["scan", str(ref), "--db", str(clean_db), "--jobs", str(a.jobs)], "b-clean", ctx.scan_timeout)
    clean_export = runner.run(["export", "--db", str(clean_db)], "b-clean-export", 120)
    clean_problems = check_db(clean_db, work / "b" / "check")
    k_rows, _, _ = parse_export(killed_export.stdout)
    c_rows, _, _ = parse_export(clean_export.stdout)
    kc, cc = canonical(k_rows), canonical(c_rows)
    differ = sorted(p for p in kc.keys() | cc.keys() if kc.get(p) != cc.get(p))
    raw_same = sorted(killed_export.stdout.splitlines()) == sorted(clean_export.stdout.splitlines())
    print(f"   {landed} kills landed in {attempts} runs ({len(early)} runs ended before their kill); "
          f"delays {min(delays, default=0):.1f}-{max(delays, default=0):.1f} s")  # fmt: skip
    print("   where the kills landed: " + ", ".join(f"{k}: {v}" for k, v in stages.most_common()))
    print(f"   {len(mutations)} crawl changes between runs, e.g. {'; '.join(mutations[:3])}")
    print(f"   processes left alive after a kill of the group: {survivors}")
    print(f"   runs that failed on resuming: {len(resume_failures)}")
    for r in resume_failures[:5]:
        print(f"     {r}")
    print(f"   integrity failures: {len(failures)}")
    for n, p in failures[:5]:
        print(f"     after run {n}: {p}")
    print(f"   final run: {final.why()} in {final.seconds:.1f} s")
    print(
        f"   clean run of the final crawl: {clean.why()} in {clean.seconds:.1f} s; integrity {clean_problems or 'ok'}"
    )
    print(
        f"   exports: {len(k_rows)} rows after kills, {len(c_rows)} in the clean run; "
        f"differing rows (cluster ids canonical): {len(differ)}; raw exports identical: {raw_same}"
    )
    for p in differ[:4]:
        print(f"     killed: {kc.get(p, '(missing)')[:240]}\n     clean:  {cc.get(p, '(missing)')[:240]}")
    return {
        "kills": landed,
        "runs": attempts,
        "ended_before_kill": len(early),
        "stages": dict(stages),
        "integrity_failures": len(failures),
        "integrity_details": [f"run {n}: {p}" for n, p in failures],
        "resume_failures": len(resume_failures),
        "resume_details": resume_failures,
        "survivors": survivors,
        "mutations": len(mutations),
        "final_ok": not final.crashed,
        "clean_ok": not clean.crashed and not clean_problems,
        "rows": len(k_rows),
        "clean_rows": len(c_rows),
        "differing_rows": len(differ),
        "raw_identical": raw_same,
        "files": len(files),
        "subset": bool(a.b_files),
        "clean_seconds": round(clean_seconds, 1),
    }


# --------------------------------------------------------------------------- main


def isolation(runner: Runner, work: Path) -> tuple[str, bool, str]:
    """(how the scans of (A) run, whether chmod 000 stops them, a note): as root, chmod 000 stops nothing,
    so they run as user 65534 or, when that user cannot run the interpreter (a Python under /root),
    as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH."""
    if os.geteuid() != 0:
        return "", True, ""
    probe = work / "probe"
    probe.mkdir()
    os.chmod(probe, 0o755)
    (probe / "readable").write_text("x")
    (probe / "locked").write_text("x")
    os.chmod(probe / "locked", 0)
    code = ("import os, sys; print(os.geteuid()); os.listdir(sys.argv[1]); open(sys.argv[1] + '/readable').read()\n"
            "try:\n    open(sys.argv[1] + '/locked').read()\nexcept PermissionError:\n    print('denied')")  # fmt: skip
    notes = []
    try:
        for mode, uid in (("user", NOBODY), ("caps", 0)):
            try:
                r = runner.run(["-c", code, str(probe)], f"probe-{mode}", 30, drop=mode, cmd=[sys.executable])
            except (OSError, subprocess.SubprocessError) as exc:
                notes.append(f"{mode}: {exc}")
                continue
            if r.stdout.split() == [str(uid).encode(), b"denied"]:
                return mode, True, "; ".join(notes)
            notes.append(f"{mode}: {r.why()}")
    finally:
        os.chmod(probe / "locked", 0o644)
    return "", False, f"chmod 000 cannot be made to bite ({'; '.join(notes)}): scans run as root"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20, help="kills that must land in (B)")
    ap.add_argument("--seed", type=int, default=1, help="seeds the debris placement, kill delays and crawl changes")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", help="build everything in this directory and keep it (databases, crawls, logs)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="wall-clock limit of one full scan (default: 8 x the clean scan, at least 120 s)")  # fmt: skip
    ap.add_argument("--kind-timeout", type=float, default=40, help="wall-clock limit of a per-kind scan")
    ap.add_argument("--per-kind", choices=["auto", "always", "never"], default="auto",
                    help="scan each builder's debris alone: auto = when the full crawl fails")  # fmt: skip
    ap.add_argument("--mem-gb", type=float, default=4, help="RLIMIT_AS of every scan process")
    ap.add_argument("--deep", type=int, default=DEEP, help="levels of the nested directories")
    ap.add_argument("--only", choices=["a", "b"], help="run only (A) hostile inputs or (B) kills")
    ap.add_argument("--b-files", type=int, default=0, help="(B) on the first N files of the dev crawl (0: all)")
    ap.add_argument("--dev", default=str(SHARED / "corpus/dev"), help="the labelled dev corpus (crawl/, labels.json)")
    ap.add_argument("--source", default=str(SHARED / "corpus/source/xwlb_articles.jsonl.gz"))
    ap.add_argument("--dedup", help="the dedup command (default: the dedup beside this Python)")
    a = ap.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * a.deep))  # rmtree of the deep directories
    t_start = time.monotonic()
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="dedup-reliability-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        ap.error(f"--keep {work}: the directory must be empty or new")
    os.chmod(work, 0o755)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    os.chmod(logs, 0o777)
    dedup = dedup_command(a.dedup)
    runner = Runner(dedup, int(a.mem_gb * 2**30), logs)
    dev = Path(a.dev)
    dev_docs = sorted(json.loads((dev / "labels.json").read_text(encoding="utf-8"))["documents"])
    stories = Stories(Path(a.source))
    drop, can_lock, note = isolation(runner, work)
    print(f"dedup: {shlex.join(dedup)}; work dir {work}; seed {a.seed}")
    figures: dict = {"benchmark": "reliability", "seed": a.seed, "jobs": a.jobs, "dedup": shlex.join(dedup)}
    try:
        # The clean scan of (B) first: it times the scan, and the time sets the limits.
        clean0, clean_s, files = None, 0.0, []
        if a.only != "a" or a.timeout is None:
            all_files = copy_tree(dev / "crawl", work / "b" / "crawl")
            files = all_files[: a.b_files] if a.b_files else all_files
            for rel in all_files[len(files) :]:
                (work / "b" / "crawl" / rel).unlink()
            copy_tree(work / "b" / "crawl", work / "b" / "ref")
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            clean0 = runner.run(["scan", str(work / "b" / "crawl"), "--db", str(work / "b" / "clean.db"),
                                 "--jobs", str(a.jobs)], "b-clean-timing", a.timeout or 1800)  # fmt: skip
            clean_s = clean0.seconds
            print(f"clean scan of the dev crawl copy ({len(files)} files): {clean0.why()} in {clean_s:.1f} s "
                  f"(CPU {clean0.cpu:.0f} s; load average before it {load})")  # fmt: skip
        ctx = Ctx(a, runner, stories, dev / "crawl", dev_docs, drop, can_lock, note,
                  a.timeout or max(120.0, 8 * clean_s))  # fmt: skip
        if a.only != "b":
            figures["hostile"] = part_a(ctx, work)
        if a.only != "a" and clean0 is not None:
            if clean0.crashed:
                print("(B) skipped: the clean scan failed")
            else:
                figures["kills"] = part_b(ctx, work, work / "b" / "crawl", work / "b" / "ref", files, clean_s)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures["seconds"] = round(time.monotonic() - t_start, 1)
    print()
    if h := figures.get("hostile"):
        print(f"{h['bad_inputs']} bad inputs of {h['kinds']} kinds, {h['crashes']} crashes, "
              f"{h['good_lost']} good documents lost")  # fmt: skip
    if k := figures.get("kills"):
        same = k["differing_rows"] == 0 and k["final_ok"] and k["clean_ok"]
        tail = "final export identical to a clean run" if same else (
            f"final export differs from a clean run in {k['differing_rows']} rows"
            + ("" if k["final_ok"] and k["clean_ok"] else " (the final or the clean run failed)"))  # fmt: skip
        print(f"{k['kills']} kills, {k['integrity_failures']} integrity failures, {tail}")
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
