"""Discovery and reading on a crawl with debris: special files, links, huge files, odd names, locked folders."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

import dedup.discover as discover
from dedup.discover import (
    MAX_FILE_SIZE,
    ROOT_KEY,
    Found,
    ReadRefused,
    discover_files,
    human_size,
    is_under,
    read_source,
)
from dedup.extract import extract_documents
from dedup.models import Document, SourceFile

ROOT = Path(__file__).resolve().parents[1]

# A made-up city bureau bulletin (not a real page).
BULLETIN = (
    "<html><head><title>青川市水务局关于城区供水管网改造施工期间临时停水的通告_青川市水务局</title></head>"
    "<body><h1>青川市水务局关于城区供水管网改造施工期间临时停水的通告</h1><div class='content'>"
    "<p>为提升城区供水保障能力，我局定于近日对滨河路至学府街一带的老旧供水管网进行改造。</p>"
    "<p>施工期间，滨河路、学府街及周边小区将分时段临时停水，每次停水时间不超过八小时。</p>"
    "<p>请沿线居民和单位提前做好储水准备，由此带来的不便，敬请谅解。咨询电话由市供水服务中心提供。</p>"
    "</div></body></html>"
)


def in_thread(fn, timeout: float = 20.0):
    """fn() in a daemon thread; fails instead of hanging when fn blocks (on a FIFO, say)."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            result["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{fn} did not return within {timeout} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


def found_all(root: Path, **kw) -> dict[str, Found]:
    return {f.path: f for f in in_thread(lambda: list(discover_files(root, **kw)))}


def write(path: Path, text: str = BULLETIN) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_cap_is_256_mib():
    assert MAX_FILE_SIZE == 256 * 2**20
    assert human_size(300 * 2**20) == "300 MB" and human_size(1500) == "1.5 KB" and human_size(900) == "900 bytes"
    assert discover.too_large(300 * 2**20, MAX_FILE_SIZE) == "file too large: 300 MB > 256 MB cap"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_reported_and_never_opened(tmp_path):
    write(tmp_path / "a.html")
    os.mkfifo(tmp_path / "x.html")
    found = found_all(tmp_path)
    assert found["x.html"].source is None and found["x.html"].problem == "not a regular file (FIFO)"
    assert found["a.html"].source is not None and found["a.html"].problem is None
    # A FIFO put where a file was after discovery: read_source refuses without blocking.
    sf = SourceFile("x.html", "html", 10, 0, "")
    with pytest.raises(ReadRefused, match=r"not a regular file \(FIFO\)"):
        in_thread(lambda: read_source(tmp_path, sf))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_link_to_a_device_is_not_read(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero.html")
    found = found_all(tmp_path)
    assert found["zero.html"].source is None
    assert found["zero.html"].problem == "symbolic link leads outside the crawl root: -> /dev/zero"
    # Even when links may leave the root, a device is not a file.
    found = found_all(tmp_path, follow_symlinks=True)
    assert found["zero.html"].problem == "not a regular file (character device)"
    sf = SourceFile("zero.html", "html", 0, 0, "", follow_link=True)
    with pytest.raises(ReadRefused, match="character device"):
        in_thread(lambda: read_source(tmp_path, sf))


def test_links_out_of_the_root_are_reported_unless_followed(tmp_path):
    root, outside = tmp_path / "crawl", tmp_path / "elsewhere"
    write(outside / "secret.html")
    write(outside / "dir" / "page.html")
    write(root / "site" / "own.html")
    os.symlink(outside / "secret.html", root / "site" / "leak.html")
    os.symlink(outside / "dir", root / "site" / "leakdir")
    found = found_all(root)
    assert set(found) == {"site/own.html", "site/leak.html", "site/leakdir"}
    leak, leakdir = found["site/leak.html"], found["site/leakdir"]
    assert leak.source is None and leakdir.source is None and not leak.is_dir and not leakdir.is_dir
    assert leak.problem == f"symbolic link leads outside the crawl root: -> {outside / 'secret.html'}"
    assert leakdir.problem == f"symbolic link leads outside the crawl root: -> {outside / 'dir'}"

    found = found_all(root, follow_symlinks=True)
    assert set(found) == {"site/own.html", "site/leak.html", "site/leakdir/page.html"}
    assert all(f.problem is None for f in found.values())
    sf = read_source(root, found["site/leak.html"].source)
    assert sf.data == (outside / "secret.html").read_bytes()


def test_a_link_inside_the_root_reads_as_that_file(tmp_path):
    write(tmp_path / "a" / "page.html")
    os.symlink("../a/page.html", tmp_path / "a" / "alias.html")
    (tmp_path / "b").symlink_to(tmp_path / "a", target_is_directory=True)
    os.symlink("nowhere.html", tmp_path / "dangling.html")
    found = found_all(tmp_path)
    # The file link is a path of its own; the directory link is not descended (nor reported).
    assert list(found) == ["dangling.html", "a/alias.html", "a/page.html"]
    assert found["dangling.html"].problem == "broken symbolic link: -> nowhere.html"
    alias = found["a/alias.html"].source
    assert alias is not None and alias.follow_link
    (doc,) = extract_documents(read_source(tmp_path, alias))
    assert isinstance(doc, Document) and doc.path == "a/alias.html" and "滨河路" in doc.text


def test_link_loops_end(tmp_path):
    write(tmp_path / "a" / "b" / "page.html")
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "a" / "self").symlink_to(".", target_is_directory=True)
    (tmp_path / "side").symlink_to(tmp_path / "a" / "b", target_is_directory=True)
    os.symlink("loop2.html", tmp_path / "loop1.html")
    os.symlink("loop1.html", tmp_path / "loop2.html")
    for follow in (False, True):
        found = found_all(tmp_path, follow_symlinks=follow)
        assert "a/b/page.html" in found and found["a/b/page.html"].source is not None
        assert found["loop1.html"].problem.startswith("symbolic link loop")
        assert not any("up/" in p or "self/" in p for p in found)
    # Followed, a link to a directory not walked yet is descended once, under its own path.
    assert "side/page.html" in found_all(tmp_path, follow_symlinks=True)


