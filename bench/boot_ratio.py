#!/usr/bin/env python3
"""Boot-to-SSH-ready against a bare boot of the same kernel, side by side.

For each kernel, alternately:
- bare: QEMU with the same machine options, the kernel and a one-file
  initramfs (static busybox) whose /init powers off at once; timed from
  QEMU's start to its exit;
- kharness: QemuGuest.boot() with the full layered initramfs; timed from
  QEMU's start to the first SSH command answered.
Prints the medians and their ratio (issue 3's target: at most 1.25).

    .venv/bin/python bench/boot_ratio.py [--rounds 3] [KERNEL ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from stamp import say  # bench/stamp.py (a script's own folder is on sys.path)

from harness.arches import preset
from harness.initramfs import cpio, keys
from harness.initramfs.base import BaseSpec, build_base
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.kernel.resolve import resolve
from harness.machine.guest import Access, QemuGuest
from harness.machine.qemu import MachineSpec
from harness.model import Kernel
from harness.run.boot import initrd_for

BARE_INIT = b"#!/bin/busybox sh\n/bin/busybox poweroff -f\n"


def bare_initrd(kernel: Kernel, tmp: Path) -> Path:
    base = build_base(BaseSpec(arch=kernel.arch))
    busybox = next(e for e in cpio.read(base.path.read_bytes()) if e.name == "bin/busybox")
    members = [cpio.directory("bin"), cpio.file("bin/busybox", busybox.data, 0o755),
               cpio.file("init", BARE_INIT, 0o755)]
    return cpio.write(members, tmp / "bare.cpio")


def bare_boot(kernel: Kernel, initrd: Path, tmp: Path) -> float:
    arch = preset(kernel.arch)
    cpu = arch.cpu("tcg", kernel.page_size)
    argv = [arch.qemu, "-accel", "tcg", "-M", arch.machine, "-cpu", cpu, "-m", "1024", "-smp", "2",
            "-nodefaults", "-display", "none", "-no-reboot", "-serial", f"file:{tmp / 'bare.log'}",
            "-kernel", str(kernel.image), "-initrd", str(initrd),
            "-append", " ".join((*arch.cmdline, "panic=-1"))]
    t0 = time.monotonic()
    subprocess.run(argv, check=True, timeout=120, stdin=subprocess.DEVNULL)
    return time.monotonic() - t0


def kharness_boot(kernel: Kernel, tmp: Path) -> float:
    client = keys.generate_client_key(tmp / "keys")
    host = keys.generate_guest_host_key(tmp / "keys")
    initrd, _ = initrd_for(kernel, [], tmp, client, host)
    spec = MachineSpec(arch=kernel.arch, kernel=kernel.image, initrd=initrd, cmdline=(), accel="tcg")
    with QemuGuest(spec, Access(host.public_line, client.private_path), tmp / "console.log") as guest:
        guest.boot(120)
        guest.run("true", timeout=30)
        seconds = time.monotonic() - guest.machine.started_at
        guest.poweroff()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("kernels", nargs="*", default=["trixie-x86_64", "trixie-arm64"])
    args = ap.parse_args()
    say("bench/boot_ratio.py")  # the date the README quotes
    print(f"{'kernel':<18} {'bare s':>8} {'kharness s':>11} {'ratio':>6}  (medians of {args.rounds})")
    for name in args.kernels:
        kernel = resolve(DEFAULT_KERNELS[name])
        bare, full = [], []
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            initrd = bare_initrd(kernel, tmp)
            for _ in range(args.rounds):
                bare.append(bare_boot(kernel, initrd, tmp))
                full.append(kharness_boot(kernel, tmp))
        b, f = statistics.median(bare), statistics.median(full)
        print(f"{name:<18} {b:8.2f} {f:11.2f} {f / b:6.2f}")


if __name__ == "__main__":
    main()
