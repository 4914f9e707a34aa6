#!/usr/bin/env python3
"""The README's quick start, timed: `kharness run configs/quick.yaml` cold, then warm.

Cold is a fresh, empty KHARNESS_CACHE (so the four kernel downloads and the
guest userland build are in it); warm runs the same command again on that
cache. Prints both wall times and the run's summary (`kharness show`), which
is the table the README shows and the kmalloc figures it quotes.

    .venv/bin/python bench/quickstart_bench.py [--cache DIR] [--warm-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stamp import ROOT, say


def timed_run(cache: Path, out: Path) -> float:
    env = {**os.environ, "KHARNESS_CACHE": str(cache)}
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "harness", "run", "configs/quick.yaml", "-q", "-o", str(out)],
                   cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="the cache to use (default: a fresh temporary one, i.e. cold)")
    ap.add_argument("--warm-only", action="store_true", help="skip the cold run (the cache is already full)")
    args = ap.parse_args()
    say("bench/quickstart_bench.py")
    with tempfile.TemporaryDirectory() as t:
        cache = args.cache or Path(t) / "cache"
        if not args.warm_only:
            print(f"cold: {timed_run(cache, Path(t) / 'cold'):.0f} s (downloads and userland build included)")
        warm = Path(t) / "warm"
        print(f"warm: {timed_run(cache, warm):.0f} s")
        subprocess.run([sys.executable, "-m", "harness", "show", str(warm)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
