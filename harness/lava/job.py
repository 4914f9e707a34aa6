"""LAVA job definitions of cells: one per cell repetition, for `qemu` or a u-boot board.

Every job has the same three actions: deploy the kernel, the kharness
ramdisk (harness/lava/ramdisk.py) and, where given, a device tree and a
modules tarball; boot with the cell's command line and wait for the
ramdisk's shell prompt; and run the cell's test definition
(harness/lava/testdef.py) there.

- `qemu` (LAVA's qemu device type, deploy to tmpfs): the cell's machine
  goes into the job context as the device type's template reads it (arch,
  machine, cpu, memory, extra_options): -smp, virtio-rng, the IOMMU, and
  each scratch disk as an image of its own whose image_arg attaches it as
  kharness would (virtio-blk-pci, nvme, ... with its serial). A non-coherent
  cell boots the device tree `kharness lava ramdisk` writes (`-dtb`). The
  device type's own NIC (`-net nic,model=virtio`) stands in for the SSH NIC.
- a board (deploy to tftp, boot u-boot with `commands: ramdisk`): the
  board's context from tuxlava (devicetypes.py) plus the cell's command
  line as `extra_kernel_args`. A board is its own machine: its RAM and CPUs
  are what it has, and settings that only QEMU can make (non-coherent PCIe,
  an emulated IOMMU, virtio's ACCESS_PLATFORM, QEMU's scratch disks and
  traffic NIC) are refused, one line each; a workload's disk can be a disk
  of the board named with `--board-disk ID=/dev/...` (it is overwritten).

Artefact URLs are templates: `{cell}` (the cell id), `{kernel}` (the
kernel's name) and `{arch}` are filled in per cell, so one pattern serves a
directory laid out as `kharness lava ramdisk -o DIR` writes it.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import devices
from harness.arches import preset
from harness.errors import UsageError
from harness.lava import testdef
from harness.lava.devicetypes import DeviceType
from harness.machine.qemu import Disk, MachineSpec, iommu_args, kernel_words, machine_arg
from harness.model import Cell
from harness.run.boot import disks_for
from harness.workloads import Workload

PROMPT = "kharness-lava# "  # harness/lava/init.sh's shell prompt
DEPLOY_MINUTES = 10
BOOT_MINUTES = 5
# LAVA's deployment data for a busybox system ("oe": plain /bin/sh, no package manager).
DEPLOY_OS = "oe"
NOWHERE = Path("/nonexistent")


@dataclass(frozen=True)
class Artefacts:
    """URL templates of what a job deploys ({cell}, {kernel}, {arch} filled in per cell)."""

    kernel: str
    ramdisk: str
    dtb: str | None = None
    modules: str | None = None
    disks: str | None = None  # qemu: a blank disk image per scratch disk, {disk} its id

    def url(self, template: str, cell: Cell, **extra: str) -> str:
        values = {"cell": cell.id, "kernel": cell.kernel.name, "arch": cell.arch, **extra}
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise UsageError(f"URL {template!r}: {exc}", "write placeholders as {cell}, {kernel}, {arch}") from None
        unknown = [n for n in names if n not in values]
        if unknown:
            raise UsageError(f"URL {template!r}: unknown placeholder {{{unknown[0]}}}",
                             f"use {', '.join('{' + k + '}' for k in values)}")
        return template.format(**values)


def minutes(seconds: float) -> dict[str, int]:
    return {"minutes": max(1, math.ceil(seconds / 60))}


def refusals(cell: Cell, dt: DeviceType, workloads: list[Workload], board_disks: Mapping[str, str]) -> list[str]:
    """Why `cell` cannot run on `dt` as it is asked (empty: it can)."""
    why: list[str] = []
    if dt.arch and dt.arch != cell.arch:
        why.append(f"{dt.name} is an {dt.arch} board, the cell's kernel is {cell.arch}")
    if dt.board:
        if not cell.dma_coherent:
            why.append("dma_coherent: false is QEMU's modified device tree; a board's DMA is what it is")
        if cell.iommu != "none":
            why.append(f"iommu: {cell.iommu} is an emulated IOMMU")
        if cell.iommu_platform:
            why.append("iommu_platform: true is a virtio device option")
    for wl in workloads:
        for d in wl.devices:
            role = devices.get(d.kind).role
            if role == "nic":
                why.append(f"workload {wl.name} needs kharness's traffic peers on the host ({d.kind})")
            elif dt.board and role == "disk" and d.id not in board_disks:
                why.append(f"workload {wl.name} needs a {d.kind} scratch disk {d.id!r}: "
                           f"name a disk of the board with --board-disk {d.id}=/dev/...")
    return why


def device_env(workloads: list[Workload], dt: DeviceType, board_disks: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Per workload, how its disks are found: by serial in QEMU (as run/cell.py), by path on a board."""
    env: dict[str, dict[str, str]] = {}
    for wl in workloads:
        e: dict[str, str] = {}
        for d in wl.devices:
            kind = devices.get(d.kind)
            if kind.role != "disk":
                continue
            if dt.board:
                e[f"KH_DEV_{d.id.upper()}"] = board_disks[d.id]
            else:
                e[f"KH_SERIAL_{d.id.upper()}"] = d.id
                e[f"KH_FIND_{d.id.upper()}"] = kind.find
        env[wl.name] = e
    return env


