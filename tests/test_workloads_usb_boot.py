"""usb-storage behind qemu-xhci, for real, on Debian's generic arm64 and
x86_64 kernels (the cloud flavour has no USB): I/O moves, and only the non-coherent guest
bounces, and then only small SCSI/USB buffers."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.results import load_run

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("usb")]

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_usb_storage_bounces_only_small_buffers_and_only_non_coherent(tmp_path: Path) -> None:
    rc = main(["run", "-q", str(CONFIGS / "usb.yaml"), "-o", str(tmp_path / "out")])
    run = load_run(tmp_path / "out")
    assert len(run.reps) == 3  # arm64 coherent and non-coherent, x86_64
    arm = [r for r in run.reps if r.record.axes["arch"] == "arm64"]
    by_coherent = {r.record.axes["dma_coherent"]: r for r in arm}
    assert rc == 0, [r.record.reason for r in run.reps]
    for rep in run.reps:
        m = {x.key: x.value for x in rep.metrics}
        assert m["usb-storage:dd.requests"] == 1000
        assert m["usb-storage:dd.read.seconds"] > 0
    for rep in (by_coherent[True], *(r for r in run.reps if r.record.axes["arch"] == "x86_64")):
        coherent = {x.key: x.value for x in rep.metrics}
        assert coherent["usb-storage:swiotlb.bounces"] == 0, rep.record.slug
    nc = {x.key: x.value for x in by_coherent[False].metrics}
    # The disk's probe (sd's READ CAPACITY and MODE SENSE replies) bounces,
    # at boot: the boot snapshot waits for the workloads' disks, and init
    # armed the histograms before the modules loaded. The data never bounces.
    assert nc["boot:swiotlb.bounces"] > 0
    assert nc["usb-storage:swiotlb.bounces"] == 0
    for rep in (by_coherent[True], *(r for r in run.reps if r.record.axes["arch"] == "x86_64")):
        assert {x.key: x.value for x in rep.metrics}["boot:swiotlb.bounces"] == 0, rep.record.slug
    sizes = [int(k.rsplit("size-", 1)[1]) for k, v in nc.items()
             if k.startswith("boot:swiotlb.bounces.size-") and v > 0]
    assert sizes and max(sizes) < 128  # small classes only: no data buffer bounces
