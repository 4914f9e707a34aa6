#!/usr/bin/env python3
"""Boot-to-SSH-ready against a bare boot of the same kernel, side by side, and where the time goes.

For each kernel, alternately:
- bare: the same QEMU command line as kharness's (machine, CPU, memory, the
  SSH NIC, the entropy device, QMP), but a one-file initramfs (static
  busybox) whose /init powers off at once; timed from QEMU's start to its
  exit. The same without the devices is printed too ("no devices"): what the
  machine itself costs;
- kharness: QemuGuest.boot() with the full layered initramfs; timed from
  QEMU's start to the first SSH command answered.
Prints the medians, the time kharness adds over bare, and the ratio of each
round's pair (issue 18's target: at most 1.10; the median of the pairs, and
their range: the host's speed drifts between runs more than within a pair), then
the kharness boot's parts (medians): firmware and kernel until /init, each
phase of init (from the guest's /run/kharness-boot.times), READY seen by the
host, SSH key exchange and login, the first command.

    .venv/bin/python bench/boot_ratio.py [--rounds 5] [KERNEL ...]
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
from harness.machine.guest import READY_MARKER, Access, QemuGuest
from harness.machine.qemu import MachineSpec, QemuMachine
from harness.machine.ssh import GuestShell
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
    """kharness's QEMU command line (QemuMachine) with the bare initramfs: start to exit."""
    spec = MachineSpec(arch=kernel.arch, kernel=kernel.image, initrd=initrd, cmdline=(), accel="tcg")
    with QemuMachine(spec, tmp / "bare-machine.log") as machine:
        if not machine.wait_exit(120):
            raise SystemExit(f"boot_ratio: the bare boot of {kernel.name} did not power off")
        return time.monotonic() - machine.started_at


def bare_boot_no_devices(kernel: Kernel, initrd: Path, tmp: Path) -> float:
    """QEMU with the machine, CPU and memory only, and the bare initramfs: start to exit."""
    arch = preset(kernel.arch)
    cpu = arch.cpu("tcg", kernel.page_size)
    argv = [arch.qemu, "-accel", "tcg", "-M", arch.machine, "-cpu", cpu, "-m", "1024", "-smp", "2",
            "-nodefaults", "-display", "none", "-no-reboot", "-serial", f"file:{tmp / 'bare.log'}",
            "-kernel", str(kernel.image), "-initrd", str(initrd),
            "-append", " ".join((*arch.cmdline, "panic=-1"))]
    t0 = time.monotonic()
    subprocess.run(argv, check=True, timeout=120, stdin=subprocess.DEVNULL)
    return time.monotonic() - t0


def kharness_boot(kernel: Kernel, tmp: Path) -> tuple[float, dict[str, float]]:
    """Seconds from QEMU's start to the first command answered, and that time's parts."""
    client = keys.generate_client_key(tmp / "keys")
    host = keys.generate_guest_host_key(tmp / "keys")
    initrd, _ = initrd_for(kernel, [], tmp, client, host)
    spec = MachineSpec(arch=kernel.arch, kernel=kernel.image, initrd=initrd, cmdline=(), accel="tcg")
    with QemuGuest(spec, Access(host.public_line, client.private_path), tmp / "console.log") as guest:
        guest.machine.start()
        start = guest.machine.started_at
        guest.machine.wait_for_console(READY_MARKER, 120)
        ready = time.monotonic()
        guest.shell = GuestShell(guest.machine.ssh_port, host.public_line, client.private_path)
        guest.shell.connect(30)
        connected = time.monotonic()
        res = guest.run("cat /run/kharness-boot.times", timeout=30)
        seconds = time.monotonic() - start
        parts = {"ssh login": connected - ready, "first command": start + seconds - connected}
        stamps = [(name, float(up)) for name, up in (line.split() for line in res.text.splitlines())]
        ready_uptime = dict(stamps).get("sshd", stamps[-1][1])
        # The guest's clock starts with the kernel: what came before is QEMU and firmware.
        parts["qemu+firmware"] = ready - start - ready_uptime
        last = 0.0
        for name, up in stamps:
            if name == "late-modules":
                continue  # after READY, while the host logs in
            parts[f"init:{name}" if last else "kernel to /init"] = up - last
            last = up
        guest.poweroff()
    return seconds, parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("kernels", nargs="*", default=["trixie-x86_64", "trixie-arm64"])
    args = ap.parse_args()
    say("bench/boot_ratio.py")  # the date the README quotes
    rows, breakdowns = [], {}
    for name in args.kernels:
        kernel = resolve(DEFAULT_KERNELS[name])
        plain, bare, full, parts = [], [], [], []
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            initrd = bare_initrd(kernel, tmp)
            for _ in range(args.rounds):
                plain.append(bare_boot_no_devices(kernel, initrd, tmp))
                bare.append(bare_boot(kernel, initrd, tmp))
                seconds, split = kharness_boot(kernel, tmp)
                full.append(seconds)
                parts.append(split)
        # Each round's kharness boot against the bare boot just before it: the host's speed
        # drifts between runs (the same bare boot took 1.8 s one hour, 3.0 s the next), and
        # a pair a few seconds apart shares most of that drift.
        paired = [f / b for f, b in zip(full, bare, strict=True)]
        over = [f - b for f, b in zip(full, bare, strict=True)]
        rows.append((name, statistics.median(plain), statistics.median(bare), statistics.median(full),
                     statistics.median(paired), min(paired), max(paired), statistics.median(over)))
        breakdowns[name] = {k: statistics.median(p.get(k, 0.0) for p in parts) for k in parts[0]}
    print(f"{'kernel':<18} {'no devices s':>12} {'bare s':>8} {'kharness s':>11} {'over s':>7} {'ratio':>6}"
          f" {'min-max':>10} {'target':>7}")
    for name, p, b, f, ratio, low, high, extra in rows:
        verdict = "ok" if ratio <= 1.10 else "over"
        print(f"{name:<18} {p:12.2f} {b:8.2f} {f:11.2f} {extra:7.2f} {ratio:6.2f} {f'{low:.2f}-{high:.2f}':>10}"
              f" {'<=1.10':>7}  {verdict}  (kharness / no devices {f / p:.2f})")
    print(f"(medians of {args.rounds} rounds; over: kharness - bare; ratio: kharness / bare, each round's"
          " pair, median and range)")
    print("\nwhere a kharness boot's time goes (medians, seconds):")
    order = list(dict.fromkeys(k for d in breakdowns.values() for k in d))
    print(f"{'part':<22}" + "".join(f" {n:>16}" for n in breakdowns))
    for key in order:
        print(f"{key:<22}" + "".join(f" {d.get(key, 0.0):16.3f}" for d in breakdowns.values()))


if __name__ == "__main__":
    main()
