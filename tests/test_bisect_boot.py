"""`kharness bisect` with real boots: the two questions of issue 6.

1. trixie (6.12) arm64: coherent, 1 GiB, default cmdline is good; non-coherent,
   2 GiB, slub_debug is bad (it bounces). The answer is dma_coherent alone.
2. bookworm (6.1) coherent is good; trixie non-coherent is bad. Neither key
   alone bounces (6.1 has no unaligned-kmalloc bouncing; a coherent device
   needs none), so the answer is the pair (kernel, dma_coherent).

Bouncing needs a non-coherent device (issue 4's dma_coherent: false) and a
workload whose small DMA mappings bounce (dd-direct on virtio-blk with
iommu_platform: each request's status byte).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("bisect-boot")]

CONFIG = """
name: why-bounces
defaults:
  iommu_platform: true      # virtio-blk through the DMA API, so its mappings can bounce
  workloads: [{name: dd-direct, params: {count: 200}}]
  timeouts: {boot: 300, workload: 300, cell: 900}
include:
  - {kernel: trixie-arm64}
  - {kernel: trixie-arm64, dma_coherent: false, memory: 2G, slub_debug: true}
  - {kernel: bookworm-arm64}
  - {kernel: trixie-arm64, dma_coherent: false}
"""
BOUNCES = ["--bad-if", "dd-direct:swiotlb.bounces > 0"]


def bisect(tmp_path: Path, good: str, bad: str) -> tuple[int, dict[str, Any], str]:
    (tmp_path / "c.yaml").write_text(CONFIG)
    out = tmp_path / "b"
    rc = main(["bisect", "-q", "--config", str(tmp_path / "c.yaml"), "--good", good, "--bad", bad, *BOUNCES,
               "-o", str(out)])
    state = json.loads((out / "bisect.json").read_text())
    return rc, state, (out / "report.md").read_text()


def test_boot_bisect_finds_dma_coherent_alone(tmp_path: Path) -> None:
    rc, state, report = bisect(tmp_path, "trixie-arm64.iommu", "trixie-arm64.mem2048.nc.iommu.slub")
    assert state["answer"]["keys"] == ["dma_coherent"], report
    assert rc == 0, report
    assert "**dma_coherent** alone turns the good cell bad" in report


def test_boot_bisect_finds_the_pair_kernel_and_dma_coherent(tmp_path: Path) -> None:
    rc, state, report = bisect(tmp_path, "bookworm-arm64.iommu", "trixie-arm64.nc.iommu")
    assert state["answer"]["keys"] == ["kernel", "dma_coherent"], report
    assert rc == 0, report
    steps = state["steps"]
    assert [s["verdict"] for s in steps if s["role"] == "probe"] == ["good", "good"], report
