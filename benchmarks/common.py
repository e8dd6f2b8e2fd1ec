"""What the benchmark scripts share."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
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


SCORER = Path(__file__).resolve().parents[2] / "shared/corpus/score.py"


def run_scorer(labels: Path, pred: Path, out_json: Path, scorer: Path | str = SCORER, timeout: float = 3600) -> dict:
    """Score predictions (`dedup export` JSONL) against labels with the corpus scorer (score.py, run as a
    subprocess as benchmarks/quality.py does): its metrics from its --json file, plus its printed report
    under "report". Raises subprocess.CalledProcessError / TimeoutExpired if it fails."""
    cmd = [sys.executable, str(scorer), "--labels", str(labels), "--pred", str(pred), "--json", str(out_json)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=timeout)
    metrics = json.loads(out_json.read_text(encoding="utf-8"))
    metrics["report"] = res.stdout
    return metrics
