"""Real boots behind every IOMMU kind on each arch it exists for (Debian 6.12, QEMU TCG).

One short dd-direct run per cell, the virtio-blk disk with ACCESS_PLATFORM:
- arm64 non-coherent PCIe bounces the 1-byte status of every request, with no
  IOMMU, behind SMMUv3 and behind virtio-iommu alike (domain.md);
- behind an IOMMU a bounce reserves the IOMMU granule: 1 byte takes 2 slots
  at 4K and 8 at 16K (the 16K-page kernel uses SMMUv3's 16K granule);
- x86_64 is coherent: translated by intel-iommu or virtio-iommu, nothing
  bounces (no swiotlb below 4 GiB of RAM).
"""

from __future__ import annotations

import pytest

from harness.results import RunResult
from tests.runs_real import figures, run_config

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("iommu-boot")]

CONFIG = """
name: iommu-boot
defaults:
  workloads: [{name: dd-direct, params: {count: 200}}]
  iommu_platform: true
  timeouts: {boot: 300, workload: 300}
matrix:
  kernel: [trixie-arm64]
  dma_coherent: [false]
  iommu: [none, smmuv3, virtio-iommu]
include:
  - {kernel: trixie-arm64-16k, dma_coherent: false, iommu: smmuv3}
  - {kernel: trixie-x86_64, iommu: intel-iommu}
  - {kernel: trixie-x86_64, iommu: virtio-iommu}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_config(tmp_path_factory.mktemp("iommu"), CONFIG)


@pytest.mark.parametrize("slug", ["trixie-arm64.nc.iommu", "trixie-arm64.nc.iommu.smmuv3",
                                  "trixie-arm64.nc.iommu.virtio-iommu", "trixie-arm64-16k.nc.iommu.smmuv3"])
def test_arm64_noncoherent_bounces_each_status_byte(run: RunResult, slug: str) -> None:
    m = figures(run, slug)
    assert m["dd-direct:swiotlb.bounces"] >= m["dd-direct:dd.requests"]
    assert m["dd-direct:swiotlb.bounce_size.max"] < 64
    assert 0 < m["dd-direct:swiotlb.bounces_per_mapping"] < 1  # header and data map too, unbounced
    translated = [v for k, v in m.items() if k.startswith("boot:iommu.dev-") and k.endswith(".translated")]
    if slug.endswith(".iommu"):
        assert m["boot:iommu.groups"] == 0 and not translated
    else:
        assert m["boot:iommu.groups"] > 0 and translated and all(translated)


def test_a_bounce_behind_a_16k_granule_takes_8_slots(run: RunResult) -> None:
    four, sixteen = figures(run, "trixie-arm64.nc.iommu.smmuv3"), figures(run, "trixie-arm64-16k.nc.iommu.smmuv3")
    assert (four["boot:mm.page_size"], sixteen["boot:mm.page_size"]) == (4096, 16384)
    assert 2 <= four["dd-direct:swiotlb.hiwater"] < 8 <= sixteen["dd-direct:swiotlb.hiwater"]
    direct = figures(run, "trixie-arm64.nc.iommu")
    assert direct["dd-direct:swiotlb.hiwater"] < four["dd-direct:swiotlb.hiwater"]


@pytest.mark.parametrize("slug", ["trixie-x86_64.iommu.intel-iommu", "trixie-x86_64.iommu.virtio-iommu"])
def test_x86_is_translated_and_coherent(run: RunResult, slug: str) -> None:
    m = figures(run, slug)
    assert m["boot:iommu.groups"] > 0
    assert m["dd-direct:swiotlb.bounces"] == 0
    assert m["dd-direct:dma.mappings"] > m["dd-direct:dd.requests"]
    lazy = {k: v for k, v in m.items() if k.startswith("boot:iommu.dev-") and k.endswith(".lazy")}
    assert lazy and all(lazy.values())  # amd64 domains default to lazy invalidation
