"""A real install, not only the editable one: the wheel carries the data files scans read."""

import subprocess
import sys
import zipfile

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
    for data in ("boilerplate.txt", "sources.toml", "credits.toml"):
        assert f"dedup/data/{data}" in names
    assert not any(n.startswith("data/") for n in names)  # the sample crawl stays in the checkout


def test_the_data_files_are_found_inside_the_package():
    assert DATA_DIR.parent.name == "dedup"
    assert (DATA_DIR / "boilerplate.txt").is_file() and (DATA_DIR / "sources.toml").is_file()
