"""Bringing a cell's guest up: artefacts, then QEMU, then SSH.

Artefacts come from the cache (kernel, base and modules layers); the per-boot
layer (keys, scripts) and the scratch disks are made fresh for every boot in
a temporary directory that is removed afterwards, private keys with it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from harness import devices, tmpdirs
from harness.arches import preset
from harness.errors import KernelFault, KharnessError, UsageError
from harness.initramfs import keys
from harness.initramfs.base import BaseSpec, build_base, programs_for
from harness.initramfs.modules import build_modules_layer
from harness.initramfs.runlayer import assemble, build_run_layer
from harness.kernel.resolve import resolve
from harness.machine import accel as accel_mod
from harness.machine import dtb, traffic
from harness.machine.guest import Access, Booted, QemuGuest
from harness.machine.qemu import Disk, MachineSpec, Nic
from harness.model import Cell, Kernel
from harness.workloads import BUILTIN_DIR, Workload
from harness.workloads import load as load_workload

# Guest scripts every boot carries: collectors and the workload launcher.
CORE_SCRIPTS = ("kharness-run.sh", "kharness-setup.sh", "kharness-snapshot.sh", "kharness-trace.sh",
                "kharness-sample.sh")


def cell_workloads(cell: Cell, dirs: tuple[Path, ...] = ()) -> list[Workload]:
    return [load_workload(w.name, dirs) for w in cell.workloads]


def disks_for(workloads: list[Workload]) -> tuple[Disk, ...]:
    disks: dict[str, Disk] = {}
    for wl in workloads:
        for d in wl.devices:
            if devices.get(d.kind).role == "disk":
                disks.setdefault(d.id, Disk(d.id, d.kind, d.size_mib))
    return tuple(disks.values())


def nics_for(workloads: list[Workload], peer_log: Path) -> tuple[Nic, ...]:
    """One traffic NIC per NIC device id, with a peer per traffic role."""
    peers = tuple((role, port, traffic.command(role, peer_log)) for role, port in traffic.PORTS)
    found = {d.id: d.kind for wl in workloads for d in wl.devices if devices.get(d.kind).role == "nic"}
    return tuple(Nic(i, peers, kind) for i, kind in found.items())


def machine_tree(cell: Cell, spec: MachineSpec) -> tuple[MachineSpec, dict[str, object]]:
    """`spec` booting a non-coherent device tree if the cell asks for one (arm64 only)."""
    if cell.dma_coherent:
        return spec, {}
    tree = dtb.noncoherent(spec)
    return replace(spec, dtb=tree.path), {"dtb": tree.facts()}


def modules_for(workloads: list[Workload], iommu: str = "none") -> list[str]:
    """The IOMMU's modules, every guest's devices', then the workloads' devices' and their own extra ones."""
    wanted = list(devices.modules_for((d.kind for wl in workloads for d in wl.devices), iommu))
    wanted += [m for wl in workloads for m in wl.modules]
    return list(dict.fromkeys(wanted))


def kernel_facts(kernel: Kernel) -> dict[str, object]:
    return {"name": kernel.name, "arch": kernel.arch, "release": kernel.release,
            "compression": kernel.compression, "image_sha256": kernel.image_sha256,
            "entry": kernel.entry, "origin": dict(kernel.origin)}


def initrd_for(kernel: Kernel, workloads: list[Workload], tmp: Path,
               client: keys.ClientKey, host: keys.HostKey, iommu: str = "none") -> tuple[Path, dict[str, object]]:
    """Base + modules + run layers, concatenated into one initrd in `tmp`."""
    programs = programs_for(p for wl in workloads for p in wl.programs)
    base = build_base(BaseSpec(arch=kernel.arch, programs=programs))
    layers = [base.path]
    facts: dict[str, object] = {"base": str(base.entry.name)}
    wanted = modules_for(workloads, iommu)
    if kernel.modules_dir is not None:
        mods = build_modules_layer(kernel.modules_dir, wanted, early=devices.ssh_modules(iommu))
        layers.append(mods.path)
        facts["modules"] = [m.name for m in mods.plan.order]
    elif kernel.config is None:
        raise UsageError(f"kernel {kernel.name} has no modules and no config",
                         "give modules: (or config: if the drivers are built in)")
    # Two workloads may share a script (usb-storage runs dd-direct.sh): carry it once.
    scripts = list(dict.fromkeys([BUILTIN_DIR / s for s in CORE_SCRIPTS] + [wl.script for wl in workloads]))
    layers.append(build_run_layer(tmp / "run.cpio", [client.public_line], host.path, scripts))
    return assemble(layers, tmp / "initrd.cpio"), facts


@contextmanager
def boot_cell(cell: Cell, rep_path: Path, accel: str = "auto",
              workload_dirs: tuple[Path, ...] = ()) -> Iterator[Booted]:
    """Boot `cell` and yield the ready guest; always stops QEMU afterwards."""
    kernel = resolve(cell.kernel)
    workloads = cell_workloads(cell, workload_dirs)
    tmpdirs.sweep()  # what a kharness killed with -9 left behind
    tmp = tmpdirs.make("boot")
    try:
        client = keys.generate_client_key(tmp / "keys")
        host = keys.generate_guest_host_key(tmp / "keys")
        initrd, facts = initrd_for(kernel, workloads, tmp, client, host, cell.iommu)
        choice = accel_mod.choose(preset(kernel.arch), kernel.image, accel)
        spec = MachineSpec(
            arch=kernel.arch, kernel=kernel.image, initrd=initrd,
            cmdline=tuple(cell.kernel_cmdline()), memory_mib=cell.memory_mib, cpus=cell.cpus,
            accel=choice.name, disks=disks_for(workloads), iommu_platform=cell.iommu_platform, iommu=cell.iommu,
            page_size=kernel.page_size,
            nics=nics_for(workloads, rep_path / "raw" / "net-peer.jsonl"),
        )
        spec, tree_facts = machine_tree(cell, spec)
        with QemuGuest(spec, Access(host.public_line, client.private_path), rep_path / "console.log") as guest:
            try:
                guest.boot(cell.timeouts.boot)
            except (KharnessError, KernelFault) as exc:
                exc.details = {"qemu": guest.describe()}  # cell.json keeps the argv of a failed boot
                raise
            info = kernel_facts(kernel) | {"initramfs": facts, "host_key": host.public_line,
                                           "accelerator_reason": choice.reason} | tree_facts
            # No power-off over SSH at the end: QemuGuest's close() quits QEMU
            # (QMP), a round trip less; the guest has nothing to save.
            yield Booted(guest, info, guest.boot_seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
