"""A crawl full of debris, scanned end to end: what a crawler leaves on disk must cost only
itself (a file, a record), be recorded with its reason, and never stop, hang or empty a scan."""

import ctypes
import faulthandler
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import dedup.ingest as ingest
from dedup.cli import cli
from dedup.models import Params
from dedup.pipeline import ScanOptions, scan
from dedup.store import Store
from tests.conftest import EXPECTED_CLUSTERS, TREES

NOTICE = (
    "青川市水利局今天发布汛期安全提示，入汛以来全市平均降雨量较常年偏多两成，"
    "市防汛办要求各乡镇对辖区内的山塘水库和地质灾害隐患点开展拉网式排查，"
    "发现险情立即组织群众转移，确保人民群众生命财产安全。"
)


def run(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return r


def exported(db: Path) -> dict[str, dict]:
    r = run("export", "--db", db)
    assert r.exit_code == 0, r.stderr
    return {row["path"]: row for row in map(json.loads, r.stdout.splitlines())}


def skipped(db: Path) -> dict[str, str]:
    r = run("skipped", "--db", db)
    assert r.exit_code == 0
    return dict(line.split(": ", 1) for line in r.stdout.splitlines())


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Pages outside the crawl root, which a link inside it points at."""
    out = tmp_path / "elsewhere"
    (out / "private").mkdir(parents=True)
    (out / "secret.txt").write_text(f"内部文件\n\n{NOTICE}\n", encoding="utf-8")
    (out / "private/notes.txt").write_text(f"工作笔记\n\n{NOTICE}\n", encoding="utf-8")
    return out


def add_debris(crawl: Path, outside: Path) -> dict[str, str]:
    """Debris of every kind; returns path -> a word the skip reason must contain."""
    junk = crawl / "junk"
    junk.mkdir()
    os.mkfifo(junk / "pipe.html")
    os.symlink("/dev/zero", junk / "zero.html")
    os.symlink("/dev/urandom", junk / "random.html")
    os.symlink(outside / "secret.txt", junk / "secret.txt")
    os.symlink(outside / "private", junk / "private")
    os.symlink(junk / "nowhere.html", junk / "dangling.html")
    (junk / "empty.html").write_bytes(b"")
    (junk / "binary.html").write_bytes(bytes(range(256)) * 64)
    # A GBK file name holding a good page (a copy of the tree-planting story).
    gbk_name = os.fsencode(str(crawl / "www.sohu.com")) + b"/" + "植树转载.html".encode("gbk")
    shutil.copy(crawl / TREES, gbk_name)
    # A feed: good records around an undecodable line, a lone surrogate and a list.
    good = {"url": "https://www.qcsl.gov.cn/a/1.html", "title": "汛期安全提示", "content": NOTICE}
    lines = [
        json.dumps(good, ensure_ascii=False).encode(),
        "【汛期】".encode("gbk") + b"\xff\xfe not json",
        b'{"url": "https://www.qcsl.gov.cn/a/2.html", "title": "\\ud800\xe6\x8f\x90\xe7\xa4\xba", "content": "'
        + NOTICE.replace("两成", "三成").encode()
        + b'"}',
        b"[1, 2, 3]",
        json.dumps(
            {**good, "url": "https://www.qcsl.gov.cn/a/3.html", "title": "再次提示"}, ensure_ascii=False
        ).encode(),
    ]
    (crawl / "feeds/flood.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return {
        "junk/pipe.html": "FIFO",
        "junk/zero.html": "outside the crawl root",
        "junk/random.html": "outside the crawl root",
        "junk/secret.txt": "outside the crawl root",
        "junk/private": "outside the crawl root",
        "junk/dangling.html": "broken symbolic link",
        "junk/empty.html": "empty",
        "feeds/flood.jsonl#1": "line 2",
        "feeds/flood.jsonl#3": "line 4",
    }


def test_a_crawl_full_of_debris_costs_only_the_debris(crawl, tmp_path, outside):
    reasons = add_debris(crawl, outside)
    db = tmp_path / "d.db"
    t0 = time.monotonic()
    r = run("scan", crawl, "--db", db, "--jobs", "2")
    assert r.exit_code == 0, r.stderr
    assert time.monotonic() - t0 < 120  # nothing hangs, nothing is read without limit
    assert "Traceback" not in r.stderr
    rows = exported(db)
    skips = skipped(db)
    for path, word in reasons.items():
        key = next((k for k in skips if k.rstrip("/") == path), None)
        assert key is not None, (path, skips)
        assert word in skips[key], (path, skips[key])
    assert skips["junk/binary.html"]
    # The good documents are all there, the GBK-named copy under its escaped name, in its story.
    gbk_path = "www.sohu.com/" + "植树转载.html".encode("gbk").decode("utf-8", "backslashreplace")
    assert "\\xca\\xf7" in gbk_path and gbk_path in rows
    assert rows[gbk_path]["cluster"] == rows[TREES]["cluster"] is not None
    for story in EXPECTED_CLUSTERS.values():
        assert story <= set(rows)
    assert {"feeds/flood.jsonl#0", "feeds/flood.jsonl#2", "feeds/flood.jsonl#4"} <= set(rows)
    assert "\ufffd" in rows["feeds/flood.jsonl#2"]["title"]
    # Nothing behind a link out of the crawl.
    assert not [p for p in rows if "secret" in p or "private" in p]
    conn = sqlite3.connect(db)
    raw = conn.execute("SELECT name_bytes FROM files WHERE path = ?", [gbk_path]).fetchone()[0]
    assert raw.endswith("植树转载.html".encode("gbk"))
    conn.close()
    # The next night: the same result, the debris recorded again, nothing lost.
    r = run("scan", crawl, "--db", db, "--jobs", "2")
    assert r.exit_code == 0, r.stderr
    assert exported(db) == rows
    assert set(skipped(db)) == set(skips)


def test_links_out_of_the_crawl_are_followed_when_asked(crawl, tmp_path, outside):
    os.symlink(outside, crawl / "linked")
    os.symlink("/dev/zero", crawl / "zero.html")  # followed, still a device: never opened
    db = tmp_path / "d.db"
    t0 = time.monotonic()
    assert run("scan", crawl, "--db", db, "--jobs", "1", "--follow-symlinks").exit_code == 0
    assert time.monotonic() - t0 < 120
    assert {"linked/secret.txt", "linked/private/notes.txt"} <= set(exported(db))
    assert "device" in skipped(db)["zero.html"]


def test_files_over_the_size_cap_are_skipped_unread(crawl, tmp_path):
    big = crawl / "www.qcnews.cn/huge.html"
    with big.open("wb") as f:
        f.truncate(3 * 2**20)  # sparse: costs nothing to make
    db = tmp_path / "d.db"
    r = run("scan", crawl, "--db", db, "--jobs", "1", "--max-file-size", "2")
    assert r.exit_code == 0
    assert "too large" in skipped(db)["www.qcnews.cn/huge.html"]
    assert len(exported(db)) == 14


def slow_or_crashing_reader(root, max_file_size, sf):
    """Stands in for read_file in the workers: one page hangs, one kills its worker."""
    if sf.path.endswith("1000234801.html"):
        time.sleep(3600)
    if sf.path.endswith("HVKQ8E2M0514D8K2.html"):
        faulthandler.disable()  # pytest's fault handler would print the crash it is meant to be
        os.kill(os.getpid(), signal.SIGSEGV)
    return READ_FILE(root, max_file_size, sf)


READ_FILE = ingest.read_file


def test_a_file_that_hangs_or_crashes_its_reader_costs_that_file(crawl, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "read_file", slow_or_crashing_reader)
    db = tmp_path / "d.db"
    summary = scan(crawl, db, Params(), options=ScanOptions(jobs=2, file_timeout=3))
    reasons = {s.path: s.reason for s in summary.skipped_examples}
    assert "timed out after 3 s" in reasons["www.qcnews.cn/2023/0313/1000234801.html"]
    assert "SIGSEGV" in reasons["www.163.com/2023/0310/HVKQ8E2M0514D8K2.html"]
    assert summary.documents == 12 and summary.files_skipped == 2
    # Retried on the next run, and read now that the reader behaves.
    monkeypatch.undo()
    summary = scan(crawl, db, Params(), jobs=2)
    assert summary.files_read == 2 and summary.documents == 14 and summary.skipped == 0


def test_a_damaged_table_is_one_line(crawl, tmp_path):
    db = tmp_path / "d.db"
    assert run("scan", crawl, "--db", db, "--jobs", "1").exit_code == 0
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root_page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'documents'").fetchone()[0]
    conn.close()
    with db.open("r+b") as f:  # scribble over the documents table's first page
        f.seek((root_page - 1) * page_size)
        f.write(b"\xa5" * page_size)
    for args in (["export"], ["scan", crawl, "--jobs", "1"]):
        r = run(*args, "--db", db)
        assert r.exit_code == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert "malformed" in r.stderr or "not a database" in r.stderr


# ----------------------------------------------------------------------------- unreadable, then readable


PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def without_permission_override() -> None:
    """In the child, before exec: root keeps its uid but loses the capabilities that let it read
    files whatever their mode, so a mode of 000 stops it as it stops any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def scan_where_permissions_bite(crawl: Path, db: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, "-m", "dedup", "scan", str(crawl), "--db", str(db), "--jobs", "1"],
            capture_output=True, text=True, timeout=300,
            preexec_fn=without_permission_override if os.geteuid() == 0 else None,
        )  # fmt: skip
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop the permission override here: {exc}")