def disk_image_key(disk: Disk) -> str:
    return f"disk_{disk.id.replace('-', '_')}"


def qemu_disk_arg(disk: Disk, iommu_platform: bool, controllers: set[str]) -> str:
    """A scratch disk's QEMU arguments, as harness/machine/qemu.py device_args writes them, on an image."""
    kind = devices.get(disk.kind)
    args = [f"-drive if=none,id=drv-{disk.id},file={{{disk_image_key(disk)}}},format=raw,cache=unsafe"]
    if kind.controller and kind.controller not in controllers:
        args.append(f"-device {kind.controller}")
        controllers.add(kind.controller)
    args.append(f"-device {kind.device_arg(iommu_platform, drive=f'drv-{disk.id}', id=disk.id)}")
    return " ".join(args)


def _qemu_job(cell: Cell, workloads: list[Workload], arts: Artefacts, page_size: int | None) -> dict[str, Any]:
    arch = preset(cell.arch)
    # The kernel and initrd are the job's images, not files here.
    spec = MachineSpec(arch=cell.arch, kernel=NOWHERE, initrd=NOWHERE, cmdline=tuple(cell.kernel_cmdline()),
                       memory_mib=cell.memory_mib, cpus=cell.cpus, disks=disks_for(workloads),
                       iommu_platform=cell.iommu_platform, iommu=cell.iommu, page_size=page_size)
    # The IOMMU first: intel-iommu must come before the devices it translates (as qemu.py).
    extra = [f"-smp {cell.cpus}", "-no-reboot", *_pairs(iommu_args(spec))]
    extra += [f"-device {devices.get(n).qemu}" for n in devices.EVERY_GUEST if devices.get(n).role == "boot"
              and "{" not in devices.get(n).qemu]
    extra += [" ".join(arch.extra_args)] if arch.extra_args else []
    context: dict[str, Any] = {
        "arch": cell.arch, "machine": machine_arg(spec, arch), "memory": cell.memory_mib,
        "guestfs_interface": "virtio", "netdevice": "user", "model": "model=virtio",
    }
    # LAVA's qemu template takes -cpu from the context for arm guests only and
    # gives the others `-cpu host -enable-kvm` unless no_kvm: so no_kvm, and the
    # CPU in extra_options too (the last -cpu wins; kharness's figures are TCG's).
    cpu = arch.cpu("tcg", page_size)
    context |= {"cpu": cpu, "no_kvm": True}
    context["extra_options"] = [f"-cpu {cpu}", *extra]
    append = " ".join((*arch.cmdline, *kernel_words(spec)))
    images: dict[str, Any] = {
        "kernel": {"url": arts.url(arts.kernel, cell), "image_arg": f'-kernel {{kernel}} -append "{append}"'},
        "ramdisk": {"url": arts.url(arts.ramdisk, cell), "image_arg": "-initrd {ramdisk}"},
    }
    if not cell.dma_coherent:
        if arts.dtb is None:
            raise UsageError(f"cell {cell.id} (dma_coherent: false) boots kharness's non-coherent device tree",
                             "give --dtb URL (kharness lava ramdisk writes it as <cell>/noncoherent.dtb)")
        images["dtb"] = {"url": arts.url(arts.dtb, cell), "image_arg": "-dtb {dtb}"}
    controllers: set[str] = set()
    for disk in spec.disks:
        if arts.disks is None:
            raise UsageError(f"cell {cell.id} needs scratch disks ({', '.join(d.id for d in spec.disks)})",
                             "give --disks URL with {disk} (kharness lava ramdisk writes <cell>/disk-<id>.img.gz)")
        images[disk_image_key(disk)] = {"url": arts.url(arts.disks, cell, disk=disk.id), "compression": "gz",
                                        "image_arg": qemu_disk_arg(disk, cell.iommu_platform, controllers)}
    deploy = {"to": "tmpfs", "os": DEPLOY_OS, "timeout": {"minutes": DEPLOY_MINUTES}, "images": images}
    boot = {"method": "qemu", "media": "tmpfs", "timeout": {"minutes": BOOT_MINUTES}, "prompts": [PROMPT]}
    return {"context": context, "deploy": deploy, "boot": boot}


