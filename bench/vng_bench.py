#!/usr/bin/env python3
"""kharness against virtme-ng (vng), the same kernel booted under TCG to a first command.

For each kernel (Debian trixie's generic flavour: the cloud flavour has no
9p and vng cannot mount its root with it), alternately:
- vng: `vng --run IMAGE --disable-kvm --exec true`, timed from the process's
  start to its exit, once per guest root of the arch (vng_roots);
- kharness: a child process that boots the kernel with QemuGuest.boot(),
  answers `true` over SSH and powers off; timed from QEMU's start to the
  command answered (what bench/boot_ratio.py counts) and from the child's
  start to its exit (what vng's figure counts: interpreter, initramfs,
  boot, command, shutdown).
One untimed boot of each comes first (caches warm, vng's console kept).
Prints the medians, kharness/vng both ways, and the printk times of
"Run /init" and "Power down" on the first boots' consoles, so the kernel's
share and the userland's can be told apart. Goal (issue 18): kharness to
a command no slower than vng, ratio <= 1.00.

virtme-ng is not a kharness dependency: install it beside kharness with
`.venv/bin/pip install virtme-ng==1.42`, or anywhere on PATH.

    .venv/bin/python bench/vng_bench.py [--rounds 5] [KERNEL ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from stamp import say  # bench/stamp.py (a script's own folder is on sys.path)

from harness import arches, cache
from harness.initramfs import cpio, keys
from harness.initramfs.base import BaseSpec, build_base
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.kernel.resolve import resolve
from harness.machine.guest import Access, QemuGuest
from harness.machine.qemu import MachineSpec
from harness.model import DEFAULT_MIRROR
from harness.run.boot import initrd_for

VNG_VERSION = "1.42"  # the release this bench was written against
INSTALL = f".venv/bin/pip install virtme-ng=={VNG_VERSION}"
KERNELS = ("trixie-x86_64-generic", "trixie-arm64-generic")
# Both tools get the same guest size: kharness's MachineSpec defaults, passed to vng.
_SPEC = MachineSpec(arch="x86_64", kernel=Path(), initrd=Path(), cmdline=())
MEMORY_MIB = _SPEC.memory_mib
CPUS = _SPEC.cpus
VNG_TIMEOUT = 600  # seconds; vng's udev coldplug of a distro kernel alone takes ~30 s under TCG
KHARNESS_TIMEOUT = 600
# vng's guest roots (vng_roots): "host", vng's default, the host's own /
# over 9p, for the host's arch only; "minimal", a Debian tree of MINIMAL_ROOT
# near kharness's userland in size, and the only root a foreign arch can
# have (vng --arch needs --root).
# bash: vng's guest init for a foreign arch is the bash virtme-init (the
# wheel's virtme-ng-init is an x86_64 binary); busybox-static: every other
# program, linked below, and the static busybox vng's initramfs needs;
# udev: it names the virtio-serial ports (/dev/virtio-ports/virtme.*) that
# carry the command's output and exit code (without it vng exits 255).
MINIMAL_ROOT = ("bash", "busybox-static", "udev")
MINIMAL_SUITE = "bookworm"
MINIMAL_LAYOUT = 2  # bump when what goes into the minimal root changes
_PRINTK = re.compile(r"^\[\s*([0-9]+\.[0-9]+)\]")
# The lines that say why vng's guest did not get to its command, most telling first.
_VNG_FAILURES = ("Failed to mount real root", "Kernel panic", "virtme-run:", "virtme initramfs:", "error:")


class VngFailed(Exception):
    """vng did not run the command: a line saying why, from its output."""


@dataclass
class Figures:
    """One kernel's seconds, a list per way of counting (one entry per round)."""

    vng: dict[str, list[float]] = field(default_factory=dict)  # per vng root: process start -> exit
    to_command: list[float] = field(default_factory=list)  # kharness: QEMU start -> command answered
    process: list[float] = field(default_factory=list)  # kharness: child start -> exit
    consoles: dict[str, str] = field(default_factory=dict)  # "vng host", "kharness": the untimed first boot's


def find_vng(path: str | None, interpreter: Path) -> Path | None:
    """vng on PATH, else beside the interpreter running this bench (a venv's bin)."""
    found = shutil.which("vng", path=path)
    if found:
        return Path(found)
    beside = interpreter.parent / "vng"
    return beside if beside.is_file() and os.access(beside, os.X_OK) else None


def host_arch() -> str:
    """The kharness arch this host runs natively."""
    return next(p.name for p in arches.presets().values() if p.host_machine == platform.machine())


