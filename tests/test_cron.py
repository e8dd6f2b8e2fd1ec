"""The cron contract, through the real CLI in a subprocess: exit codes, the lock, signals, the
run ledger, foreign and read-only databases, mass removal, changed settings, and the exact
crontab and systemd commands of README.md."""

import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup.cli import cli
from dedup.dbfile import ScanLock
from tests.conftest import ROOT

README = ROOT / "README.md"
DEDUP = [sys.executable, "-m", "dedup"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def dedup(*args, env=None) -> Result:
    """The CLI in this process (click's runner): exit code, stdout and stderr apart. Signals, the
    lock held by another process and the README's commands use real subprocesses below."""
    r = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    return Result(r.exit_code, r.stdout, r.stderr)


def dedup_process(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*DEDUP, *map(str, args)], capture_output=True, text=True, env=full_env, timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


HANZI = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
    "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
    "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比"
    "或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
    "必战先回则任取据处理府研质"
)


def small_crawl(root: Path, n: int) -> Path:
    """n bulletin pages of one site, none a copy of another (each has its own random body)."""
    site = root / "www.qcgl.gov.cn"
    site.mkdir(parents=True)
    for i in range(n):
        rnd = random.Random(i)
        body = "".join(rnd.choice(HANZI) for _ in range(200))
        (site / f"{i}.txt").write_text(f"通告第{i}号\n\n{body}。\n", encoding="utf-8")
    return root


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(db: Path) -> list[dict]:
    r = dedup("export", "--db", db)
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


# ----------------------------------------------------------------------------- lock


def test_a_second_scan_exits_75_at_once_or_waits(crawl, tmp_path):
    db = tmp_path / "d.db"
    lock = ScanLock(db).acquire()
    try:
        t0 = time.monotonic()
        r = dedup("scan", crawl, "--db", db, "--jobs", "1")
        assert r.returncode == 75
        assert "another dedup scan is running" in one_line_error(r)
        assert time.monotonic() - t0 < 60
        assert not db.exists()  # nothing done
        r = dedup("scan", crawl, "--db", db, "--jobs", "1", "--wait", "0.5")
        assert r.returncode == 75 and "after waiting 0.5 s" in r.stderr
        # Released while the second scan waits: it goes on.
        proc = subprocess.Popen(
            [*DEDUP, "scan", str(crawl), "--db", str(db), "--jobs", "1", "--wait", "120"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)
        assert proc.poll() is None  # waiting
    finally:
        lock.release()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def test_a_lock_left_by_a_killed_run_never_blocks(crawl, tmp_path):
    db = tmp_path / "d.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from dedup.dbfile import ScanLock; ScanLock({str(db)!r}).acquire(); "
         "print('locked', flush=True); import time; time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    r = dedup("scan", crawl, "--db", db, "--jobs", "1")
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- foreign and read-only databases


def foreign_database(path: Path, app_id: int = 0) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('购物清单')")
    if app_id:
        conn.execute(f"PRAGMA application_id = {app_id}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("kind", ["tables", "application_id", "text"])
def test_another_applications_file_is_refused_untouched(crawl, tmp_path, kind):
    db = tmp_path / "theirs.db"
    if kind == "text":
        db.write_text("账目\n" * 100, encoding="utf-8")
    else:
        foreign_database(db, app_id=0x4D50 if kind == "application_id" else 0)
    before = (digest(db), db.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir()))
    for args in (["scan", crawl, "--jobs", "1"], ["clusters"], ["export"], ["runs"], ["skipped"]):
        r = dedup(*args, "--db", db)
        assert r.returncode == 1, (args, r.stderr)
        assert "not a dedup database" in one_line_error(r)
    assert (digest(db), db.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir())) == before


