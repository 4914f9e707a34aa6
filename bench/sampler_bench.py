#!/usr/bin/env python3
"""The slab sampler's cost: fio-nvme IOPS with and without it, alternating in one boot.

One arm64 6.12 guest runs fio-nvme (2 s jobs) `--rounds` times without and
with the sampler at 1 s, alternately, so drift hits both sides alike. Prints
the sampler's own guest CPU per workload (sampler.cpu_seconds, the exact
figure) against its target, and the median IOPS of both sides with their
ratio (TCG makes IOPS noisy).

    .venv/bin/python bench/sampler_bench.py [--rounds 3] [--kernel trixie-arm64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from stamp import say  # bench/stamp.py (a script's own folder is on sys.path)

from harness.config.load import load
from harness.run import sampling
from harness.run.boot import boot_cell

CPU_TARGET_S = 0.5  # per workload: about 15 ms per sample plus start and stop
IOPS_TARGET = 0.95  # sampled / unsampled
CONFIG = """
name: sampler-cost
defaults:
  workloads: [fio-nvme]
  timeouts: {{boot: 240, workload: 120, cell: 900}}
include:
  - {{kernel: {kernel}}}
"""
FIO = "sh /kharness/scripts/kharness-run.sh /kharness/scripts/fio-nvme.sh"


def iops(stdout: bytes) -> float:
    doc = json.loads(stdout[stdout.index(b"{"):])
    return float(sum(j["read"]["iops"] + j["write"]["iops"] for j in doc["jobs"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="workloads per side (default 3)")
    ap.add_argument("--kernel", default="trixie-arm64")
    args = ap.parse_args()
    say("bench/sampler_bench.py")  # the date the README quotes
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "c.yaml"
        cfg_path.write_text(CONFIG.format(kernel=args.kernel))
        cell = load(cfg_path).cells[0]
        rep = Path(tmp) / "rep"
        (rep / "raw").mkdir(parents=True)
        runs: dict[bool, list[float]] = {False: [], True: []}
        cpu: list[float] = []
        with boot_cell(cell, rep) as booted:
            guest = booted.guest
            for i in range(2 * args.rounds):
                sampled = i % 2 == 1
                if sampled and (why := sampling.start(guest, 1.0)) is not None:
                    raise SystemExit(f"sampler did not start: {why}")
                res = guest.run(FIO, timeout=120, env={"KH_SERIAL_NVME": "nvme", "KH_FIND_NVME": "block",
                                                       "KH_RUNTIME": "2"})
                if res.exit_status != 0:
                    raise SystemExit(f"fio-nvme failed: {res.stderr.decode(errors='replace')[-300:]}")
                if sampled:
                    metrics, _ = sampling.stop(guest, rep / "raw", f"cost{i}", 1.0, 4096)
                    cpu.append({m.name: m.value for m in metrics}["sampler.cpu_seconds"])
                runs[sampled].append(iops(res.stdout))
    off, on = statistics.median(runs[False]), statistics.median(runs[True])
    print(f"fio-nvme IOPS without sampler {runs[False]}, with {runs[True]}")
    print(f"sampled/unsampled IOPS: {on / off:.3f} (target >= {IOPS_TARGET})")
    print(f"sampler CPU per workload: max {max(cpu):.3f} s, median {statistics.median(cpu):.3f} s "
          f"(target < {CPU_TARGET_S} s; ratio {max(cpu) / CPU_TARGET_S:.2f})")


if __name__ == "__main__":
    main()
