"""IOMMU groups and DMA mapping counts, from real captures of Debian 6.12 guests."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.collect import hist, iommu
from harness.collect.snapshot import Snapshot, metrics
from harness.collect.text import ParseError

DATA = Path(__file__).parent / "data" / "collect"


def test_smmuv3_groups_are_strict_and_translated() -> None:
    devs = iommu.parse((DATA / "iommu-6.12-arm64-16k-smmuv3").read_text())
    assert [d.device for d in devs] == ["0000:00:01.0", "0000:00:02.0", "0000:00:03.0", "0000:00:04.0"]
    assert all(d.translated and not d.lazy for d in devs)


def test_x86_virtio_iommu_domains_are_lazy() -> None:
    devs = iommu.parse((DATA / "iommu-6.12-x86_64-virtio-iommu").read_text())
    assert len(devs) == 3 and all(d.translated and d.lazy for d in devs)


@pytest.mark.parametrize("text", ["group=x type=DMA dev=0000:00:01.0", "group=1 type=DMA dev=../../etc",
                                  "group=1 type=<b> dev=a", "nonsense"])
def test_a_line_that_is_not_a_group_is_refused(text: str) -> None:
    with pytest.raises(ParseError, match="iommu line 1"):
        iommu.parse(text)


def test_mappings_and_bounces_per_mapping_over_a_workload() -> None:
    before = Snapshot(mappings=hist.parse((DATA / "hist-dma_map_page-before").read_text()), sg_mappings=())
    after = Snapshot(mappings=hist.parse((DATA / "hist-dma_map_page-after").read_text()), sg_mappings=(),
                     iommu=iommu.parse((DATA / "iommu-6.12-arm64-16k-smmuv3").read_text()))
    m = {x.name: x.value for x in metrics(before, after, "press")}
    found = hist.find(before.mappings or (), "device")
    assert found is not None
    booted = sum(e.hitcount for e in found.entries)
    assert m["dma.mappings"] == 14338 - booted
    assert m["dma.mappings.dev-0000_00_03_0"] + m["dma.mappings.dev-0000_00_04_0"] == m["dma.mappings"]
    assert m["dma.map_failures"] == 0
    assert m["iommu.groups"] == 4 and m["iommu.dev-0000_00_03_0.translated"] == 1
    assert m["iommu.dev-0000_00_03_0.lazy"] == 0
