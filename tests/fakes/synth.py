"""FAKE: synthetic result directories for unit tests and benchmarks.

A directory is written exactly as `kharness run` writes one: through
`harness.results` (write_metrics, then write_record, which marks a repetition
finished) and a run.json through `harness.atomic`. Values are drawn around
each metric's mean with a relative noise, from a generator seeded by the
cell's id, so the same recipe and seed always give the same files.

    base = synth.bench_cells(cells=10, metrics=50)
    new = synth.planted(base, "swiotlb.bounces", factor=1.10)
    synth.write_run(tmp / "base", base); synth.write_run(tmp / "new", new)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import atomic, results
from harness.collect import catalogue
from harness.compare.diff import Comparison, compare_runs
from harness.compare.load import Selection, load_samples
from harness.compare.rules import Rules
from harness.config import identity
from harness.model import Better, Metric, MetricKind, Status, worst

SIZE_CLASSES = ("8", "16", "32", "64", "96", "128", "192", "256", "512", "1k", "2k", "4k", "8k")
BOUNCE_SIZES = ("1", "8", "16", "32", "96")


@dataclass(frozen=True)
class SynthMetric:
    """A metric and how its repetitions scatter: mean x (1 + noise x N(0, 1)), or,
    when `spread` is given, exactly mean x (1 + spread[rep]) (for tests that need
    to know the values)."""

    name: str
    mean: float
    noise: float = 0.01
    unit: str = ""
    kind: MetricKind = "gauge"
    better: Better = "neutral"
    workload: str = "boot"
    spread: tuple[float, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.workload}:{self.name}"


@dataclass(frozen=True)
class SynthCell:
    """One cell of a synthetic run. `statuses` gives one status per repetition
    (default: all pass); reps in `unfinished` get metrics but no cell.json, as a
    killed run leaves them."""

    axes: tuple[tuple[str, Any], ...]
    metrics: tuple[SynthMetric, ...]
    reps: int = 3
    statuses: tuple[Status, ...] = ()
    unfinished: tuple[int, ...] = ()

    @property
    def slug(self) -> str:
        return "-".join(str(v) for _, v in self.axes) or "cell"

    @property
    def id(self) -> str:
        return cell_id(dict(self.axes))

    def status(self, rep: int) -> Status:
        return self.statuses[rep] if rep < len(self.statuses) else "pass"


def cell_id(axes: dict[str, Any]) -> str:
    """A readable slug plus the matrix's short hash of the axes."""
    slug = "-".join(str(axes[k]) for k in sorted(axes)) or "cell"
    return f"{slug}-{identity.cell_hash(axes)}"


def write_run(path: Path, cells: Iterable[SynthCell], *, seed: int = 0) -> Path:
    """Write a result directory for `cells` at `path`; returns `path`."""
    cells = list(cells)
    for cell in cells:
        _write_cell(path, cell, seed)
    run = {
        "format": results.RESULT_FORMAT,
        "config": {"name": "synthetic"},
        "cells": [
            {"id": c.id, "slug": c.slug, "axes": dict(c.axes), "repeat": c.reps,
             "status": _cell_status(c)}
            for c in cells
        ],
    }
    atomic.write_json(path / results.RUN_FILE, run)
    return path


def _write_cell(run_dir: Path, cell: SynthCell, seed: int) -> None:
    rng = random.Random(f"{seed}:{cell.id}")
    axes = dict(cell.axes)
    for rep in range(cell.reps):
        rd = results.rep_dir(run_dir, cell.id, rep)
        results.write_metrics(rd, [_draw(m, rep, rng) for m in cell.metrics])
        if rep in cell.unfinished:
            continue
        record = results.RepRecord(
            cell_id=cell.id, slug=cell.slug, axes=axes, rep=rep, status=cell.status(rep),
            reason="" if cell.status(rep) == "pass" else "synthetic",
        )
        results.write_record(rd, record)


