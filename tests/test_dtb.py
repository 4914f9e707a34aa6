"""The non-coherent device tree: FDT edit on a real QEMU dump, the dump itself, the cache.

tests/data/dtb/virt-arm64-qemu7.2.dtb is `qemu-system-aarch64 -M
virt,dumpdtb=F -cpu cortex-a72 -m 1024 -smp 2` (QEMU 7.2), packed: the tree
every arm64 cell boots, with `dma-coherent` on PCIe, fw-cfg and the 32
virtio-mmio transports. The real boot on it is in test_workloads_boot.py.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.arches import preset
from harness.errors import InfraError, UsageError
from harness.machine import dtb
from harness.machine.qemu import Disk, MachineSpec, Nic, dumpdtb_argv

VIRT = Path(__file__).parent / "data" / "dtb" / "virt-arm64-qemu7.2.dtb"
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None, reason="no qemu-system-aarch64")
needs_dtc = pytest.mark.skipif(shutil.which("dtc") is None, reason="no dtc")


def coherent_nodes(blob: bytes) -> list[str]:
    return [node for node, name, _, _ in dtb.properties(blob) if name == "dma-coherent"]


def test_real_tree_has_coherent_pcie_and_mmio() -> None:
    nodes = coherent_nodes(VIRT.read_bytes())
    assert "/pcie@10000000" in nodes
    assert "/fw-cfg@9020000" in nodes and sum(n.startswith("/virtio_mmio@") for n in nodes) == 32


def test_only_the_pcie_bridge_loses_dma_coherent() -> None:
    blob = VIRT.read_bytes()
    edited, removed = dtb.without_coherent_pcie(blob)
    assert removed == ("/pcie@10000000/dma-coherent",)
    assert len(edited) == len(blob)  # NOPs in place: no offset moved
    assert sorted(coherent_nodes(edited)) == sorted(n for n in coherent_nodes(blob) if n != "/pcie@10000000")
    before = {(n, p) for n, p, _, _ in dtb.properties(blob)}
    after = {(n, p) for n, p, _, _ in dtb.properties(edited)}
    assert before - after == {("/pcie@10000000", "dma-coherent")}


@needs_dtc
def test_dtc_reads_the_edited_tree_the_same_way(tmp_path: Path) -> None:
    """An independent FDT reader agrees: PCIe keeps every property but dma-coherent."""
    edited, _ = dtb.without_coherent_pcie(VIRT.read_bytes())
    (tmp_path / "nc.dtb").write_bytes(edited)
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(tmp_path / "nc.dtb")],
                         capture_output=True, text=True, check=True).stdout
    pcie = dts[dts.index("pcie@10000000 {"):]
    pcie = pcie[:pcie.index("\n\t};")]
    assert "dma-coherent" not in pcie and 'compatible = "pci-host-ecam-generic"' in pcie
    assert dts.count("dma-coherent;") == 33


def test_packed_cuts_the_free_space() -> None:
    blob = VIRT.read_bytes()
    padded = bytearray(blob + bytes((1 << 20) - len(blob)))
    struct.pack_into(">I", padded, 4, 1 << 20)  # totalsize, as QEMU dumps it
    assert dtb.packed(bytes(padded)) == blob


def test_a_tree_without_coherent_pcie_is_refused() -> None:
    edited, _ = dtb.without_coherent_pcie(VIRT.read_bytes())
    with pytest.raises(dtb.FdtError, match="no pcie@"):
        dtb.without_coherent_pcie(edited)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b"\0\0\0\0" + b[4:], "magic"),
    (lambda b: b[:20], "too short"),
    (lambda b: b[:2000], "outside the blob"),
    (lambda b: b[:20] + struct.pack(">I", 16) + b[24:], "version 16"),
])
def test_damaged_blobs_raise_fdt_error(damage, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(dtb.FdtError, match=message):
        dtb.properties(damage(VIRT.read_bytes()))


def test_unknown_token_and_runaway_nesting_raise() -> None:
    blob = bytearray(VIRT.read_bytes())
    off_struct = struct.unpack_from(">I", blob, 8)[0]
    first_prop = dtb.properties(bytes(blob))[0][2]
    bad = bytearray(blob)
    struct.pack_into(">I", bad, first_prop, 7)
    with pytest.raises(dtb.FdtError, match="unknown token"):
        dtb.properties(bytes(bad))
    deep = bytearray(blob)
    node = struct.pack(">I", dtb.FDT_BEGIN_NODE) + b"a\0\0\0"
    size_struct = struct.unpack_from(">I", blob, 36)[0]
    deep[off_struct:off_struct + 8 * 70] = node * 70
    assert size_struct > 8 * 70
    with pytest.raises(dtb.FdtError, match="deeper"):
        dtb.properties(bytes(deep))


def test_dump_argv_is_the_boots_machine_without_its_files(tmp_path: Path) -> None:
    spec = MachineSpec(arch="arm64", kernel=Path("/k"), initrd=Path("/i"), cmdline=("quiet",), memory_mib=2048,
                       cpus=1, disks=(Disk("vblk", "virtio-blk", 8),), iommu_platform=True,
                       nics=(Nic("traffic", (("sink", 5001, "x"),)),))
    argv = dumpdtb_argv(spec, preset("arm64"), tmp_path / "t.dtb", tmp_path)
    assert argv[argv.index("-M") + 1] == f"virt,dumpdtb={tmp_path / 't.dtb'}"
    assert argv[argv.index("-m") + 1] == "2048" and argv[argv.index("-smp") + 1] == "1"
    assert any("virtio-blk-pci" in a and "iommu_platform=on" in a for a in argv)
    assert not {"-kernel", "-initrd", "-append", "-serial", "-qmp"} & set(argv)
    assert not any("hostfwd" in a or "guestfwd" in a for a in argv)


def test_x86_is_refused() -> None:
    spec = MachineSpec(arch="x86_64", kernel=Path("/k"), initrd=Path("/i"), cmdline=())
    with pytest.raises(UsageError, match="arm64"):
        dtb.noncoherent(spec)


@needs_qemu
def test_noncoherent_dumps_edits_and_caches(tmp_path: Path) -> None:
    """Real QEMU (a dump is a fraction of a second, no guest runs); the second call is the cache."""
    spec = MachineSpec(arch="arm64", kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline=(),
                       disks=(Disk("vblk", "virtio-blk", 8),), iommu_platform=True)
    tree = dtb.noncoherent(spec, root=tmp_path / "cache")
    assert tree.removed == ("/pcie@10000000/dma-coherent",)
    assert "/pcie@10000000" not in coherent_nodes(tree.path.read_bytes())
    other_boot = MachineSpec(arch="arm64", kernel=tmp_path / "k2", initrd=tmp_path / "i2", cmdline=("x",),
                             disks=spec.disks, iommu_platform=True)
    assert dtb.noncoherent(other_boot, root=tmp_path / "cache") == tree  # same machine, same entry
    bigger = MachineSpec(arch="arm64", kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline=(), memory_mib=2048)
    other = dtb.noncoherent(bigger, root=tmp_path / "cache")
    assert other.path != tree.path and other.dumped_sha256 != tree.dumped_sha256  # /memory differs


def test_a_qemu_that_cannot_dump_is_an_infra_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "qemu-system-aarch64"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && { echo 'QEMU emulator version 0.0'; exit 0; }\n"
                    "echo 'unsupported machine option' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    spec = MachineSpec(arch="arm64", kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline=())
    with pytest.raises(InfraError, match="dump"):
        dtb.noncoherent(spec, root=tmp_path / "cache")
