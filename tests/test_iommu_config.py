"""The iommu axis at config load: what each IOMMU needs, refused with file:line and the fix."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import devices
from harness.arches import preset
from harness.config.load import load
from harness.errors import ConfigError
from harness.machine.qemu import MachineSpec, build_argv, dumpdtb_argv

MMIO_KIND = '''
from harness.devices import DeviceKind, Driver

KIND = DeviceKind(name="toy-mmio-blk", role="disk", description="a virtio-mmio disk, for the test",
                  qemu="virtio-blk-device,drive={drive},serial={id}", transport="mmio",
                  drivers=(Driver("virtio_blk", ("VIRTIO_BLK",), ("virtio_blk",), "virtio-blk-device"),))
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_each_iommu_on_the_machines_that_have_it(tmp_path: Path) -> None:
    config = load(write(tmp_path, """
name: ok
matrix: {kernel: [trixie-arm64], iommu: [none, smmuv3, virtio-iommu]}
include:
  - {kernel: trixie-x86_64, iommu: intel-iommu}
  - {kernel: trixie-x86_64, iommu: virtio-iommu}
"""))
    assert [c.slug for c in config.cells] == [
        "trixie-arm64", "trixie-arm64.smmuv3", "trixie-arm64.virtio-iommu",
        "trixie-x86_64.intel-iommu", "trixie-x86_64.virtio-iommu"]
    assert {c.iommu for c in config.cells} == {"none", "smmuv3", "virtio-iommu", "intel-iommu"}


def test_no_iommu_keeps_the_cell_ids_of_before(tmp_path: Path) -> None:
    """The axis is new: a cell without it has the id it had before the axis existed."""
    text = "name: ok\ndefaults: {workloads: [idle, dd-direct]}\nmatrix: {kernel: [trixie-arm64]}\n"
    (cell,) = load(write(tmp_path, text)).cells
    assert cell.id == "trixie-arm64-ce1f5ea6"  # as in tests/data/compare/real/trixie-arm64


def test_argv_of_each_iommu(tmp_path: Path) -> None:
    def argv(arch: str, iommu: str) -> list[str]:
        spec = MachineSpec(arch=arch, kernel=Path("/k"), initrd=Path("/i"), cmdline=("quiet",), iommu=iommu)
        return build_argv(spec, preset(arch), tmp_path / "c", tmp_path / "q", 2222, tmp_path)

    smmu = argv("arm64", "smmuv3")
    assert smmu[smmu.index("-M") + 1] == "virt,iommu=smmuv3" and "virtio-iommu-pci" not in smmu
    viommu = argv("arm64", "virtio-iommu")
    assert viommu[viommu.index("-M") + 1] == "virt" and "virtio-iommu-pci" in viommu
    intel = argv("x86_64", "intel-iommu")
    assert "intel-iommu" in intel and intel[intel.index("-append") + 1].endswith("quiet intel_iommu=on")
    # intel-iommu must come before the PCI devices it translates
    assert intel.index("intel-iommu") < intel.index("virtio-rng-pci")
    spec = MachineSpec(arch="arm64", kernel=Path("/k"), initrd=Path("/i"), cmdline=(), iommu="smmuv3")
    dump = dumpdtb_argv(spec, preset("arm64"), tmp_path / "t.dtb", tmp_path)
    assert dump[dump.index("-M") + 1] == f"virt,iommu=smmuv3,dumpdtb={tmp_path / 't.dtb'}"


def test_iommu_modules_load_before_the_devices_behind_it() -> None:
    mods = devices.modules_for(["virtio-blk"], iommu="virtio-iommu")
    assert mods.index("virtio_iommu") < mods.index("virtio_blk")
    assert mods.index("virtio_iommu") < mods.index("virtio_net")


@pytest.fixture
def mmio_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    kinds = tmp_path / "kinds"
    kinds.mkdir()
    (kinds / "toy_mmio_blk.py").write_text(MMIO_KIND)
    monkeypatch.setattr(devices, "__path__", [*devices.__path__, str(kinds)])
    wl = tmp_path / "wl"
    wl.mkdir()
    (wl / "mmio-dd.yaml").write_text("devices: [{kind: toy-mmio-blk, id: disk}]\n")
    (wl / "mmio-dd.sh").write_text("#!/bin/sh\n")
    yield tmp_path
    sys.modules.pop("harness.devices.toy_mmio_blk", None)


def test_an_iommu_refuses_a_device_on_a_bus_it_does_not_translate(mmio_kind: Path) -> None:
    path = write(mmio_kind, """
name: mmio
workload_dirs: [wl]
defaults: {workloads: [mmio-dd]}
matrix: {kernel: [trixie-arm64], iommu: [smmuv3]}
""")
    with pytest.raises(ConfigError, match=r"c.yaml:4: defaults.workloads: workload mmio-dd's toy-mmio-blk device "
                                          r"is on mmio, which iommu: smmuv3 does not translate \(only pci\)"):
        load(path)
    (cell,) = load(write(mmio_kind, path.read_text().replace("[smmuv3]", "[none]"))).cells
    assert cell.iommu == "none"


def test_an_expectation_on_boot_judges_the_figures_after_boot() -> None:
    from harness.model import Expectation, Metric
    from harness.run.expect import judge

    exp = Expectation("slots", "swiotlb.slots", "==", 512.0, workload="boot")
    (case,) = judge(exp, [Metric("swiotlb.slots", 512.0, workload="boot")], ran=["dd-direct"])
    assert (case.name, case.status) == ("expect:slots[boot]", "pass")
    (case,) = judge(exp, [], ran=["dd-direct"])  # no boot snapshot: nothing to judge
    assert case.status == "skipped"