def test_read_only_commands_never_write(crawl, tmp_path):
    db = tmp_path / "d.db"
    assert dedup("scan", crawl, "--db", db, "--jobs", "1").returncode == 0
    before = (digest(db), db.stat().st_mtime_ns)
    cid = json.loads(dedup("clusters", "--db", db, "--nl").stdout.splitlines()[0])["id"]
    for args in (["clusters"], ["show", cid], ["export"], ["skipped"], ["boilerplate"], ["runs"]):
        r = dedup(*args, "--db", db)
        assert r.returncode == 0, (args, r.stderr)
    assert (digest(db), db.stat().st_mtime_ns) == before
    # A database of an older schema is not migrated by a read: it says how to upgrade.
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 6")
    conn.close()
    before = digest(db)
    r = dedup("clusters", "--db", db)
    assert r.returncode == 1 and "run `dedup scan` on it once" in one_line_error(r)
    assert digest(db) == before


# ----------------------------------------------------------------------------- nothing disappears silently


def test_an_emptied_crawl_is_refused_unless_allowed(tmp_path):
    crawl = small_crawl(tmp_path / "crawl", 3)
    db = tmp_path / "d.db"
    assert dedup("scan", crawl, "--db", db, "--jobs", "1").returncode == 0
    rows = export(db)
    moved = tmp_path / "away"
    shutil.move(crawl / "www.qcgl.gov.cn", moved)  # the crawl directory is there, but empty
    # Refused before anything is written, even what other settings would redo (re-signing).
    r = dedup("scan", crawl, "--db", db, "--jobs", "1", "--shingle-size", "4")
    assert r.returncode == 1
    line = one_line_error(r)
    assert "3 of the 3 stored files are missing" in line and "--allow-mass-removal" in line
    assert export(db) == rows
    last = json.loads(dedup("runs", "--db", db, "--nl").stdout.splitlines()[0])
    assert last["status"] == "refused"
    r = dedup("scan", crawl, "--db", db, "--jobs", "1", "--allow-mass-removal")
    assert r.returncode == 0, r.stderr
    assert export(db) == []


def test_a_big_share_of_files_gone_is_refused(tmp_path):
    crawl = small_crawl(tmp_path / "crawl", 30)
    db = tmp_path / "d.db"
    assert dedup("scan", crawl, "--db", db, "--jobs", "1").returncode == 0
    for i in range(20):
        (crawl / f"www.qcgl.gov.cn/{i}.txt").unlink()
    r = dedup("scan", crawl, "--db", db, "--jobs", "1")
    assert r.returncode == 1 and "20 of the 30 stored files are missing (67%)" in one_line_error(r)
    # A few files gone is ordinary life of a crawl.
    small = small_crawl(tmp_path / "small", 12)
    db2 = tmp_path / "d2.db"
    assert dedup("scan", small, "--db", db2, "--jobs", "1").returncode == 0
    for i in range(8):
        (small / f"www.qcgl.gov.cn/{i}.txt").unlink()
    assert dedup("scan", small, "--db", db2, "--jobs", "1").returncode == 0


# ----------------------------------------------------------------------------- settings that shape results


def test_a_changed_boilerplate_file_re_signs_and_matches_a_fresh_database(crawl, tmp_path):
    db = tmp_path / "d.db"
    assert dedup("scan", crawl, "--db", db, "--jobs", "1").returncode == 0
    custom = tmp_path / "boilerplate.txt"
    custom.write_text(
        (ROOT / "dedup" / "data" / "boilerplate.txt").read_text(encoding="utf-8") + "\n^.*植树.*$\n", encoding="utf-8"
    )
    r = dedup("scan", crawl, "--db", db, "--jobs", "1", "--boilerplate", custom)
    assert r.returncode == 0, r.stderr
    assert "signing all 14 documents again" in r.stdout
    fresh = tmp_path / "fresh.db"
    assert dedup("scan", crawl, "--db", fresh, "--jobs", "1", "--boilerplate", custom).returncode == 0
    assert export(db) == export(fresh)
    # Back to the bundled file: again signed, again the fresh result.
    r = dedup("scan", crawl, "--db", db, "--jobs", "1")
    assert "signing all 14 documents again" in r.stdout
    plain = tmp_path / "plain.db"
    assert dedup("scan", crawl, "--db", plain, "--jobs", "1").returncode == 0
    assert export(db) == export(plain)