def test_a_file_over_the_cap_is_reported_not_read(tmp_path):
    write(tmp_path / "big.html", "x" * 2000)
    write(tmp_path / "small.html", "x" * 1000)
    found = found_all(tmp_path, max_file_size=1000)
    assert found["big.html"].source is None
    assert found["big.html"].problem == "file too large: 2 KB > 1000 bytes cap"
    assert read_source(tmp_path, found["small.html"].source, max_file_size=1000).size == 1000


def test_a_file_growing_past_the_cap_is_refused(tmp_path, monkeypatch):
    page = write(tmp_path / "grows.html", "x" * 500)
    (f,) = discover_files(tmp_path, max_file_size=1000)
    page.write_text("x" * 1500)
    with pytest.raises(ReadRefused, match="file too large: 1.5 KB > 1000 bytes cap"):
        read_source(tmp_path, f.source, max_file_size=1000)
    # It grows after fstat: at most cap + 1 bytes are read, then refused.
    real_fstat = os.fstat

    def stale_fstat(fd):
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 500) + st[7:10])

    monkeypatch.setattr(discover.os, "fstat", stale_fstat)
    with pytest.raises(ReadRefused, match="grew past the 1000 bytes cap while being read"):
        read_source(tmp_path, f.source, max_file_size=1000)


def test_a_file_replaced_by_a_link_after_discovery_is_not_followed(tmp_path):
    page = write(tmp_path / "page.html")
    write(tmp_path / "other.html")
    found = found_all(tmp_path)
    page.unlink()
    os.symlink("other.html", page)
    with pytest.raises(ReadRefused, match="became a symbolic link"):
        read_source(tmp_path, found["page.html"].source)


