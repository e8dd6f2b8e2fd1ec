"""Ray is an optional extra: without it every command works, and `--engine ray` is one line and
exit 2. Ray is hidden from the processes these tests start (None in sys.modules), whether or not
it is installed."""

import subprocess
import sys

from click.testing import CliRunner

from dedup.cli import cli

NO_RAY = "import sys; sys.modules['ray'] = None; "


def run_without_ray(*args: str) -> subprocess.CompletedProcess:
    """The dedup command in a process where `import ray` fails."""
    code = NO_RAY + "from dedup.cli import main; sys.argv = ['dedup', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_without_ray_the_local_engine_scans_and_ray_is_one_line_exit_2(crawl, tmp_path):
    db = tmp_path / "d.db"
    r = run_without_ray("scan", str(crawl), "--db", str(db), "--quiet")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = run_without_ray("clusters", "--db", str(db), "--nl")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3
    r = run_without_ray("scan", str(crawl), "--db", str(tmp_path / "other.db"), "--engine", "ray")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "Error: --engine ray needs Ray, which is not installed: pip install 'crawl-dedup-zh[ray]'\n"
    assert not (tmp_path / "other.db").exists()


def test_the_library_imports_ray_only_for_the_ray_engine():
    code = (
        "import sys; import dedup, dedup.cli, dedup.pipeline, dedup.engine, dedup.query; "
        "print('dedup.ray_engine' in sys.modules, 'ray' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["False", "False"]


def test_address_needs_the_ray_engine(crawl, tmp_path):
    r = CliRunner().invoke(cli, ["scan", str(crawl), "--db", str(tmp_path / "d.db"), "--address", "10.0.0.5:6379"])
    assert r.exit_code == 2
    assert "Error: --address names a Ray cluster: it needs --engine ray" in r.output
    assert not (tmp_path / "d.db").exists()


def test_only_the_engines_import_ray():
    """ray_engine.py, and engine.py inside check_engine (is it installed?)."""
    from tests.test_architecture import imports, modules

    assert {rel for rel, path in modules().items() if "ray" in imports(path)} == {"engine.py", "ray_engine.py"}