def test_other_shingle_settings_re_sign_instead_of_refusing(crawl, tmp_path):
    db = tmp_path / "d.db"
    assert dedup("scan", crawl, "--db", db, "--jobs", "1").returncode == 0
    r = dedup("scan", crawl, "--db", db, "--jobs", "1", "--shingle-size", "4")
    assert r.returncode == 0, r.stderr
    assert "signing all 14 documents again" in r.stdout


# ----------------------------------------------------------------------------- ledger, DEDUP_DB, exports


def test_the_run_ledger_and_dedup_db(crawl, tmp_path):
    db = tmp_path / "ledger.db"
    env = {"DEDUP_DB": str(db)}
    copy = crawl / "www.sohu.com/2023/0312/656912345_121118820.html"
    kept = copy.read_bytes()
    copy.unlink()
    assert dedup("scan", crawl, "--jobs", "1", env=env).returncode == 0
    assert db.exists()
    copy.write_bytes(kept)
    (crawl / "www.qcnews.cn/2023/0313/1000234801.html").unlink()
    assert dedup("scan", crawl, "--jobs", "1", env=env).returncode == 0
    runs = [json.loads(x) for x in dedup("runs", "--nl", env=env).stdout.splitlines()]
    assert [r["status"] for r in runs] == ["done", "done"]
    newest, first = runs
    assert first["files_new"] == 11 and first["clusters_new"] == 3
    assert newest["files_new"] == 1 and newest["files_gone"] == 1 and newest["files_changed"] == 0
    assert newest["clusters_grown"] == 1 and newest["clusters_new"] == 0
    assert newest["started_at"] and newest["finished_at"]
    table = dedup("runs", env=env)
    assert table.returncode == 0 and "done" in table.stdout