def _pairs(args: list[str]) -> list[str]:
    """["-device", "x", "-device", "y"] -> ["-device x", "-device y"]."""
    return [f"{args[i]} {args[i + 1]}" for i in range(0, len(args) - 1, 2)]


def _board_job(cell: Cell, dt: DeviceType, arts: Artefacts) -> dict[str, Any]:
    context: dict[str, Any] = dict(dt.context)
    words = cell.kernel_cmdline()
    if words:
        context["extra_kernel_args"] = " ".join(words)
    deploy: dict[str, Any] = {
        "to": "tftp", "os": DEPLOY_OS, "timeout": {"minutes": DEPLOY_MINUTES},
        "kernel": {"url": arts.url(arts.kernel, cell), "type": "image"},
        "ramdisk": {"url": arts.url(arts.ramdisk, cell), "compression": "gz"},
    }
    if arts.dtb is not None:
        deploy["dtb"] = {"url": arts.url(arts.dtb, cell)}
    if arts.modules is not None:
        modules = arts.url(arts.modules, cell)
        deploy["modules"] = {"url": modules, **({"compression": c} if (c := _compression(modules)) else {})}
    boot = {"method": dt.method, "commands": "ramdisk", "timeout": {"minutes": BOOT_MINUTES}, "prompts": [PROMPT]}
    return {"context": context, "deploy": deploy, "boot": boot}


def _compression(url: str) -> str | None:
    for suffix, name in ((".gz", "gz"), (".tgz", "gz"), (".xz", "xz"), (".bz2", "bz2"), (".zst", "zstd")):
        if url.endswith(suffix):
            return name
    return None


def render(cell: Cell, rep: int, dt: DeviceType, workloads: list[Workload], arts: Artefacts,
           kernel: Mapping[str, Any], config: Mapping[str, Any], board_disks: Mapping[str, str] | None = None,
           page_size: int | None = None) -> dict[str, Any]:
    """The job definition (a dict, for yaml.safe_dump) of repetition `rep` of `cell` on `dt`."""
    board_disks = dict(board_disks or {})
    why = refusals(cell, dt, workloads, board_disks)
    if why:
        raise UsageError(f"cell {cell.id} cannot run on LAVA device type {dt.name}: {why[0]}",
                         "choose cells with --cell (kharness expand CONFIG lists them)")
    parts = _qemu_job(cell, workloads, arts, page_size) if not dt.board else _board_job(cell, dt, arts)
    head = testdef.header(cell, rep, dt.name, kernel, config)
    lines = testdef.steps(cell, workloads, head, device_env(workloads, dt, board_disks))
    test_seconds = testdef.seconds(cell, workloads)
    test = {
        "timeout": minutes(test_seconds),
        "definitions": [{
            "repository": testdef.definition(cell, rep, lines),
            "from": "inline", "name": "kharness", "path": "inline/kharness.yaml",
        }],
    }
    job: dict[str, Any] = {
        "device_type": dt.name,
        "job_name": f"kharness {cell.slug}#{rep} on {dt.name}"[:200],
        "timeouts": {
            "job": minutes((DEPLOY_MINUTES + BOOT_MINUTES) * 60 + test_seconds + 300),
            "connection": {"minutes": 2},
        },
        "priority": "medium",
        "visibility": "public",
        "metadata": {"kharness.cell": cell.id, "kharness.slug": cell.slug, "kharness.rep": rep,
                     "kharness.kernel": str(kernel.get("release", cell.kernel.name))},
        "actions": [{"deploy": parts["deploy"]}, {"boot": parts["boot"]}, {"test": test}],
    }
    if parts["context"]:
        job["context"] = parts["context"]
    return job
