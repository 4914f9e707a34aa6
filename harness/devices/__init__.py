"""QEMU device kinds as data: one small module per kind, found by listing this folder.

A kind says everything kharness needs to put the device into a guest and
use it there: its QEMU -device argument (and a controller it needs), whether
it is a virtio device that reaches the DMA API only with ACCESS_PLATFORM, the
guest drivers it needs (kconfig symbols and modules), the options a source
build needs for it, how the guest finds it, and its role (a scratch disk, the
traffic NIC, or one of the devices every guest has). The QEMU argv, the
modules layer, source builds, `kernel info` and the guest launcher all read
it from here.

Adding a device kind means adding `<kind>.py` here that defines `KIND`
(plus a workload that uses it, in guest_scripts/).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.errors import UsageError

# boot: every guest has it (SSH NIC, entropy); iommu: the cell's `iommu:` axis
Role = Literal["disk", "nic", "boot", "iommu"]
# How the guest launcher (guest_scripts/kharness-run.sh) finds a disk by its serial:
# block: /sys/block/*/serial (or device/serial); usb: the serial of the USB device above it.
Find = Literal["block", "usb", "mac"]

# virtio devices use the DMA API (and so can bounce) only with ACCESS_PLATFORM,
# which QEMU offers only on modern-only devices.
ACCESS_PLATFORM = ",disable-legacy=on,iommu_platform=on"


@dataclass(frozen=True)
class Driver:
    """A guest driver: the config symbols and modules it needs, all of them."""

    name: str
    symbols: tuple[str, ...]  # without the CONFIG_ prefix
    modules: tuple[str, ...]  # module names ('-' written as '_'), in load order
    device: str  # the QEMU device it drives, for people reading `kernel info`


# The virtio PCI transport: every virtio-*-pci device needs it.
VIRTIO_PCI = Driver("virtio_pci", ("VIRTIO_PCI",), ("virtio_pci",), "virtio-*-pci transport")
VIRTIO_MMIO = Driver("virtio_mmio", ("VIRTIO_MMIO",), ("virtio_mmio",), "virtio-*-device (mmio)")
TRANSPORT_DRIVERS = (VIRTIO_PCI, VIRTIO_MMIO)


@dataclass(frozen=True)
class DeviceKind:
    name: str  # as workload declarations name it (`kind: virtio-blk`)
    role: Role
    description: str
    # The -device argument; {id} is the device's id (its serial), {drive} the
    # -drive id of a disk, {netdev} and {mac} a NIC's.
    qemu: str
    drivers: tuple[Driver, ...]
    find: Find = "block"
    controller: str = ""  # a -device that must come once before the first such device
    virtio: bool = False  # takes ACCESS_PLATFORM when the cell asks for DMA-API virtio
    # kconfig symbols (=y) a source build needs beyond the drivers' own:
    # dependencies, which olddefconfig would otherwise drop.
    build_needs: tuple[str, ...] = ()
    every_build: bool = False  # built into every source-built kernel (else only when a cell needs it)
    transport: str = "pci"  # the bus its DMA comes over (an IOMMU translates some buses only)
    # IOMMUs (role "iommu"): what else puts one into a guest, and where it exists.
    machine_option: str = ""  # appended to -M (virt's iommu=smmuv3)
    cmdline: tuple[str, ...] = ()  # kernel words it needs (intel_iommu=on)
    machines: tuple[str, ...] = ()  # QEMU machines that have it (the arch presets' `machine`)
    translates: tuple[str, ...] = ()  # transports whose DMA it translates

    def device_arg(self, dma_api: bool, **fields: str) -> str:
        arg = self.qemu.format(**fields)
        return arg + ACCESS_PLATFORM if self.virtio and dma_api else arg

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(m for d in self.drivers for m in d.modules)

    @property
    def build_options(self) -> tuple[str, ...]:
        return (*self.build_needs, *(s for d in self.drivers for s in d.symbols))


# The devices every guest has, whatever its workloads: the NIC that SSH goes
# through and the entropy source.
SSH_NIC = "virtio-net"
EVERY_GUEST = (SSH_NIC, "virtio-rng")


def kinds() -> dict[str, DeviceKind]:
    """Every kind module in this folder (and any folder added to __path__), by name."""
    found: dict[str, DeviceKind] = {}
    for mod in pkgutil.iter_modules(__path__):
        kind: DeviceKind | None = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "KIND", None)
        if kind is not None:
            found[kind.name] = kind
    return dict(sorted(found.items()))


def names(role: Role | None = None) -> tuple[str, ...]:
    return tuple(k.name for k in kinds().values() if role is None or k.role == role)


def get(name: str) -> DeviceKind:
    try:
        return kinds()[name]
    except KeyError:
        raise UsageError(f"unknown device kind {name!r}",
                         f"known: {', '.join(names('disk') + names('nic'))}") from None


def drivers() -> dict[str, Driver]:
    """The drivers behind the devices workloads can ask for, plus the virtio transports."""
    found = {d.name: d for d in TRANSPORT_DRIVERS}
    for kind in kinds().values():
        if kind.role in ("disk", "nic"):
            found.update((d.name, d) for d in kind.drivers)
    return found


def modules_for(kind_names: Iterable[str], iommu: str = "none") -> tuple[str, ...]:
    """The guest modules for every guest's devices plus `kind_names`', in order, once each.

    An IOMMU's modules come first: the devices behind it wait for it to probe.
    """
    first = get(iommu).modules if iommu != "none" else ()
    wanted = [*first, *(m for name in (*EVERY_GUEST, *kind_names) for m in get(name).modules)]
    return tuple(dict.fromkeys(wanted))


def ssh_modules(iommu: str = "none") -> tuple[str, ...]:
    """What the guest loads before it says READY: the IOMMU's modules, then the SSH NIC's.

    The rest (entropy, the workloads' devices) load while the host connects.
    """
    first = get(iommu).modules if iommu != "none" else ()
    return tuple(dict.fromkeys((*first, *get(SSH_NIC).modules)))


def every_build_options() -> tuple[str, ...]:
    """What every source-built guest kernel gets for its devices."""
    opts = (o for k in kinds().values() if k.every_build for o in k.build_options)
    return tuple(dict.fromkeys(opts))
