"""The DMA stress workloads for real: fio-nvme, fio-virtio-blk and net-virtio under QEMU.

One short run (1 s per fio job) of three cells, then assertions on the figures
as domain.md says a correct run shows them:

- trixie-arm64, non-coherent PCIe (the dumped and edited device tree),
  virtio with ACCESS_PLATFORM: virtio-blk's 1-byte status bounces once per
  request; only small kmalloc sizes bounce; NVMe does not bounce.
- trixie-arm64, coherent: nothing bounces.
- trixie-x86_64, swiotlb=force: every mapping bounces, data included.

A fourth boot measures what the slab sampler costs: fio-nvme's IOPS with
and without it, in one boot, alternating.
"""

from __future__ import annotations

import json

import pytest

from harness.results import RunResult
from tests.runs_real import run_config

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("workloads-boot")]

CONFIG = """
name: workloads-test
defaults:
  iommu_platform: true
  workloads:
    - {name: fio-nvme, params: {runtime: 1}}
    - {name: fio-virtio-blk, params: {runtime: 1}}
    - {name: net-virtio, params: {runtime: 1}}
  timeouts: {boot: 240, workload: 120, cell: 600}
include:
  - {kernel: trixie-arm64, dma_coherent: false}
  - {kernel: trixie-arm64}
  - {kernel: trixie-x86_64, swiotlb: force}
"""
WORKLOADS = ("fio-nvme", "fio-virtio-blk", "net-virtio")
FIO_JOBS = ("randread.read", "randwrite.write", "randrw.read", "randrw.write")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    # each cell's status is judged where its figures are read (figures below)
    return run_config(tmp_path_factory.mktemp("workloads"), CONFIG, must_pass=False)


def figures(run: RunResult, slug: str) -> dict[str, float]:
    (rep,) = [r for r in run.reps if r.record.slug == slug]
    assert rep.record.status == "pass", rep.record.reason
    return {m.key: m.value for m in rep.metrics}


def test_noncoherent_virtio_blk_bounces_its_status_byte_once_per_request(run: RunResult) -> None:
    m = figures(run, "trixie-arm64.nc.iommu")
    ios = sum(m[f"fio-virtio-blk:fio.{job}.ios"] for job in FIO_JOBS)
    # domain.md saw 2251 bounces of size 1 for 4000 small requests; fio: one per request.
    assert m["fio-virtio-blk:swiotlb.bounces"] > 0.9 * ios
    assert m["fio-virtio-blk:swiotlb.bounces.size-1"] > 0.9 * m["fio-virtio-blk:swiotlb.bounces"]
    assert 0.9 < m["fio-virtio-blk:swiotlb.bounces_per_io"] < 1.5


def test_noncoherent_bounces_only_small_kmalloc_sizes(run: RunResult) -> None:
    m = figures(run, "trixie-arm64.nc.iommu")
    sizes = {int(k.rsplit("-", 1)[1]) for k, v in m.items() if ".bounces.size-" in k and v > 0}
    # Sizes that kmalloc rounds to 8, 16, 32 or 96: not a multiple of the 64-byte line.
    assert sizes and all(s <= 32 or 64 < s <= 96 for s in sizes), sizes
    assert all(m[f"{w}:swiotlb.bounce_size.max"] <= 96 for w in WORKLOADS)


def test_noncoherent_nvme_has_nothing_small_to_bounce(run: RunResult) -> None:
    assert figures(run, "trixie-arm64.nc.iommu")["fio-nvme:swiotlb.bounces"] == 0


def test_noncoherent_boot_used_the_edited_device_tree(run: RunResult) -> None:
    (rep,) = [r for r in run.reps if r.record.slug == "trixie-arm64.nc.iommu"]
    tree = rep.record.kernel["dtb"]
    assert isinstance(tree, dict) and tree["removed"] == ["/pcie@10000000/dma-coherent"]
    argv = rep.record.qemu["argv"]
    assert isinstance(argv, list) and argv[argv.index("-dtb") + 1] == tree["path"]


def test_coherent_devices_do_not_bounce(run: RunResult) -> None:
    m = figures(run, "trixie-arm64.iommu")
    assert [m[f"{w}:swiotlb.bounces"] for w in WORKLOADS] == [0, 0, 0]


def test_x86_swiotlb_force_bounces_every_mapping(run: RunResult) -> None:
    m = figures(run, "trixie-x86_64.swiotlb-force.iommu")
    for w in WORKLOADS:
        assert m[f"{w}:swiotlb.bounces"] > 0, w
    ios = sum(m[f"fio-nvme:fio.{job}.ios"] for job in FIO_JOBS)
    assert m["fio-nvme:swiotlb.bounces"] >= ios  # every 4 KiB data buffer
    assert m["fio-nvme:swiotlb.bounce_size.max"] >= 4096
    assert m["fio-virtio-blk:swiotlb.bounces_per_io"] >= 3  # header, data, status


@pytest.mark.parametrize("slug", ["trixie-arm64.nc.iommu", "trixie-arm64.iommu", "trixie-x86_64.swiotlb-force.iommu"])
def test_every_workload_did_its_work(run: RunResult, slug: str) -> None:
    m = figures(run, slug)
    for w in ("fio-nvme", "fio-virtio-blk"):
        assert all(m[f"{w}:fio.{job}.iops"] > 0 for job in FIO_JOBS), w
        assert m[f"{w}:fio.randread.read.clat_p99_ns"] > 0
    assert m["net-virtio:fio.bulk-tx.write.bw"] > 0 and m["net-virtio:fio.bulk-rx.read.bw"] > 0
    assert m["net-virtio:fio.small.write.iops"] > 0 and m["net-virtio:net.rx.packets"] > 0
    for w in WORKLOADS:
        assert m[f"{w}:sampler.samples"] >= 1 and m[f"{w}:slab.kmalloc.bytes.max"] > 0


def test_net_peers_saw_the_traffic(run: RunResult) -> None:
    (rep,) = [r for r in run.reps if r.record.slug == "trixie-arm64.nc.iommu"]
    lines = (rep.path / "raw" / "net-peer.jsonl").read_text().splitlines()
    peers = {e["role"]: e for e in map(json.loads, lines)}
    assert set(peers) == {"sink", "source", "echo"}
    assert peers["sink"]["received"] > 0 and peers["source"]["sent"] > 0
    assert peers["echo"]["received"] == peers["echo"]["sent"] > 0


def test_whatif_figures_for_a_minalign_8_kernel(run: RunResult) -> None:
    m = figures(run, "trixie-arm64.iommu")
    assert m["boot:slab.minalign"] == 8
    assert 0 < m["boot:slab.whatif.minalign-64.extra_bytes"] < m["boot:slab.whatif.minalign-128.extra_bytes"]