def test_a_name_that_is_not_utf8(tmp_path):
    raw = b"\xb2\xe2\xca\xd4.html"  # 测试.html in GBK
    folder = os.fsencode(tmp_path / "site")
    os.mkdir(folder)
    fd = os.open(os.path.join(folder, raw), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, BULLETIN.encode("utf-8"))
    os.close(fd)
    (f,) = found_all(tmp_path).values()
    assert f.path == "site/\\xb2\\xe2\\xca\\xd4.html"
    f.path.encode("utf-8")  # storable
    assert os.fsencode(f.fs_path) == b"site/" + raw
    sf = f.source
    assert sf.path == f.path and sf.fs_path == f.fs_path and sf.name_bytes == b"site/" + raw
    (doc,) = extract_documents(read_source(tmp_path, sf))
    assert isinstance(doc, Document) and doc.path == f.path and "供水管网" in doc.text
    # A UTF-8 name needs neither.
    write(tmp_path / "站点" / "页面.html")
    utf8 = found_all(tmp_path)["站点/页面.html"].source
    assert utf8.fs_path == "" and utf8.name_bytes is None


def test_files_said_unchanged_are_not_yielded_and_the_rest_go_the_usual_way(tmp_path):
    """A rescan asks, of each regular file as it is stat'ed, whether it is as stored: those are
    kept by the caller, not yielded. A name that is not UTF-8 is asked by its display key; a link
    or a file over the cap is never asked and goes through the usual checks."""
    write(tmp_path / "a" / "kept.html")
    write(tmp_path / "a" / "new.html")
    write(tmp_path / "big.html", "x" * 2000)
    os.symlink("a/kept.html", tmp_path / "alias.html")
    raw = b"\xb2\xe2.html"  # not UTF-8
    fd = os.open(os.path.join(os.fsencode(tmp_path), raw), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"<html><body><p>x</p></body></html>")
    os.close(fd)
    kept_stat = (tmp_path / "a" / "kept.html").stat()
    asked: list[tuple[str, int, float]] = []

    def unchanged(path: str, size: int, mtime: float) -> bool:
        asked.append((path, size, mtime))
        return path in ("a/kept.html", "big.html", "\\xb2\\xe2.html")

    found = found_all(tmp_path, max_file_size=1000, unchanged=unchanged)
    assert sorted(found) == ["a/new.html", "alias.html", "big.html"]
    # Asked about the two readable regular files and the odd name (by its display key), never
    # about the link or the file over the cap, which are found and checked as ever.
    assert sorted(p for p, _, _ in asked) == ["\\xb2\\xe2.html", "a/kept.html", "a/new.html"]
    assert ("a/kept.html", kept_stat.st_size, kept_stat.st_mtime) in asked
    assert found["big.html"].problem == "file too large: 2 KB > 1000 bytes cap"
    assert found["alias.html"].source is not None and found["alias.html"].source.follow_link
    assert found["a/new.html"].source is not None


def _in_parts(root: Path, **kw) -> list[Found]:
    """discover_files as plan_files walks it in two processes: the root's part, then each of its
    directories' (here one after the other)."""
    parts: list[str] = []
    found = list(discover_files(root, subdirs=parts, **kw))
    for part in parts:
        found += discover_files(root, top=part, **kw)
    return found


def test_a_walk_in_parts_gives_what_one_walk_gives(tmp_path):
    """The root's own entries, then each directory it would descend into walked alone, give the
    same findings in the same order as one walk: files at the root, nested folders, hidden ones,
    links in and out, a FIFO, a file over the cap, a file no reader handles, files kept as stored."""
    for rel in ("index.html", "a.cn/2023/1.html", "a.cn/2023/2.txt", "a.cn/x.json", "b.com/1.html", "c.org/d/e/f.html"):
        write(tmp_path / rel)
    write(tmp_path / "b.com/big.html", "x" * 3000)
    write(tmp_path / ".state/seen.html")
    write(tmp_path / "b.com/.hidden.html")
    (tmp_path / "b.com/logo.png").write_bytes(b"\x89PNG")
    os.mkfifo(tmp_path / "c.org/pipe.html")
    os.symlink(tmp_path / "a.cn", tmp_path / "mirror")  # a folder inside: not descended
    os.symlink("/etc", tmp_path / "out")  # leaves the root: reported
    os.symlink("../a.cn/2023/1.html", tmp_path / "b.com/alias.html")
    asked: list[list[str]] = [[], []]

    def kept(k: int):
        return lambda path, size, mtime: asked[k].append(path) or path.endswith("2.txt")

    whole = list(discover_files(tmp_path, max_file_size=2000, unchanged=kept(0)))
    parts = _in_parts(tmp_path, max_file_size=2000, unchanged=kept(1))
    assert parts == whole
    assert asked[1] == asked[0] and "a.cn/2023/2.txt" in asked[0]
    assert [f.path for f in whole][:2] == ["index.html", "out"]  # the root's files, then its links
    assert {"mirror", "b.com/.hidden.html", ".state/seen.html", "a.cn/2023/2.txt"}.isdisjoint(f.path for f in whole)
    with pytest.raises(ValueError):
        next(discover_files(tmp_path, follow_symlinks=True, top="a.cn"))