def vng_roots(arch: str) -> tuple[str, ...]:
    """The vng guest roots to time for a kernel of `arch` (MINIMAL_ROOT's comment)."""
    return ("host", "minimal") if arch == host_arch() else ("minimal",)


def vng_argv(vng: Path, image: Path, arch: str, root: Path | None, busybox: Path | None,
             verbose: bool = False) -> list[str]:
    """The vng command line for one boot to `true` under TCG (`verbose`: with the kernel's console)."""
    argv = [str(vng), "--run", str(image), "--disable-kvm",
            # The host's virtiofsd is QEMU 7.2's C daemon: vng starts it with
            # the Rust daemon's options, waits ~2.5 s and falls back to 9p.
            "--force-9p",
            "--memory", str(MEMORY_MIB), "--cpus", str(CPUS)]
    if arch != host_arch():
        argv += ["--arch", arch]
    if root is not None:
        argv += ["--root", str(root)]
    if busybox is not None:
        argv += ["--busybox", str(busybox)]
    if verbose:
        argv.append("--verbose")
    return [*argv, "--exec", "true"]


def vng_failure(output: str) -> str:
    """The line of vng's output that says why the command did not run."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for needle in _VNG_FAILURES:
        hit = next((ln for ln in lines if needle in ln), None)
        if hit:
            return hit
    return lines[-1] if lines else "no output"


def printk_at(console: str, needle: str) -> float | None:
    """The printk timestamp of the first console line containing `needle`."""
    for line in console.splitlines():
        m = _PRINTK.match(line)
        if m and needle in line:
            return float(m.group(1))
    return None


def static_busybox(arch: str, dest: Path) -> Path:
    """kharness's guest busybox (Debian's busybox-static), for vng's host-root initramfs."""
    base = build_base(BaseSpec(arch=arch))
    member = next(e for e in cpio.read(base.path.read_bytes()) if e.name == "bin/busybox")
    dest.write_bytes(member.data)
    dest.chmod(0o755)
    return dest


