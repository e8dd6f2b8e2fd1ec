"""A real install, not only the editable one: the wheel carries the data files scans read."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from dedup import DATA_DIR
from tests.conftest import ROOT


def test_the_wheel_carries_the_data_files(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("boilerplate.txt", "sources.toml", "credits.toml", "names.txt.gz"):
        assert f"dedup/data/{data}" in names
    assert not any(n.startswith("data/") for n in names)  # the sample crawl stays in the checkout


def test_the_data_files_are_found_inside_the_package():
    assert DATA_DIR.parent.name == "dedup"
    assert (DATA_DIR / "boilerplate.txt").is_file() and (DATA_DIR / "sources.toml").is_file()


def test_the_installed_wheel_scans_the_sample_crawl(tmp_path):
    """The wheel installed into a fresh virtual environment (its dependencies taken from this one's
    site-packages, so no network) scans the sample crawl from outside the checkout, reading its data
    files from the installed package."""
    import sysconfig
    import venv

    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with zipfile.ZipFile(wheel) as z:  # pip's install of a pure-Python wheel: unpack it into site-packages
        z.extractall(site)
    # This environment's packages, without its editable dedup (a path in a .pth file is not a site
    # directory: the editable install's own .pth finder there is not run).
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [python, "-c", "import dedup, dedup.cli; print(dedup.__file__)"], cwd=work, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert where.startswith(site), where
    run = subprocess.run(
        [python, "-m", "dedup", "scan", str(ROOT / "data" / "sample_crawl"), "--db", "s.db", "--json"],
        cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["clusters"] >= 3 and summary["skipped_new"] == 0
    out = work / "report"
    rep = subprocess.run([python, "-m", "dedup", "report", "--html", str(out), "--db", "s.db"], cwd=work,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert rep.returncode == 0, rep.stderr
    assert (out / "index.html").is_file() and list((out / "c").glob("*.html"))