def _draw(m: SynthMetric, rep: int, rng: random.Random) -> Metric:
    offset = m.spread[rep % len(m.spread)] if m.spread else m.noise * rng.gauss(0.0, 1.0)
    value = m.mean * (1.0 + offset)
    if float(m.mean).is_integer():  # counts stay counts
        value = float(max(0, round(value)))
    return Metric(m.name, value, m.unit, m.kind, m.better, m.workload)


def _cell_status(cell: SynthCell) -> str:
    statuses = {cell.status(r) for r in range(cell.reps) if r not in cell.unfinished}
    return worst(statuses) or "interrupted"


def planted(
    cells: Sequence[SynthCell], pattern: str, *, factor: float = 1.0,
    noise: float | None = None, where: dict[str, Any] | None = None,
) -> list[SynthCell]:
    """The same cells with every metric whose name matches `pattern` scaled by
    `factor` (and its noise set to `noise`), in cells whose axes match `where`."""

    def change(m: SynthMetric) -> SynthMetric:
        if not fnmatch.fnmatchcase(m.name, pattern):
            return m
        return dataclasses.replace(m, mean=m.mean * factor, noise=m.noise if noise is None else noise)

    out = []
    for cell in cells:
        if where and any(dict(cell.axes).get(k) != v for k, v in where.items()):
            out.append(cell)
            continue
        out.append(dataclasses.replace(cell, metrics=tuple(change(m) for m in cell.metrics)))
    return out


