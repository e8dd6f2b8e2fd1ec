"""What the benchmark scripts share."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path


def dedup_command(arg: str | None) -> list[str]:
    """The `dedup` to measure: --dedup CMD if given, else the one beside this Python, on PATH, or
    `python -m dedup`."""
    if arg:
        return shlex.split(arg)
    exe = Path(sys.executable).parent / "dedup"
    if exe.exists():
        return [str(exe)]
    if found := shutil.which("dedup"):
        return [found]
    return [sys.executable, "-m", "dedup"]
