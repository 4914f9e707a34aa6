"""LAVA device types kharness writes jobs for: LAVA's `qemu`, and boards booted by u-boot.

What a board is (its LAVA device type, arch, bootloader and the job context
its lab's template needs: prompt, load addresses, console) is tuxlava's
knowledge: each of tuxlava's `nfs-*` devices names a real board of the
LAVA labs (juno-r2, rk3399-rock-pi-4b, bcm2711-rpi-4-b, ...), and its
`context_overrides` are what that board's jobs set. kharness reads them from
tuxlava rather than keeping a copy. It does not take tuxlava's job
templates: they boot a board from an NFS root with a login prompt, and a
qemu job at a fixed 4 GiB of RAM without extra devices or a device tree,
while a cell needs its own RAM, devices, tree and a ramdisk with a shell on
the console (harness/lava/job.py renders those). Nor the boards' extra
kernel words (hugepages=256 reserves 512 MiB; `rw`, `rootwait` are for the
NFS root): a cell's command line is its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import arches
from harness.errors import UsageError

QEMU = "qemu"
_METHODS = ("u-boot",)  # boards whose ramdisk boot kharness renders


@dataclass(frozen=True)
class DeviceType:
    name: str  # the LAVA device type, as a job's device_type says it
    arch: str  # kharness's arch ("" for qemu: any)
    method: str  # LAVA boot method: qemu, u-boot
    context: tuple[tuple[str, Any], ...] = ()  # the board's job context (load addresses, prompt, console)
    source: str = ""  # where the facts come from: tuxlava's device name

    @property
    def board(self) -> bool:
        return self.method != QEMU


def boards() -> dict[str, DeviceType]:
    """Every u-boot board tuxlava knows of an arch kharness has, by LAVA device type."""
    from tuxlava.devices import Device
    from tuxlava.devices.nfs import NfsDevice

    found: dict[str, DeviceType] = {}
    for cls in Device.list():
        if not issubclass(cls, NfsDevice) or not cls.name.startswith("nfs-"):
            continue
        arch = _arch(cls.arch)
        if arch is None or cls.boot_method not in _METHODS:
            continue  # boards of arches kharness has no guest userland for (armv7, i386)
        name = cls.name.removeprefix("nfs-")
        context = {k: v for k, v in cls.context_overrides.items() if k not in {"extra_nfsroot_args", "arch"}}
        found[name] = DeviceType(name, arch, cls.boot_method, tuple(sorted(context.items())), cls.name)
    return dict(sorted(found.items()))


def _arch(name: str) -> str | None:
    """kharness's name of tuxlava's arch name, if kharness has that arch."""
    for p in arches.presets().values():
        if name in (p.name, p.debian):  # not the aliases: "arm" is 32-bit to tuxlava
            return p.name
    return None


def get(name: str) -> DeviceType:
    """`qemu`, or a board by its LAVA device type (`juno-r2`) or tuxlava's name (`nfs-juno-r2`)."""
    if name == QEMU:
        return DeviceType(QEMU, "", QEMU, (), "")
    known = boards()
    found = known.get(name.removeprefix("nfs-"))
    if found is None:
        raise UsageError(f"unknown LAVA device type {name!r}",
                         f"use qemu or one of these boards: {', '.join(known)}")
    return found
