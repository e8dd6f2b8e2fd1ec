"""What the benchmark scripts share."""

from __future__ import annotations

import os
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


def live_processes() -> dict[int, list[bytes]]:
    """pid -> the fields of /proc/PID/stat after the command name (state, ppid, pgrp, session...)
    of every live process that is not a zombie."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z":
            out[int(entry)] = fields
    return out
