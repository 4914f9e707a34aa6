#!/usr/bin/env python3
"""The guest userland, the README's "Guest userland" tables: layers and boot to KHARNESS-READY.

Per kernel's arch: the base layer with fio, without fio and with fio gzipped,
each built cold (into a fresh, empty cache) and then warm, with its size,
files and packages; the modules layer; then the kernel booted under TCG
with each variant to `KHARNESS-READY` (QemuGuest.boot), and the kernel's
own initramfs unpacking time read from the console's timestamps.

    .venv/bin/python bench/userland_bench.py [--rounds 3] [KERNEL ...]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from stamp import say

from harness.initramfs import keys
from harness.initramfs.base import BaseLayer, BaseSpec, build_base, programs_for
from harness.initramfs.modules import build_modules_layer
from harness.initramfs.runlayer import assemble, build_run_layer
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.kernel.resolve import resolve
from harness.machine.guest import Access, QemuGuest
from harness.machine.qemu import MachineSpec
from harness.model import Kernel
from harness.run.boot import CORE_SCRIPTS, modules_for
from harness.workloads import BUILTIN_DIR
from harness.workloads import load as load_workload

VARIANTS = {"with fio": (("fio",), False), "without fio": ((), False), "with fio, gzip": (("fio",), True)}
_STAMP = re.compile(rb"^\[\s*([0-9]+\.[0-9]+)\]", re.MULTILINE)


def built(spec: BaseSpec) -> tuple[BaseLayer, float]:
    t0 = time.monotonic()
    layer = build_base(spec)
    return layer, time.monotonic() - t0


def unpack_seconds(console: bytes) -> float | None:
    """From "Trying to unpack rootfs image" to "Freeing initrd memory" (printk times)."""
    marks = {}
    for line in console.splitlines():
        m = _STAMP.match(line)
        if m and b"unpack rootfs image" in line:
            marks["start"] = float(m.group(1))
        elif m and b"Freeing initrd memory" in line:
            marks["end"] = float(m.group(1))
    return marks["end"] - marks["start"] if len(marks) == 2 else None


def boot_to_ready(kernel: Kernel, base: BaseLayer, tmp: Path) -> tuple[float, float | None]:
    client = keys.generate_client_key(tmp / "keys")
    host = keys.generate_guest_host_key(tmp / "keys")
    layers = [base.path]
    if kernel.modules_dir is not None:
        layers.append(build_modules_layer(kernel.modules_dir, modules_for([load_workload("fio-nvme")])).path)
    layers.append(build_run_layer(tmp / "run.cpio", [client.public_line], host.path,
                                  [BUILTIN_DIR / s for s in CORE_SCRIPTS]))
    initrd = assemble(layers, tmp / "initrd.cpio")
    spec = MachineSpec(arch=kernel.arch, kernel=kernel.image, initrd=initrd, cmdline=(), accel="tcg")
    console = tmp / "console.log"
    with QemuGuest(spec, Access(host.public_line, client.private_path), console) as guest:
        guest.boot(180)
        seconds = time.monotonic() - guest.machine.started_at
        guest.poweroff()
    return seconds, unpack_seconds(console.read_bytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="boots per variant (medians printed)")
    ap.add_argument("kernels", nargs="*", default=["trixie-arm64", "trixie-x86_64"])
    args = ap.parse_args()
    say("bench/userland_bench.py")
    for name in args.kernels:
        kernel = resolve(DEFAULT_KERNELS[name])
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            os.environ["KHARNESS_CACHE"] = str(tmp / "cache")  # cold: nothing built yet
            for variant, (extra, gzip) in VARIANTS.items():
                spec = BaseSpec(arch=kernel.arch, programs=programs_for(extra), compress=gzip)
                layer, cold = built(spec)
                _, warm = built(spec)
                m = layer.manifest
                print(f"{name} base {variant}: {layer.path.stat().st_size / 1e6:.1f} MB, {m['files']} files, "
                      f"{len(m['packages'])} packages; cold {cold:.1f} s / warm {warm:.1f} s")
                boots = [boot_to_ready(kernel, layer, tmp) for _ in range(args.rounds)]
                ready = statistics.median(b[0] for b in boots)
                unpacks = [b[1] for b in boots if b[1] is not None]
                unpack = f"{statistics.median(unpacks):.2f} s unpacking" if unpacks else "unpacking not timed"
                print(f"{name} power-on to KHARNESS-READY, {variant}: {ready:.2f} s ({unpack}), "
                      f"median of {args.rounds}")
            if kernel.modules_dir is not None:
                mods = build_modules_layer(kernel.modules_dir, modules_for([load_workload("fio-nvme")]))
                print(f"{name} modules layer: {mods.path.stat().st_size / 1e3:.0f} KB, {len(mods.plan.order)} modules")
            print(f"{name} run layer (keys and the core scripts): {(tmp / 'run.cpio').stat().st_size / 1e3:.1f} KB")


if __name__ == "__main__":
    main()
