"""The ramdisk a LAVA device boots: a QEMU run's guest userland, without SSH, as one archive.

The same layers as a QEMU boot (harness/run/boot.py): the base layer of
busybox and the workloads' programs, the modules the cell's devices need,
and the guest scripts; but no keys and no SSH server. Its /init
(`harness/lava/init.sh`) gives the serial console a shell instead, where
LAVA's test shell runs the scripts (harness/lava/testdef.py).

One archive, not concatenated layers, and gzip'd: LAVA unpacks a ramdisk
with cpio to add its test overlay and modules (deploy to tftp), and cpio
stops at an archive's first trailer, so a layered initrd would lose every
layer after the first.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from harness import cache
from harness.initramfs import cpio
from harness.initramfs.base import BaseSpec, build_base, programs_for
from harness.initramfs.modules import build_modules_layer
from harness.initramfs.runlayer import SCRIPTS_DIR
from harness.kernel.resolve import resolve
from harness.model import Cell, Kernel
from harness.run.boot import CORE_SCRIPTS, cell_workloads, modules_for
from harness.workloads import BUILTIN_DIR

INIT = "init.sh"
DRIVER = "kharness-lava.sh"  # one part of a test, between markers (testdef.py)
# LAVA's qemu device type puts the test overlay on a disk of its own
# (`-drive ...,if=virtio`): its driver, and the ext2 the overlay is made of
# (ext4 drives ext2 where it is built in, as on Debian's kernels).
OVERLAY_DISK_MODULES = ("virtio_blk",)


@dataclass(frozen=True)
class Ramdisk:
    path: Path
    kernel: Kernel
    modules: tuple[str, ...]  # module names in load order
    scripts: tuple[str, ...]  # guest script names under /kharness/scripts
    sha256: str


def package_file(name: str) -> bytes:
    """A file shipped beside this module (init.sh, kharness-lava.sh)."""
    return importlib.resources.files("harness.lava").joinpath(name).read_bytes()


def _members_of(archive: Path) -> list[cpio.Member]:
    """An archive kharness wrote (a cached layer) as members again."""
    members: list[cpio.Member] = []
    for e in cpio.read(archive.read_bytes()):
        perm = e.mode & 0o7777
        if e.kind == "dir":
            members.append(cpio.directory(e.name, perm))
        elif e.kind == "symlink":
            members.append(cpio.symlink(e.name, e.data.decode()))
        elif e.kind == "file":
            members.append(cpio.file(e.name, e.data, perm))
    return members


def build(cell: Cell, out: Path, *, overlay_disk: bool = False,
          workload_dirs: tuple[Path, ...] = ()) -> Ramdisk:
    """Write `cell`'s ramdisk to `out` (gzip'd newc); `overlay_disk` for LAVA's qemu device type."""
    kernel = resolve(cell.kernel)
    workloads = cell_workloads(cell, workload_dirs)
    base = build_base(BaseSpec(arch=kernel.arch, programs=programs_for(p for wl in workloads for p in wl.programs)))
    layers = [base.path]
    wanted = modules_for(workloads, cell.iommu) + (list(OVERLAY_DISK_MODULES) if overlay_disk else [])
    names: tuple[str, ...] = ()
    if kernel.modules_dir is not None:
        mods = build_modules_layer(kernel.modules_dir, wanted)
        layers.append(mods.path)
        names = tuple(m.name for m in mods.plan.order)
    by_path: dict[str, cpio.Member] = {}
    for layer in layers:
        for m in _members_of(layer):
            by_path[m.path] = m  # a later layer wins, as the kernel unpacks them
    scripts = list(dict.fromkeys([BUILTIN_DIR / s for s in CORE_SCRIPTS] + [wl.script for wl in workloads]))
    for script in scripts:
        path = f"{SCRIPTS_DIR}/{script.name}"
        by_path[path] = cpio.file(path, script.read_bytes(), 0o755)
    by_path[f"{SCRIPTS_DIR}/{DRIVER}"] = cpio.file(f"{SCRIPTS_DIR}/{DRIVER}", package_file(DRIVER), 0o755)
    by_path["init"] = cpio.file("init", package_file(INIT), 0o755)
    cpio.write(by_path.values(), out, compress=True)
    return Ramdisk(out, kernel, names, (*(s.name for s in scripts), DRIVER), cache.sha256_file(out))