def test_export_to_a_missing_folder_is_one_line(crawl, tmp_path):
    db = tmp_path / "d.db"
    assert dedup("scan", crawl, "--db", db, "--jobs", "1").returncode == 0
    r = dedup("export", "--db", db, "-o", tmp_path / "no" / "such" / "x.jsonl")
    assert r.returncode == 1 and "No such file or directory" in one_line_error(r)
    r = dedup("export", "--db", db, "-o", tmp_path / "x.jsonl")
    assert r.returncode == 0 and len((tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()) == 14
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# ----------------------------------------------------------------------------- signals


def children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.update(int(x) for x in (task / "children").read_text().split())
        except OSError:
            pass
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# SIGTERM as systemd or `kill` sends it, to the scan alone; SIGINT as Ctrl-C on a terminal sends
# it, to the whole process group, workers included.
@pytest.mark.parametrize("sig, code, to_group", [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)])
def test_a_signal_stops_the_workers_and_the_next_run_finishes(tmp_path, sig, code, to_group):
    crawl = small_crawl(tmp_path / "crawl", 800)
    db = tmp_path / "d.db"
    proc = subprocess.Popen(
        [*DEDUP, "scan", str(crawl), "--db", str(db), "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and len(workers) < 2:
        workers |= children(proc.pid)
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the scan ended before its workers could be seen")
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "InvalidStateError" not in err
    assert err.strip().splitlines() == [f"dedup: interrupted by {sig.name}; the run is marked interrupted, "
                                        "the next scan finishes it"]  # fmt: skip
    time.sleep(0.5)
    assert not [w for w in workers if alive(w)]
    runs = [json.loads(x) for x in dedup("runs", "--db", db, "--nl").stdout.splitlines()]
    assert runs[0]["status"] == "interrupted"
    r = dedup("scan", crawl, "--db", db, "--jobs", "2")
    assert r.returncode == 0, r.stderr
    fresh = tmp_path / "fresh.db"
    assert dedup("scan", crawl, "--db", fresh, "--jobs", "2").returncode == 0
    assert export(db) == export(fresh)


def test_export_after_an_interrupted_scan_claims_nothing_for_unclustered_documents(crawl, tmp_path):
    from dedup.pipeline import scan

    db = tmp_path / "d.db"

    def stop_when_signing(stage, done, total):
        if stage == "sign":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan(crawl, db, progress=stop_when_signing, jobs=1)
    r = dedup("export", "--db", db)
    assert r.returncode == 0
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    pending = [x for x in rows if x["role"] == "pending"]
    assert pending and not any(x["original"] for x in pending)
    assert "ended interrupted" in r.stderr and "not yet clustered" in r.stderr
    assert dedup("scan", crawl, "--db", db, "--jobs", "1").returncode == 0
    fresh = tmp_path / "fresh.db"
    assert dedup("scan", crawl, "--db", fresh, "--jobs", "1").returncode == 0
    assert export(db) == export(fresh)


# ----------------------------------------------------------------------------- disk full


@pytest.fixture
def small_fs(tmp_path):
    """A 640 KB tmpfs, where the machine lets this user mount one."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {r.stderr.decode(errors='replace').strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_one_line_and_an_intact_database(tmp_path, small_fs):
    crawl = small_crawl(tmp_path / "crawl", 400)
    db = small_fs / "d.db"
    r = dedup("scan", crawl, "--db", db, "--jobs", "1")
    assert r.returncode == 1, r.stderr
    assert "full" in one_line_error(r)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    # Room again: the same database finishes the work.
    big = tmp_path / "d.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(str(db) + suffix).exists():
            shutil.copy(str(db) + suffix, str(big) + suffix)
    r = dedup("scan", crawl, "--db", big, "--jobs", "1")
    assert r.returncode == 0, r.stderr
    fresh = tmp_path / "fresh.db"
    assert dedup("scan", crawl, "--db", fresh, "--jobs", "1").returncode == 0
    assert export(big) == export(fresh)


# ----------------------------------------------------------------------------- the README's cron lines


def readme_block_after(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    at = text.index(marker)
    m = re.search(r"```\n(.*?)```", text[at:], re.S)
    return m.group(1)


def run_as_cron(command: str, env: dict, paths: dict[str, str]) -> subprocess.CompletedProcess:
    for old, new in paths.items():
        command = command.replace(old, new)
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, env=env, timeout=300)


def cron_paths(tmp_path: Path, crawl: Path) -> dict[str, str]:
    return {
        "/opt/dedup/.venv/bin/dedup": shlex.quote(shutil.which("dedup", path=str(Path(sys.executable).parent))),
        "/var/lib/dedup/crawl.db": str(tmp_path / "crawl.db"),
        "/srv/crawl": str(crawl),
        "/var/log/dedup.log": str(tmp_path / "dedup.log"),
    }


def test_the_readme_crontab_line_runs(crawl, tmp_path):
    line = next(x for x in readme_block_after("A crontab line").splitlines() if x.strip() and x[0].isdigit())
    command = line.split(None, 5)[5]  # after minute, hour, day, month, weekday
    env = {"PATH": "/usr/bin:/bin", "LANG": "C"}  # what cron gives
    r = run_as_cron(command, env, cron_paths(tmp_path, crawl))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "dedup.log").read_text() == ""  # --quiet: nothing when all is well
    assert len(export(tmp_path / "crawl.db")) == 14


def test_the_readme_systemd_service_runs(crawl, tmp_path):
    unit = readme_block_after("Or a systemd timer")
    env = {"PATH": "/usr/bin:/bin"}
    for line in unit.splitlines():
        if line.startswith("Environment="):
            key, value = line.removeprefix("Environment=").split("=", 1)
            env[key] = value
    paths = cron_paths(tmp_path, crawl)
    env = {k: paths.get(v, v) for k, v in env.items()}
    exec_start = next(x for x in unit.splitlines() if x.startswith("ExecStart=")).removeprefix("ExecStart=")
    r = run_as_cron(exec_start, env, paths)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    assert len(export(tmp_path / "crawl.db")) == 14
