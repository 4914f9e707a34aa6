"""Every bench in bench/ starts: run on demand, one that fails at import is found only when wanted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name != "stamp.py")


def test_there_are_benches() -> None:
    assert "boot_ratio.py" in SCRIPTS and "compare_bench.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_starts_and_says_how_to_run_it(script: str) -> None:
    # three benches once imported a name bench/stamp.py no longer had, and nothing noticed
    done = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: ")
