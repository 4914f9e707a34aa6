"""Per-arch knowledge as data: one small module per guest arch (KUnit's qemu_configs habit).

Every fact kharness needs about an architecture lives in its `<arch>.py`
here, as one frozen `ArchPreset`: how Debian and ELF name it, how its kernel
images look, how QEMU runs it, how a source tree builds for it, and which
experiment axes it supports. Nothing outside this package names an arch
except as data (configs, defaults, examples in messages): a test checks it.

Adding an arch means adding `<arch>.py` here that defines `PRESET`; it is
found by listing this folder.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

from harness.errors import UsageError


@dataclass(frozen=True)
class ArchBuild:
    """How a kernel source tree builds for this arch (make ARCH=..., out of tree)."""

    make_arch: str  # ARCH=
    src_arch: str  # its directory under arch/
    target: str  # the image make target
    image: str  # where the image lands in the output directory
    cross_compile: str  # CROSS_COMPILE= on a host of another arch (Debian's cross toolchain)
    cross_package: str  # the Debian package that has it
    options: tuple[str, ...]  # kconfig symbols (=y) for QEMU's machine: serial console, PCI host


@dataclass(frozen=True)
class ArchPreset:
    name: str  # kharness's name for the arch (what configs say)
    debian: str  # Debian's architecture name (apt, mmdebstrap, .deb file names)
    aliases: tuple[str, ...]  # other spellings people use, pointed home in config errors
    elf_machine: str  # e_machine of its userland binaries (pyelftools' name)
    triplet: str  # Debian multiarch triplet: where the dynamic loader looks first
    kernel_format: str  # the boot image family its kernels come in (kernel/image.py)
    pe_machine: int  # PE/COFF machine of an EFI zboot image for it
    page_sizes: tuple[int, ...]  # page sizes its kernels may use (bytes)
    qemu: str  # the QEMU system binary
    qemu_package: str  # the Debian package that ships `qemu`
    host_machine: str  # platform.machine() of a host that runs it natively (KVM, no cross compiler)
    machine: str  # -M value
    cpu_tcg: str  # -cpu under TCG (a fast model, not "max")
    cpu_kvm: str
    console: str  # the guest's serial console device
    cmdline: tuple[str, ...]  # kernel words every boot of this arch gets
    build: ArchBuild
    noncoherent_dma: bool = False  # can boot a device tree with non-coherent PCIe (dma_coherent: false)
    extra_args: tuple[str, ...] = ()
    # -cpu under TCG for kernels of a page size cpu_tcg cannot translate
    cpu_tcg_by_page_size: tuple[tuple[int, str], ...] = ()

    def cpu(self, accel: str, page_size: int | None) -> str:
        if accel == "kvm":
            return self.cpu_kvm
        return dict(self.cpu_tcg_by_page_size).get(page_size or 0, self.cpu_tcg)


@cache
def presets() -> dict[str, ArchPreset]:
    """Every arch module in this folder, by name."""
    found: dict[str, ArchPreset] = {}
    for mod in pkgutil.iter_modules(__path__):
        value: ArchPreset = importlib.import_module(f"{__name__}.{mod.name}").PRESET
        found[value.name] = value
    return dict(sorted(found.items()))


def names() -> tuple[str, ...]:
    return tuple(presets())


def preset(arch: str) -> ArchPreset:
    try:
        return presets()[arch]
    except KeyError:
        raise UsageError(f"unknown arch {arch!r}", f"use {' or '.join(names())}") from None


def canonical(spelling: str) -> str | None:
    """The arch another spelling means (aarch64 -> arm64, amd64 -> x86_64), if any."""
    low = spelling.lower()
    return next((p.name for p in presets().values() if low == p.name or low in p.aliases), None)


def by_elf_machine(machine: str) -> ArchPreset | None:
    return next((p for p in presets().values() if p.elf_machine == machine), None)


def by_kernel_format(fmt: str) -> ArchPreset:
    """The arch whose kernels come as `fmt` (one arch per format)."""
    for p in presets().values():
        if p.kernel_format == fmt:
            return p
    raise UsageError(f"no arch boots {fmt} kernels", f"kharness boots {', '.join(names())}")


def by_pe_machine(machine: int) -> ArchPreset | None:
    return next((p for p in presets().values() if p.pe_machine == machine), None)


def by_debian(name: str) -> ArchPreset | None:
    return next((p for p in presets().values() if p.debian == name), None)
