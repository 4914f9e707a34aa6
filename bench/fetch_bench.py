#!/usr/bin/env python3
"""Kernel fetches, the README's "Kernels" table: each default kernel cold, all four, warm.

Each default kernel is fetched alone into a fresh, empty cache (cold: the
mirror's index, the .deb, unpacking, depmod), its .deb size read from the
cache; then all four into another fresh cache two at a time (`kernel fetch
-j 2`); then warm, in process (resolve() again) and as a whole command.
Mirror times vary: run it `--rounds` times and read the range.

    .venv/bin/python bench/fetch_bench.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stamp import ROOT, say

from harness.kernel.defaults import DEFAULT_KERNELS


def fetch(cache: Path, *argv: str) -> float:
    return fetch_json(cache, *argv)[0]


def fetch_json(cache: Path, *argv: str) -> tuple[float, list[dict[str, object]]]:
    """(seconds, what `kernel fetch --json` said) of one whole command."""
    env = {**os.environ, "KHARNESS_CACHE": str(cache)}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "harness", "kernel", "fetch", "--json", *argv], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    return time.monotonic() - t0, json.loads(out)


def deb_megabytes(cache: Path) -> float:
    return sum(p.stat().st_size for p in cache.rglob("*.deb")) / 1e6


def warm_in_process(cache: Path) -> float:
    """resolve() of every default on a warm cache, in this process (milliseconds)."""
    code = ("import time\nfrom harness.kernel.defaults import DEFAULT_KERNELS\n"
            "from harness.kernel.resolve import resolve\n"
            "[resolve(s) for s in DEFAULT_KERNELS.values()]\n"
            "t = time.perf_counter(); [resolve(s) for s in DEFAULT_KERNELS.values()]\n"
            "print((time.perf_counter() - t) * 1000)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "KHARNESS_CACHE": str(cache)},
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    say("bench/fetch_bench.py")
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as t:
            for name in DEFAULT_KERNELS:
                cache = Path(t) / name
                seconds, rows = fetch_json(cache, name)
                print(f"round {r + 1}: {name:<16} ({rows[0]['version']}) cold {seconds:5.1f} s  "
                      f".deb {deb_megabytes(cache):5.1f} MB")
            cache = Path(t) / "all"
            seconds = fetch(cache, "-j", "2")
            print(f"round {r + 1}: all four, two at a time: {seconds:.1f} s, {deb_megabytes(cache):.0f} MB")
            print(f"round {r + 1}: warm: in process {warm_in_process(cache):.1f} ms, "
                  f"whole command {fetch(cache):.2f} s")


if __name__ == "__main__":
    main()
