"""How long `kharness compare` takes on two big result directories.

    .venv/bin/python bench/compare_bench.py [--cells 1000] [--reps 3] [--metrics 200]

Generates two directories (through harness.results' writers, with planted
changes) in a temporary directory, or reuses them from --dir, then times,
several times, loading and comparing apart and together (as `kharness
compare` runs them), and rendering the JSON document; the best and the median
of each are printed, and on the last line both beside their targets as a
ratio: load+compare 1.0 s, the JSON document 0.5 s (issue 18). The text
table is timed once, for the record.

What is timed is what `kharness compare --format json` runs before writing:
the new directory loaded by a forked child beside the baseline
(harness.compare.load.load_runs), and the document made by
jsondoc.render_parts (its cells encoded in two processes, harness.compare.beside;
the UTF-8 kept in the parts it was made in, to be written one after the other).
"(cpu)" counts this process and its children. --serial times the same with no
child, --side-by-side both, alternating, with the ratio child/serial.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from stamp import say  # bench/stamp.py (a script's own folder is on sys.path)

from harness.compare import beside, cli, jsondoc, text
from harness.compare.diff import Comparison, compare_runs
from harness.compare.load import RunSamples, Selection, load_runs
from harness.compare.rules import Rules

# The synthetic result directories are the tests' fakes (tests/fakes/synth.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes import synth

TARGETS_S = {"load+compare": 1.0, "json": 0.5}
T = TypeVar("T")


def generate(root: Path, cells: int, reps: int, metrics: int) -> tuple[Path, Path]:
    """The two directories under `root`, generated unless already there with these sizes."""
    stamp = root / "bench.json"
    params = {"cells": cells, "reps": reps, "metrics": metrics}
    base, new = root / "base", root / "new"
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return base, new
    for d in (base, new):
        shutil.rmtree(d, ignore_errors=True)
    t = time.perf_counter()
    recipe = synth.bench_cells(cells, metrics, reps=reps)
    synth.write_run(base, recipe)
    changed = synth.planted(recipe, "fio.*.iops", factor=0.9)  # a throughput regression
    changed = synth.planted(changed, "slab.kmalloc-64.bytes", factor=0.7)  # a saving
    synth.write_run(new, changed, seed=1)
    stamp.write_text(json.dumps(params))
    print(f"generated {cells} cells x {reps} reps x {metrics} metrics, twice, "
          f"in {time.perf_counter() - t:.1f} s")
    return base, new


@dataclass
class Timings:
    load: list[float] = field(default_factory=list)
    compare: list[float] = field(default_factory=list)
    together: list[float] = field(default_factory=list)
    together_cpu: list[float] = field(default_factory=list)  # this process's CPU time
    json: list[float] = field(default_factory=list)


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def measure(base: Path, new: Path, repeat: int) -> tuple[Timings, Comparison]:
    """Time loading and comparing apart, then together as `kharness compare` runs them,
    then rendering the JSON document of the last comparison. Each timed call starts with
    the previous one's objects freed, as a `kharness compare` process does."""
    t = Timings()
    last: list[Comparison] = []
    for _ in range(repeat):
        with cli.gc_paused():  # as compare_dirs does
            load_s, runs = timed(partial(_load, [base, new]))
            compare_s, _ = timed(partial(compare_runs, runs[0], runs[1], Rules()))
        del runs, _
        last.clear()
        cpu = _cpu()
        together_s, last = timed(partial(cli.compare_dirs, base, [new], Selection(), Rules()))
        t.together_cpu.append(_cpu() - cpu)
        t.load.append(load_s)
        t.compare.append(compare_s)
        t.together.append(together_s)
    for _ in range(repeat):
        with cli.gc_paused():  # as main does
            json_s, _ = timed(partial(jsondoc.render_parts, last))
        del _
        t.json.append(json_s)
    return t, last[0]


def _load(dirs: list[Path]) -> list[RunSamples]:
    return load_runs(dirs, Selection())  # as compare_dirs loads them


def _cpu() -> float:
    """CPU time of this process and of its children that have ended (the forked ones)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def side_by_side(base: Path, new: Path, rounds: int) -> None:
    """load+compare and the JSON document with children and without, alternating."""
    usable = beside.usable
    runs: dict[str, Timings] = {"children": Timings(), "serial": Timings()}
    for i in range(rounds):
        for mode in ("children", "serial") if i % 2 == 0 else ("serial", "children"):
            beside.usable = usable if mode == "children" else lambda: False
            try:
                t, _ = measure(base, new, 1)
            finally:
                beside.usable = usable
            for name in ("together", "together_cpu", "json"):
                getattr(runs[mode], name).extend(getattr(t, name))
    for name in ("together", "together_cpu", "json"):
        c, s = getattr(runs["children"], name), getattr(runs["serial"], name)
        print(f"{name:12} children best {min(c):.2f} median {statistics.median(c):.2f} s | serial best {min(s):.2f} "
              f"median {statistics.median(s):.2f} s | ratio best {min(c) / min(s):.2f} "
              f"median {statistics.median(c) / statistics.median(s):.2f}")


def report(t: Timings, cmp: Comparison) -> None:
    for name, xs in (("load", t.load), ("compare", t.compare), ("together", t.together),
                     ("(cpu)", t.together_cpu), ("json", t.json)):
        print(f"{name:9} best {min(xs):.2f} s  median {statistics.median(xs):.2f} s")
    with cli.gc_paused():  # as main does
        text_s, _ = timed(lambda: text.render([cmp]))
    print(f"text      {text_s:.2f} s (once; no target)")
    counts = cmp.metric_counts()
    print("verdicts  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    figures = {"load+compare": t.together, "json": t.json}
    print("targets   " + "   ".join(_against(name, figures[name], target) for name, target in TARGETS_S.items()))


def _against(name: str, xs: list[float], target: float) -> str:
    """`json 0.41 s / 0.5 s = 0.82 (median 0.86, within)`: the best and the median to the target."""
    best, median = min(xs), statistics.median(xs)
    verdict = "within" if median <= target else "OVER"
    return f"{name} {best:.2f} s / {target:.1f} s = {best / target:.2f} (median {median / target:.2f}, {verdict})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--metrics", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (best and median shown)")
    parser.add_argument("--dir", type=Path, help="keep the generated directories here for reuse")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--serial", action="store_true", help="no child beside this process")
    how.add_argument("--side-by-side", action="store_true",
                     help="with children and without, alternating, --repeat times each")
    args = parser.parse_args()
    say("bench/compare_bench.py")  # the date the README quotes
    if args.serial:
        beside.usable = lambda: False
    if args.dir:
        run(args, *generate(args.dir, args.cells, args.reps, args.metrics))
        return
    # Generating writes and fsyncs 12000 files: TMPDIR=/dev/shm makes it quicker.
    with tempfile.TemporaryDirectory(prefix="compare-bench.") as tmp:
        run(args, *generate(Path(tmp), args.cells, args.reps, args.metrics))


def run(args: argparse.Namespace, base: Path, new: Path) -> None:
    if args.side_by_side:
        side_by_side(base, new, 2 * args.repeat)
    else:
        report(*measure(base, new, args.repeat))


if __name__ == "__main__":
    main()