def test_is_under():
    assert is_under("a/b", "a/b/c.html") and not is_under("a/b", "a/bc.html") and not is_under("a/b", "a/b")
    assert is_under(ROOT_KEY, "x.html")


LIST_AS_NOBODY = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from dedup.discover import discover_files
os.setgid(65534)
os.setuid(65534)
found = list(discover_files(sys.argv[2]))
parts = []
in_parts = list(discover_files(sys.argv[2], subdirs=parts))
for part in parts:
    in_parts += discover_files(sys.argv[2], top=part)
print(json.dumps([[[f.path, f.problem, f.is_dir, f.source is not None] for f in walk] for walk in (found, in_parts)]))
"""


def _list_unprivileged(root: Path) -> list:
    """Discovery as a user the permissions apply to: this process, or (as root) a child that drops to nobody."""
    if os.geteuid() != 0:
        assert _in_parts(root) == list(discover_files(root))
        return [[f.path, f.problem, f.is_dir, f.source is not None] for f in discover_files(root)]
    # The child imports everything before it drops privileges (the interpreter's own files may be
    # readable by root only), then walks as nobody.
    done = subprocess.run(
        [sys.executable, "-c", LIST_AS_NOBODY, str(ROOT), str(root)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        pytest.skip(f"cannot run discovery as an unprivileged user here: {done.stderr.strip()[-300:]}")
    found, in_parts = json.loads(done.stdout)
    assert in_parts == found  # a walk in parts (ingest.plan_files) finds the same
    return found


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path):
    if not hasattr(os, "geteuid"):
        pytest.skip("POSIX permissions only")
    # pytest's tmp_path is private to its user: a world-traversable folder for the unprivileged child.
    base = Path(tempfile.mkdtemp(prefix="dedup-perm-"))
    try:
        os.chmod(base, 0o755)
        root = base / "crawl"
        write(root / "site" / "open.html")
        write(root / "site" / "locked" / "page.html")
        write(root / "site" / "blind" / "page.html")
        for p in root.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        os.chmod(root, 0o755)
        os.chmod(root / "site" / "locked", 0o000)  # cannot be listed
        os.chmod(root / "site" / "blind", 0o644)  # listed, but its entries cannot be looked at
        got = _list_unprivileged(root)
        assert got == [
            ["site/open.html", None, False, True],
            ["site/blind/page.html", "cannot stat: Permission denied", False, False],
            ["site/locked", "cannot list directory: Permission denied", True, False],
        ]
        os.chmod(root, 0o000)
        got = _list_unprivileged(root)
        assert got == [[ROOT_KEY, "cannot list directory: Permission denied", True, False]]
    finally:
        for p in [base, *base.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                os.chmod(p, stat.S_IRWXU)
        shutil.rmtree(base, ignore_errors=True)


def test_a_crawl_nested_deeper_than_the_recursion_limit_is_walked(tmp_path):
    depth = sys.getrecursionlimit() + 200
    here = tmp_path / "crawl"
    for _ in range(depth // 50):  # each step 50 levels deep, made with one relative path
        here = here / "/".join(["d"] * 50)
        here.mkdir(parents=True)
    (here / "deep.txt").write_text("深处的页面\n\n正文。\n", encoding="utf-8")
    try:
        found = list(discover_files(tmp_path / "crawl"))
        assert [f.path.rsplit("/", 1)[-1] for f in found if f.source] == ["deep.txt"]
    finally:
        # Python 3.11's shutil.rmtree (pytest's clean-up) recurses too: take the tree down here.
        (here / "deep.txt").unlink()
        while here != tmp_path:
            here.rmdir()
            here = here.parent
