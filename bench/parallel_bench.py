"""Parallel cells: serial vs two guests at a time, and how the cost grows with cells.

    .venv/bin/python bench/parallel_bench.py [--jobs 2] [--sizes 8,16,32] [--fake-sizes 32]

1. Real boots of an 8-cell matrix (trixie-arm64 and bookworm-x86_64 under
   TCG, 1 vCPU and 512 MiB each, the idle workload), once with --jobs 1 and
   once with --jobs 2; prints both wall times and their ratio (target: at
   most 0.6 on a 2-core host).
2. The same matrix at each of --sizes cells with --jobs 2, and the cost per
   cell, which should stay flat (linear growth). Sizes listed in
   --fake-sizes use a FAKE boot instead (it sleeps as long as a real boot
   took in step 1, then answers from captured guest output; labelled "fake"
   in the output) for when real boots would take too long.

Wall times include the run's fixed costs (run.json, tool versions, reports).
The host's load average is printed with each figure, and before step 1 the
bench measures how much two busy processes get done together compared with
one ("parallel capacity"): on an idle 2-core host that is about 2.0x, and
the 0.6 target assumes so. On a shared machine it can be far less, and no
scheduler can make two guests at a time faster than the cores allow.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from multiprocessing import Process, Queue
from pathlib import Path

from stamp import say  # bench/stamp.py (a script's own folder is on sys.path)

from harness.config.load import Config, load
from harness.machine.guest import Booted
from harness.model import Cell
from harness.run.boot import boot_cell
from harness.run.runner import RunOptions, RunOutcome, run

TARGET_RATIO = 0.6
BootFn = Callable[[Cell, Path], AbstractContextManager[Booted]]


def bench_config(root: Path, cells: int) -> Config:
    """`cells` cells: two kernels x distinct harmless kernel words (cells must differ to be cells)."""
    words = ", ".join(f"[kharness.bench={i}]" for i in range((cells + 1) // 2))
    path = root / f"bench-{cells}.yaml"
    path.write_text(f"""
name: bench-{cells}
defaults:
  memory: 512
  cpus: 1
  workloads: [idle]
matrix:
  kernel: [trixie-arm64, bookworm-x86_64]
  cmdline: [{words}]
""")
    config = load(path)
    assert len(config.cells) >= cells
    return config


def real_boot(config: Config) -> BootFn:
    return lambda cell, path: boot_cell(cell, path, "auto", config.workload_dirs)


def fake_boot(seconds: float) -> BootFn:
    """FAKE: sleeps like a real boot + workload, then a fake guest answers from captured output."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.fakes.guest import fake_boot as make_fake
    from tests.fakes.runs import guest_factory

    inner = make_fake(guest_factory())

    @contextmanager
    def boot(cell: Cell, path: Path) -> Iterator[Booted]:
        time.sleep(seconds)
        with inner(cell, path) as booted:
            yield booted

    return boot


def timed(config: Config, out: Path, jobs: int, boot: BootFn) -> tuple[float, RunOutcome]:
    t = time.perf_counter()
    outcome = run(config, RunOptions(output=out, jobs=jobs), boot)
    wall = time.perf_counter() - t
    bad = [r for r in outcome.records if r.status != "pass"]
    if bad:
        print(f"  warning: {len(bad)} cells did not pass, e.g. {bad[0].slug}: {bad[0].reason}")
    return wall, outcome


def _spin(seconds: float, result: Queue[int]) -> None:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    result.put(n)


def parallel_capacity(workers: int = 2, seconds: float = 2.0) -> float:
    """Work done by `workers` busy processes at once, relative to one alone."""
    def together(k: int) -> int:
        q: Queue[int] = Queue()
        procs = [Process(target=_spin, args=(seconds, q)) for _ in range(k)]
        for p in procs:
            p.start()
        total = sum(q.get() for _ in procs)
        for p in procs:
            p.join()
        return total
    return together(workers) / together(1)


def load_avg() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def serial_vs_parallel(root: Path, jobs: int) -> tuple[float, float]:
    """Step 1; returns the parallel wall time and the mean repetition time of the serial run."""
    config = bench_config(root, 8)
    capacity = parallel_capacity(jobs)
    print(f"8 cells, real boots ({os.cpu_count()} host cores; {jobs} busy processes get "
          f"{capacity:.2f}x the work of one done, {load_avg()}):")
    serial, outcome = timed(config, root / "serial", 1, real_boot(config))
    rep = statistics.mean(r.timings.get("total", 0.0) for r in outcome.records)
    print(f"  --jobs 1: {serial:6.1f} s  ({rep:.1f} s per repetition, {load_avg()})")
    parallel, _ = timed(config, root / "parallel", jobs, real_boot(config))
    print(f"  --jobs {jobs}: {parallel:6.1f} s  ({load_avg()})")
    ratio = parallel / serial
    print(f"  ratio {ratio:.2f} (target <= {TARGET_RATIO}): {'ok' if ratio <= TARGET_RATIO else 'MISSED'}")
    return parallel, rep


def scaling(root: Path, sizes: list[int], fake: set[int], jobs: int, known: dict[int, float],
            rep_seconds: float) -> None:
    print(f"scaling, --jobs {jobs}:")
    for n in sizes:
        config = bench_config(root, n)
        kind = "FAKE boots" if n in fake else "real boots"
        if n in known and n not in fake:
            wall = known[n]
        else:
            boot = fake_boot(rep_seconds) if n in fake else real_boot(config)
            wall, _ = timed(config, root / f"scale-{n}-{kind[:4].lower()}", jobs, boot)
        print(f"  {n:3d} cells: {wall:6.1f} s, {wall / n:5.2f} s per cell  ({kind}, {load_avg()})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sizes", default="8,16,32", help="cell counts for the scaling part")
    ap.add_argument("--fake-sizes", default="", help="of those, the ones run with a FAKE sleeping boot")
    ap.add_argument("--dir", type=Path, help="keep the result directories here (default: a temporary one)")
    args = ap.parse_args()
    say("bench/parallel_bench.py")  # the date the README quotes
    sizes = [int(s) for s in args.sizes.split(",") if s]
    fake = {int(s) for s in args.fake_sizes.split(",") if s}
    with tempfile.TemporaryDirectory(prefix="kharness-bench-") as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        parallel, rep = serial_vs_parallel(root, args.jobs)
        scaling(root, sizes, fake, args.jobs, {8: parallel}, rep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