def test_unreadable_files_and_folders_keep_their_documents_and_are_read_again(crawl, tmp_path):
    db = tmp_path / "d.db"
    r = scan_where_permissions_bite(crawl, db)
    assert r.returncode == 0, r.stderr
    before = exported(db)
    page = crawl / TREES
    folder = crawl / "www.sohu.com"
    new_page = crawl / "www.qcnews.cn/2023/0313/new.txt"
    new_page.write_text(f"汛期安全提示\n\n{NOTICE}\n", encoding="utf-8")
    os.utime(page, (time.time(), time.time()))  # touched: it must be read again, and cannot be
    try:
        for p in (new_page, page, folder):
            p.chmod(0o000)
        r = scan_where_permissions_bite(crawl, db)
        assert r.returncode == 0, r.stderr
        assert exported(db) == before  # nothing lost, nothing new
        skips = skipped(db)
        assert "Permission denied" in skips[TREES]
        assert "Permission denied" in skips["www.qcnews.cn/2023/0313/new.txt"]
        assert any(k.rstrip("/") == "www.sohu.com" and "Permission denied" in v for k, v in skips.items())
    finally:
        for p in (new_page, page):
            p.chmod(0o644)
        folder.chmod(0o755)
    # Readable again, with the same size and time: read now.
    r = scan_where_permissions_bite(crawl, db)
    assert r.returncode == 0, r.stderr
    after = exported(db)
    assert "www.qcnews.cn/2023/0313/new.txt" in after
    assert {k: v for k, v in after.items() if k != "www.qcnews.cn/2023/0313/new.txt"} == before
    assert skipped(db) == {}
    assert Store(db, readonly=True).stats()["documents"] == 15


