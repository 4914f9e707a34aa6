#!/usr/bin/env python3
"""A whole run against its floor, and the harness's own time per cell (issue 18, goals 2 and 4).

Runs a config (default configs/quick.yaml) with `kharness run` as a user
would, warm (one untimed run first fills the caches unless --no-warmup),
then reads every repetition's cell.json:

- floor: the sum of its boots and workloads divided by the guests run at
  once (-j); the run's wall time against it (target: at most 1.10);
- per cell, outside boot and workloads (target: at most 0.3 s), and what
  that time is: prepare (initramfs for this boot), setup (init's late
  modules, the histograms, the disks), the snapshots, the slab sampler's
  start and stop, dmesg, shutdown (guest-side parts are the guest's own
  clock), the rest (SSH round trips, parsing and writing results).

    .venv/bin/python bench/cell_bench.py [--config configs/quick.yaml] [-j 1] [--no-warmup]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stamp import say  # bench/stamp.py (a script's own folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]


def run(config: Path, out: Path, jobs: int) -> float:
    argv = [sys.executable, "-m", "harness", "run", str(config), "-o", str(out), "-j", str(jobs), "-q"]
    t0 = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        sys.exit(f"cell_bench: kharness run failed (exit {done.returncode}): {done.stdout[-500:]}{done.stderr[-500:]}")
    return seconds


def parts(timings: dict[str, float]) -> dict[str, float]:
    """One repetition's time outside boot and workloads, by part."""
    workloads = sum(v for k, v in timings.items() if k.startswith("workload."))
    snaps = sum(v for k, v in timings.items() if k.startswith("snapshot."))
    sampler = sum(v for k, v in timings.items() if k.startswith("sampler."))
    named = {"prepare": timings.get("prepare", 0.0), "setup": timings.get("setup", 0.0),
             "snapshots": snaps, "sampler": sampler, "dmesg": timings.get("dmesg", 0.0),
             "shutdown": timings.get("shutdown", 0.0)}
    outside = timings["total"] - timings["boot"] - workloads
    return {"outside boot+workloads": outside, **named, "rest": outside - sum(named.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "quick.yaml")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="guests at once (default 1)")
    ap.add_argument("--no-warmup", action="store_true", help="time the first run (caches already warm)")
    args = ap.parse_args()
    say("bench/cell_bench.py")
    with tempfile.TemporaryDirectory() as t:
        if not args.no_warmup:
            run(args.config, Path(t) / "warmup", args.jobs)
        wall = run(args.config, Path(t) / "timed", args.jobs)
        reps = [json.loads(p.read_text()) for p in sorted((Path(t) / "timed" / "cells").glob("*/*/cell.json"))]
    timings = [r["timings"] for r in reps]
    floor = sum(x["boot"] + sum(v for k, v in x.items() if k.startswith("workload.")) for x in timings) / args.jobs
    split = [parts(x) for x in timings]
    print(f"{args.config.name}: {len(reps)} repetitions, {args.jobs} guest(s) at once")
    print(f"{'':<26} {'measured':>9} {'target':>8}")
    print(f"{'wall s':<26} {wall:9.2f}")
    print(f"{'floor s (boots+workloads)':<26} {floor:9.2f}")
    ratio = wall / floor
    print(f"{'wall / floor':<26} {ratio:9.2f} {'<=1.10':>8}  {'ok' if ratio <= 1.10 else 'over'}")
    per_cell = statistics.median(s["outside boot+workloads"] for s in split)
    print(f"{'per cell outside, s':<26} {per_cell:9.2f} {'<=0.30':>8}  {'ok' if per_cell <= 0.30 else 'over'}")
    outside_reps = wall - sum(x["total"] for x in timings) / args.jobs
    print(f"{'outside repetitions, s':<26} {outside_reps:9.2f}   (start-up, kernels resolved, report)")
    print("\nper cell, outside boot and workloads (median, min, max s):")
    for key in split[0]:
        values = [s[key] for s in split]
        print(f"  {key:<24} {statistics.median(values):6.3f} {min(values):6.3f} {max(values):6.3f}")


if __name__ == "__main__":
    main()
