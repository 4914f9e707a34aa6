"""What the HTML report plots, as plain values: per cell, one chart per question,
one bar series per result directory (mean, with the stddev as error bar).
harness.formats.svg draws them.

- slab bytes per kmalloc size class: what the minalign change saves;
- swiotlb bounces per workload, and per bounce size: what it costs;
- fio IOPS per job and direction: whether the cost shows in throughput.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.compare.diff import Comparison
from harness.compare.load import CellSamples, Identity, RunSamples
from harness.compare.stats import summarize
from harness.formats.svg import Chart, Series

_SLAB_BYTES = re.compile(r"slab\.kmalloc-(\d+k?)\.bytes$")
_BOUNCE_SIZE = re.compile(r"swiotlb\.bounces\.size-(\d+)$")
_FIO_IOPS = re.compile(r"fio\.(.+)\.(read|write)\.iops$")


@dataclass(frozen=True)
class CellCharts:
    slug: str
    charts: tuple[Chart, ...]


def report_charts(comparisons: Sequence[Comparison], max_cells: int) -> tuple[list[CellCharts], int]:
    """Charts for the cells worth plotting, most changes first; and of how many cells."""
    runs = [comparisons[0].base, *(c.new for c in comparisons)]
    ranked = _cells_by_interest(comparisons)
    out: list[CellCharts] = []
    for ident in ranked:
        if len(out) == max_cells:
            break
        cells = [r.cells.get(ident) for r in runs]
        charts = cell_charts(runs, cells)
        if charts:
            slug = next(c.slug for c in cells if c is not None)
            out.append(CellCharts(slug, tuple(charts)))
    return out, len(ranked)


def _cells_by_interest(comparisons: Sequence[Comparison]) -> list[Identity]:
    score: dict[Identity, int] = {}
    for cmp in comparisons:
        for cell in cmp.cells:
            changed = sum(1 for m in cell.metrics if m.judgement.verdict != "unchanged")
            score[cell.identity] = score.get(cell.identity, 0) + changed
    slugs = {c.identity: c.slug for cmp in comparisons for c in cmp.cells}
    return sorted(score, key=lambda i: (-score[i], slugs[i]))


def series_labels(runs: Sequence[RunSamples]) -> list[str]:
    """Directory names, or whole paths where two directories share a name."""
    names = [r.name for r in runs]
    return names if len(set(names)) == len(names) else [r.shown_path for r in runs]


def cell_charts(runs: Sequence[RunSamples], cells: Sequence[CellSamples | None]) -> list[Chart]:
    labels = series_labels(runs)
    keys = {k for c in cells if c for k in c.values}
    charts = [
        _slab_chart(labels, cells, keys),
        _chart("swiotlb bounces per workload", "bounces", labels, cells,
               sorted(k for k in keys if k.endswith(":swiotlb.bounces")),
               lambda k: k.partition(":")[0]),
        _bounce_size_chart(labels, cells, keys),
        _chart("fio IOPS", "IO/s", labels, cells, sorted(k for k in keys if _FIO_IOPS.search(k)),
               _fio_label),
    ]
    return [c for c in charts if c is not None]


def _slab_chart(labels: list[str], cells: Sequence[CellSamples | None], keys: set[str]) -> Chart | None:
    slab = [k for k in keys if _SLAB_BYTES.search(k)]
    workloads = sorted({k.partition(":")[0] for k in slab}, key=lambda w: (w != "boot", w))
    if not workloads:
        return None
    w = workloads[0]
    chosen = sorted((k for k in slab if k.startswith(f"{w}:")), key=_size_of_slab)
    return _chart(f"slab bytes per kmalloc size class ({w})", "bytes", labels, cells, chosen,
                  _size_label)


def _bounce_size_chart(labels: list[str], cells: Sequence[CellSamples | None],
                       keys: set[str]) -> Chart | None:
    """Bounces by size, summed over workloads (each workload's count is its own delta)."""
    sizes = sorted({int(m.group(1)) for k in keys if (m := _BOUNCE_SIZE.search(k))})
    if not sizes:
        return None
    series = []
    for label, cell in zip(labels, cells, strict=True):
        values: list[float | None] = []
        for size in sizes:
            found = [v for k, v in (cell.values.items() if cell else ())
                     if k.endswith(f":swiotlb.bounces.size-{size}")]
            values.append(sum(summarize(v).mean for v in found) if found else None)
        series.append(Series(label, tuple(values), tuple(0.0 for _ in sizes)))
    return Chart("swiotlb bounces per size (all workloads)", "bounces",
                 tuple(f"{s} B" for s in sizes), tuple(series))


def _chart(title: str, unit: str, labels: list[str], cells: Sequence[CellSamples | None],
           keys: list[str], category: Callable[[str], str]) -> Chart | None:
    if not keys:
        return None
    series = []
    for label, cell in zip(labels, cells, strict=True):
        stats = [summarize(v) if cell and (v := cell.values.get(k)) else None for k in keys]
        series.append(Series(label, tuple(s.mean if s else None for s in stats),
                             tuple(s.stddev if s else 0.0 for s in stats)))
    return Chart(title, unit, tuple(category(k) for k in keys), tuple(series))


def _size_of_slab(key: str) -> int:
    m = _SLAB_BYTES.search(key)
    assert m is not None
    size = m.group(1)
    return int(size[:-1]) * 1024 if size.endswith("k") else int(size)


def _size_label(key: str) -> str:
    m = _SLAB_BYTES.search(key)
    return m.group(1) if m else key


def _fio_label(key: str) -> str:
    """"fio-nvme:fio.randread.read.iops" -> "nvme: randread read"."""
    workload, _, name = key.partition(":")
    m = _FIO_IOPS.search(name)
    job = f"{m.group(1)} {m.group(2)}" if m else name
    workload = workload.removeprefix("fio-")
    return f"{workload}: {job}" if workload not in ("boot", "fio") else job