def minimal_root(arch: str, host_busybox: Path) -> Path:
    """A cached Debian tree of MINIMAL_ROOT for `arch`, with busybox's applets linked.

    The applets are listed by the host's busybox: the same Debian package
    and configuration as the root's, which may be another arch's and not run here.
    """
    debian = arches.preset(arch).debian
    applets = subprocess.run([str(host_busybox), "--list-full"], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()
    key = cache.key_of("vng-root", MINIMAL_LAYOUT, arch, MINIMAL_SUITE, DEFAULT_MIRROR, MINIMAL_ROOT, applets)

    def build(tmp: Path) -> None:
        root = tmp / "root"
        # extract: unpack only, no maintainer scripts, so a foreign arch needs no binfmt.
        subprocess.run(["mmdebstrap", "--variant=extract", f"--arch={debian}",
                        f"--include={','.join(MINIMAL_ROOT)}", MINIMAL_SUITE, str(root), DEFAULT_MIRROR],
                       check=True, capture_output=True, timeout=1800, stdin=subprocess.DEVNULL)
        for applet in applets:  # "sbin/poweroff": where the package's own links would be
            link = root / applet
            if not link.is_symlink() and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to("/bin/busybox")
        # No maintainer scripts ran: the accounts virtme-init reads are written here.
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\n")

    return cache.entry("bench-vng-root", key, build) / "root"


def vng_boot(argv: list[str], tmp: Path, log: Path) -> float:
    """Seconds from vng's start to its exit; raises VngFailed if `true` did not run."""
    env = {**os.environ, "PATH": f"{Path(argv[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # virtme-run
    t0 = time.monotonic()
    with log.open("w") as out:
        try:
            done = subprocess.run(argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=VNG_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise VngFailed(f"no exit in {VNG_TIMEOUT} s: {vng_failure(log.read_text(errors='replace'))}") from exc
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        raise VngFailed(f"exit {done.returncode}: {vng_failure(log.read_text(errors='replace'))}")
    return seconds


def kharness_once(name: str, tmp: Path) -> None:
    """The child's work: boot `name`, run `true`, power off; prints QEMU start -> command answered."""
    kernel = resolve(DEFAULT_KERNELS[name])
    client = keys.generate_client_key(tmp / "keys")
    host = keys.generate_guest_host_key(tmp / "keys")
    initrd, _ = initrd_for(kernel, [], tmp, client, host)
    spec = MachineSpec(arch=kernel.arch, kernel=kernel.image, initrd=initrd, cmdline=(), accel="tcg",
                       page_size=kernel.page_size)
    with QemuGuest(spec, Access(host.public_line, client.private_path), tmp / "console.log") as guest:
        guest.boot(KHARNESS_TIMEOUT)
        guest.run("true", timeout=30)
        seconds = time.monotonic() - guest.machine.started_at
        guest.poweroff()
    print(f"to-command {seconds:.3f}", flush=True)


def kharness_boot(name: str, tmp: Path) -> tuple[float, float]:
    """(QEMU start -> command answered, child process start -> exit), in seconds; `tmp` is emptied first."""
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    argv = [sys.executable, str(Path(__file__).resolve()), "--kharness-once", name, "--tmp", str(tmp)]
    t0 = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=KHARNESS_TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL)
    process = time.monotonic() - t0
    m = re.search(r"^to-command ([0-9.]+)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or m is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"kharness boot of {name} failed (exit {done.returncode}): {tail}")
    return float(m.group(1)), process


def measure(name: str, vng: Path, rounds: int) -> Figures:
    """One untimed boot of each (caches warm, consoles kept), then `rounds` alternating timed ones."""
    kernel = resolve(DEFAULT_KERNELS[name])
    fig = Figures()
    with tempfile.TemporaryDirectory(prefix="vng-bench-") as t:
        tmp = Path(t)
        host_busybox = static_busybox(host_arch(), tmp / "busybox")
        # vng looks for a static busybox on PATH first when native: the host's is Debian's dynamic one.
        busybox = host_busybox if kernel.arch == host_arch() else None
        roots = {r: None if r == "host" else minimal_root(kernel.arch, host_busybox) for r in vng_roots(kernel.arch)}
        log = tmp / "vng.log"
        for r, root in roots.items():
            vng_boot(vng_argv(vng, kernel.image, kernel.arch, root, busybox, verbose=True), tmp, log)
            fig.consoles[f"vng {r}"] = log.read_text(errors="replace")
        run = tmp / "kharness"
        kharness_boot(name, run)
        fig.consoles["kharness"] = (run / "console.log").read_text(errors="replace")
        for _ in range(rounds):
            for r, root in roots.items():
                argv = vng_argv(vng, kernel.image, kernel.arch, root, busybox)
                fig.vng.setdefault(r, []).append(vng_boot(argv, tmp, log))
            to_command, process = kharness_boot(name, run)
            fig.to_command.append(to_command)
            fig.process.append(process)
    return fig


def report(name: str, fig: Figures) -> None:
    k_cmd, k_proc = statistics.median(fig.to_command), statistics.median(fig.process)
    for root, times in fig.vng.items():
        v = statistics.median(times)
        verdict = "met" if k_proc / v <= 1.0 else "NOT met"
        print(f"{name:<22} {root:<8} {v:7.2f} {k_cmd:9.2f} {k_proc:10.2f} {k_cmd / v:8.2f} {k_proc / v:9.2f}"
              f"  goal <= 1.00 {verdict}")
    marks = []
    for who, console in fig.consoles.items():
        at = [printk_at(console, needle) for needle in ("Run /init as init process", "reboot: Power down")]
        marks.append(f"{who} {'/'.join('-' if x is None else f'{x:.1f}' for x in at)}")
    print(f"{'':<22} printk s at Run /init / Power down (first boot): {', '.join(marks)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kharness-once", metavar="KERNEL", help=argparse.SUPPRESS)  # the timed child
    ap.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("kernels", nargs="*", default=list(KERNELS))
    args = ap.parse_args()
    if args.kharness_once:
        kharness_once(args.kharness_once, args.tmp)
        return
    say("bench/vng_bench.py")  # the date the README quotes
    vng = find_vng(os.environ.get("PATH"), Path(sys.executable))
    if vng is None:
        print(f"vng_bench: vng (virtme-ng) not found on PATH or beside {sys.executable}; "
              f"install it with: {INSTALL}", file=sys.stderr)
        sys.exit(2)
    version = subprocess.run([str(vng), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"{version} ({vng}), TCG, {MEMORY_MIB} MiB, {CPUS} vCPUs; kharness s: QEMU start -> command answered,"
          f" and process start -> exit")
    print(f"{'kernel':<22} {'vng root':<8} {'vng s':>7} {'kh cmd s':>9} {'kh proc s':>10} {'cmd/vng':>8}"
          f" {'proc/vng':>9}  (medians of {args.rounds})")
    failed = False
    for name in args.kernels:
        try:
            fig = measure(name, vng, args.rounds)
        except VngFailed as exc:
            print(f"{name:<22} vng cannot boot it: {exc}")
            failed = True
            continue
        report(name, fig)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
