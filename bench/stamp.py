"""The line every bench prints first: when and where its figures were measured.

The README quotes each figure as "(bench/X.py, measured YYYY-MM-DD)"; this
line is where the date comes from, with what the figure depends on (the
host's cores and load, the kharness commit).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # this checkout: the benches' configs and data


def _measured_tree() -> Path:
    """The tree whose harness package this process imports: another tree's when a bench is
    run against older code (`PYTHONPATH=<worktree>`), else this checkout."""
    try:
        import harness
    except ImportError:
        return ROOT
    return Path(harness.__file__).resolve().parent.parent


def stamp(bench: str) -> str:
    """`bench/X.py, measured 2026-12-01 10:42 on host (2 cores, load 1.3), kharness abc1234`."""
    try:
        rev = subprocess.run(["git", "-C", str(_measured_tree()), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False).stdout.strip() or "?"
    except OSError:
        rev = "?"
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0]
    return f"{bench}, measured {now} on {platform.node()} ({os.cpu_count()} cores, load {load:.1f}), kharness {rev}"


def say(bench: str) -> None:
    print(stamp(bench), flush=True)
