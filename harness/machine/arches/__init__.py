"""Per-arch QEMU knowledge as data: one small module per guest arch.

Adding an arch means adding `<arch>.py` here that defines `PRESET`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from harness.errors import UsageError


@dataclass(frozen=True)
class ArchPreset:
    name: str  # kharness arch name (model.Arch)
    qemu: str  # the QEMU system binary
    host_machine: str  # platform.machine() of a host that can run it under KVM
    machine: str  # -M value
    cpu_tcg: str  # -cpu under TCG (a fast model, not "max")
    cpu_kvm: str
    console: str  # the guest's serial console device
    cmdline: tuple[str, ...]  # kernel words every boot of this arch gets
    extra_args: tuple[str, ...] = ()
    debian_package: str = ""  # the Debian package that ships `qemu`


def preset(arch: str) -> ArchPreset:
    if arch not in ("arm64", "x86_64"):
        raise UsageError(f"unknown arch {arch!r}", "use arm64 or x86_64")
    mod = importlib.import_module(f"harness.machine.arches.{arch}")
    value: ArchPreset = mod.PRESET
    return value
