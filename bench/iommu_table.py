#!/usr/bin/env python3
"""The README's IOMMU table from a configs/iommu.yaml result directory: medians of each cell's boots.

    .venv/bin/python bench/iommu_table.py results/iommu
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from harness.results import load_run

COLUMNS = (
    ("dd high-water, slots", "dd-direct:swiotlb.hiwater", 0),
    ("press high-water, slots", "swiotlb-press:swiotlb.hiwater", 0),
    ("press map failures", "swiotlb-press:dma.map_failures", 0),
    ("press bounces per mapping", "swiotlb-press:swiotlb.bounces_per_mapping", 3),
    ("press IOPS virtio-blk", "swiotlb-press:fio.vblk.read.iops", 0),
    ("press IOPS NVMe", "swiotlb-press:fio.nvme.read.iops", 0),
)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def text(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a result directory of configs/iommu.yaml")
    run = load_run(ap.parse_args().run)
    cells: dict[str, list[tuple[dict[str, float], str]]] = {}
    for rep in run.reps:
        cells.setdefault(rep.record.slug, []).append(({m.key: m.value for m in rep.metrics}, rep.record.status))
    print("| cell | statuses | bounces per dd request | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---" * (3 + len(COLUMNS)) + "|")
    for slug, reps in sorted(cells.items()):
        per_request = median([m["dd-direct:swiotlb.bounces"] / m["dd-direct:dd.requests"] for m, _ in reps
                              if m.get("dd-direct:dd.requests")])
        row = [f"`{slug}`", ",".join(sorted({s for _, s in reps})), text(per_request, 2)]
        row += [text(median([m[key] for m, _ in reps if key in m]), digits) for _, key, digits in COLUMNS]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
