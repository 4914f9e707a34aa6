"""The fragment workload for real, without and with an IOMMU (Debian 6.12 arm64, SMMUv3).

Memory is filled with disk page cache, tmpfs data and tmpfs files' slab,
partly freed, then asked for the huge pages its free memory holds above the
zones' high watermarks and a reserve; the workload
says how many it got and what compaction it took, and the collectors around
it count compaction over the whole workload.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.collect.zones import free_pages, parse_buddyinfo, parse_zoneinfo
from harness.results import RunResult
from tests.runs_real import figures, run_config

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("fragment-boot")]

CONFIG = """
name: fragment-boot
defaults:
  kernel: trixie-arm64
  iommu_platform: true   # the disk's page cache comes in through the DMA API (and the IOMMU)
  workloads: [fragment]
  timeouts: {boot: 300, workload: 300, cell: 600}
matrix:
  iommu: [none, smmuv3]
"""
STAGES = ("start", "filled", "fragmented", "after_ask")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_config(tmp_path_factory.mktemp("fragment"), CONFIG)


@pytest.mark.parametrize("slug", ["trixie-arm64.iommu", "trixie-arm64.iommu.smmuv3"])
def test_fragment_asks_for_huge_pages_and_says_what_it_got(run: RunResult, slug: str) -> None:
    m = figures(run, slug)
    f = {k.removeprefix("fragment:frag."): v for k, v in m.items() if k.startswith("fragment:frag.")}
    assert f["hugepage_order"] == 9  # 2 MiB on 4 KiB pages
    assert f["filled_mib"] > 400 and f["small_files"] == 8 * 1000  # half of 8 x 2000 kept
    assert 0 < f["hugepages.got"] <= f["hugepages.asked"]
    # asked: what the free memory holds above the high watermarks and the reserve, so less than above_min
    assert 0 < f["hugepages.asked"] < f["hugepages.above_min"]
    assert f["hugepages.got_pct"] == pytest.approx(100 * f["hugepages.got"] / f["hugepages.asked"], abs=0.1)
    assert f["free_hugeblocks.filled"] < f["free_hugeblocks.start"]
    # the freeing gave back holes, not whole blocks: the ask needed compaction
    assert f["free_hugeblocks.fragmented"] < f["hugepages.asked"] and f["ask.compact_stall"] > 0
    # compaction over the ask: stalls end in success or failure (a deferred one in neither)
    assert f["ask.compact_success"] + f["ask.compact_fail"] <= f["ask.compact_stall"]
    assert f["free_hugeblocks.after_ask"] < f["free_hugeblocks.fragmented"]
    # the collectors around the workload: compaction counters and the zones after it
    assert m["fragment:vmstat.compact_stall"] >= f["ask.compact_stall"]
    assert m["fragment:vmstat.pgmigrate_success"] >= f["ask.pgmigrate_success"]
    assert m["fragment:zone.dma.start"] == 1 << 30
    assert m["fragment:buddy.dma.largest_order"] == 10  # the huge pages are given back


def test_output_has_buddyinfo_at_every_stage(run: RunResult) -> None:
    for rep in run.reps:
        out = (run.path / "cells" / rep.record.cell_id / "0" / "raw" / "workload-fragment.txt").read_text()
        for stage in STAGES:
            assert f"buddyinfo {stage}:\n  Node 0, zone      DMA" in out


def test_the_guest_keeps_memory_free_while_it_holds_the_huge_pages(run: RunResult) -> None:
    """Asked for all it could hold, the guest sat at its min watermarks and its next fork woke the OOM killer."""
    for rep in run.reps:
        raw = run.path / "cells" / rep.record.cell_id / "0" / "raw"
        out = (raw / "workload-fragment.txt").read_text()
        held = out.split("buddyinfo after_ask:\n", 1)[1].split("metric ", 1)[0]
        free = sum(free_pages(row) for row in parse_buddyinfo("\n".join(x.strip() for x in held.splitlines())))
        high = sum(z.high for z in parse_zoneinfo((raw / "boot" / "zoneinfo").read_text()))
        assert free > high, (free, high)
        assert "Out of memory" not in (run.path / "cells" / rep.record.cell_id / "0" / "console.log").read_text()


def test_with_and_without_the_iommu(run: RunResult) -> None:
    direct, smmu = figures(run, "trixie-arm64.iommu"), figures(run, "trixie-arm64.iommu.smmuv3")
    assert direct["boot:iommu.groups"] == 0 and smmu["boot:iommu.groups"] > 0
    assert direct["fragment:frag.hugepages.asked"] > 0 and smmu["fragment:frag.hugepages.asked"] > 0
    assert Path(run.path).is_dir()