def test_a_read_only_database_file_is_one_line(crawl, tmp_path):
    db = tmp_path / "d.db"
    assert run("scan", crawl, "--db", db, "--jobs", "1").exit_code == 0
    rows = exported(db)
    (crawl / "www.qcnews.cn/2023/0313/new.txt").write_text(f"汛期安全提示\n\n{NOTICE}\n", encoding="utf-8")
    db.chmod(0o444)
    try:
        r = scan_where_permissions_bite(crawl, db)
    finally:
        db.chmod(0o644)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "readonly" in r.stderr or "read-only" in r.stderr
    assert exported(db) == rows


# ----------------------------------------------------------------------------- signing


TOKENIZE, SIGN = ingest.tokenize_document, ingest.sign_tokens


def crashing_tokenizer(doc, patterns, learned=frozenset()):
    """Stands in for tokenize_document in the signing workers: one text kills its worker."""
    if "第11期" in doc.text:
        faulthandler.disable()
        os.kill(os.getpid(), signal.SIGSEGV)
    return TOKENIZE(doc, patterns, learned)


def raising_signer(doc, tokens, params):
    """Stands in for sign_tokens in the signing workers: one text raises."""
    if "第7期" in doc.text:
        raise ValueError("a bad text")
    return SIGN(doc, tokens, params)


def test_a_document_whose_signing_fails_costs_that_document(tmp_path, monkeypatch):
    """Signing workers read the texts from the database themselves, a chunk of documents at a
    time: a text that raises, or kills its worker, is skipped with its reason; the others of its
    chunk are signed, and both are signed on the next run."""
    crawl = tmp_path / "crawl" / "www.jbqx.cn"
    crawl.mkdir(parents=True)
    for i in range(30):  # enough to be signed in worker processes, not in this one
        (crawl / f"{i}.txt").write_text(
            f"江北区气象台第{i}期天气公报\n\n江北区气象台{i + 1}日发布第{i}期天气公报：受冷空气影响，"
            f"未来三天全区以阴雨天气为主，最高气温{10 + i % 7}摄氏度，最低气温{i % 5}摄氏度，"
            f"请市民注意防寒保暖，出行注意交通安全。本期编号JB{1000 + i * 37}。\n",
            encoding="utf-8",
        )
    monkeypatch.setattr(ingest, "tokenize_document", crashing_tokenizer)
    monkeypatch.setattr(ingest, "sign_tokens", raising_signer)
    db = tmp_path / "d.db"
    scan(tmp_path / "crawl", db, Params(), options=ScanOptions(jobs=2, file_timeout=20))
    store = Store(db, readonly=True)
    status = dict(store.db.execute("SELECT path, status FROM documents"))
    reasons = dict(store.db.execute("SELECT path, reason FROM skipped"))
    store.close()
    assert status.pop("www.jbqx.cn/7.txt") == status.pop("www.jbqx.cn/11.txt") == "skipped"
    assert set(status.values()) == {"ok"} and len(status) == 28
    assert "internal error while preparing: ValueError: a bad text" in reasons["www.jbqx.cn/7.txt"]
    assert "signing stopped" in reasons["www.jbqx.cn/11.txt"] and "SIGSEGV" in reasons["www.jbqx.cn/11.txt"]
    monkeypatch.undo()
    scan(tmp_path / "crawl", db, Params(), jobs=2)
    store = Store(db, readonly=True)
    assert {s for (s,) in store.db.execute("SELECT status FROM documents")} == {"ok"}
    store.close()