def catalogue_metrics(workload: str, *, noise: float = 0.01) -> list[SynthMetric]:
    """The metrics a cell reports for one workload, named, with units and directions,
    as the collectors' catalogue has them, and plausible magnitudes (arm64, minalign
    8, non-coherent NVMe)."""
    means: list[tuple[str, float]] = []
    for i, size in enumerate(SIZE_CLASSES):
        objects = float(4096 >> (i // 3))
        means += [(f"slab.kmalloc-{size}.objects", objects),
                  (f"slab.kmalloc-{size}.bytes", objects * 64)]
    means += [
        ("slab.kmalloc.bytes", 3_000_000.0), ("slab.minalign", 8.0),
        ("meminfo.slab", 40_960_000.0), ("meminfo.sunreclaim", 20_480_000.0),
        ("swiotlb.present", 1.0), ("swiotlb.slots", 512.0), ("swiotlb.used", 4.0),
        ("swiotlb.hiwater", 12.0), ("swiotlb.bounces", 2251.0), ("swiotlb.bounced_bytes", 2251.0),
        *((f"swiotlb.bounces.size-{s}", 400.0) for s in BOUNCE_SIZES),
        *((f"swiotlb.bounces.dev-{d}", 1100.0) for d in ("0000_00_02_0", "0000_00_03_0")),
    ]
    for rw in ("read", "write"):
        means += [(f"fio.randrw.{rw}.iops", 5000.0), (f"fio.randrw.{rw}.bw", 20_480_000.0),
                  (f"fio.randrw.{rw}.clat_p50_ns", 180_000.0),
                  (f"fio.randrw.{rw}.clat_p99_ns", 900_000.0), (f"fio.randrw.{rw}.ios", 20_000.0)]
    means.append(("vmstat.pgpgin", 80_000.0))
    exact = ("slab.minalign", "swiotlb.present", "swiotlb.slots", "swiotlb.used")
    return [_catalogued(name, mean, 0.0 if name in exact else noise, workload)
            for name, mean in means]


def _catalogued(name: str, mean: float, noise: float, workload: str) -> SynthMetric:
    spec = catalogue.spec(name)
    if spec is None:
        raise KeyError(f"{name}: not in harness.collect.catalogue")
    return SynthMetric(name, mean, noise, spec.unit, spec.kind, spec.better, workload)


WORKLOADS = ("boot", "fio-randrw", "fio-seq", "fio-small", "net", "idle")


def bench_metrics(count: int, *, noise: float = 0.01) -> tuple[SynthMetric, ...]:
    """`count` distinct metrics: the catalogue over as many workloads as it takes."""
    out: list[SynthMetric] = []
    for w in itertools.count():
        workload = WORKLOADS[w] if w < len(WORKLOADS) else f"w{w}"
        out += catalogue_metrics(workload, noise=noise)
        if len(out) >= count:
            return tuple(out[:count])
    raise AssertionError("unreachable")


def bench_cells(cells: int, metrics: int, *, reps: int = 3, noise: float = 0.01) -> list[SynthCell]:
    """A matrix of `cells` cells (kernel x swiotlb x coherence x device x queue depth)."""
    kernels = ("bookworm-arm64", "trixie-arm64", "bookworm-amd64", "trixie-amd64")
    swiotlb = ("default", "force", "noforce")
    devices = ("nvme", "virtio-blk", "e1000e")
    ms = bench_metrics(metrics, noise=noise)
    combos = list(itertools.product(kernels, swiotlb, (True, False), devices))
    out = []
    for i in range(cells):
        kernel, mode, coherent, device = combos[i % len(combos)]
        axes = (("device", device), ("dma_coherent", coherent), ("iodepth", 1 + i // len(combos)),
                ("kernel", kernel), ("swiotlb", mode))
        out.append(SynthCell(axes, ms, reps))
    return out


def minalign_example(reps: int = 3) -> tuple[list[SynthCell], list[SynthCell]]:
    """The flagship question in miniature: arm64 6.1 (minalign 128) against 6.12
    (minalign 8, small buffers bounced through swiotlb on a non-coherent device).
    Returns (bookworm cells, trixie cells); their kernel axes differ."""

    def slab(classes: dict[str, float]) -> list[SynthMetric]:
        out = []
        for size, objects in classes.items():
            out.append(SynthMetric(f"slab.kmalloc-{size}.objects", objects, 0.01, "objects",
                                   "gauge", "lower"))
            out.append(SynthMetric(f"slab.kmalloc-{size}.bytes", objects * _bytes_of(size), 0.01,
                                   "bytes", "gauge", "lower"))
        return out

    def cell(kernel: str, minalign: float, classes: dict[str, float], bounces: float,
             iops: float, device: str) -> SynthCell:
        ms = [
            *slab(classes),
            SynthMetric("slab.minalign", minalign, 0.0, "bytes", "gauge", "neutral"),
            SynthMetric("swiotlb.bounces", bounces, 0.02, "", "counter", "lower", "fio-small"),
            SynthMetric("fio.small.read.iops", iops, 0.02, "IO/s", "gauge", "higher", "fio-small"),
        ]
        axes = (("device", device), ("dma_coherent", False), ("kernel", kernel))
        return SynthCell(axes, tuple(ms), reps)

    old = {"128": 9000.0, "192": 1200.0, "256": 800.0}
    new = {"8": 3000.0, "16": 2500.0, "32": 1800.0, "64": 1500.0, "96": 300.0, "128": 600.0,
           "192": 1200.0, "256": 800.0}
    bookworm = [cell("bookworm-arm64", 128.0, old, 0.0, 5200.0, d) for d in ("nvme", "virtio-blk")]
    trixie = [cell("trixie-arm64", 8.0, new, b, 5000.0, d)
              for d, b in (("nvme", 2251.0), ("virtio-blk", 1830.0))]
    return bookworm, trixie


def _bytes_of(size: str) -> int:
    return int(size[:-1]) * 1024 if size.endswith("k") else int(size)


def planted_comparison(tmp: Path) -> Comparison:
    """Two small run directories written in `tmp` (3 cells x 30 metrics x 3 reps, swiotlb.* up 30%),
    loaded and compared as `kharness compare` does: rows of every verdict for the reports' tests."""
    base = bench_cells(3, 30, reps=3, noise=0.02)
    new = planted(base, "swiotlb.*", factor=1.3)
    dirs = [write_run(tmp / "base", base), write_run(tmp / "new", new, seed=1)]
    runs = [load_samples(Path(d), Selection()) for d in dirs]
    return compare_runs(runs[0], runs[1], Rules())
