"""A kernel from a source tree, built to boot in a kharness guest without modules.

For `git bisect run kharness check --tree .`: every commit is built out of
tree (make O=...), from the config the user names (a file, or a make target
such as defconfig or tinyconfig) plus the options a kharness guest needs,
all as =y so no modules have to be found, packed and loaded. The same
output directory is reused from one commit to the next, so make rebuilds
only what changed.

A tree that does not build, or whose Kconfig cannot give the guest what it
needs, is the code under test failing (`BuildFailure`, a KernelFault); a
missing compiler is the host's problem (InfraError).
"""

from __future__ import annotations

import os
import platform
import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.errors import InfraError, KernelFault, UsageError
from harness.kernel.kconfig import read_config
from harness.model import Arch

LOG_TAIL_LINES = 30
MAKE_TARGET_RE = re.compile(r"[a-z0-9_.-]*config")

# What every kharness guest needs, beyond the user's config. Dependencies are
# listed too: olddefconfig drops a symbol whose dependencies are off.
GUEST_OPTIONS: tuple[str, ...] = (
    # init, busybox, dropbear and fio from a Debian userland in an uncompressed initramfs
    "BLK_DEV_INITRD", "BINFMT_ELF", "BINFMT_SCRIPT", "MULTIUSER", "SYSVIPC", "POSIX_TIMERS",
    "FUTEX", "EPOLL", "SIGNALFD", "TIMERFD", "EVENTFD", "SHMEM", "AIO", "IO_URING",
    "FILE_LOCKING", "ADVISE_SYSCALLS", "PRINTK", "BUG", "TTY", "UNIX98_PTYS",
    "PROC_FS", "PROC_SYSCTL", "SYSFS", "TMPFS", "DEVTMPFS", "DEVTMPFS_MOUNT",
    # SSH over QEMU user networking on virtio-net
    "NET", "INET", "UNIX", "NETDEVICES", "NET_CORE",
    "PCI", "PCI_MSI", "VIRTIO_MENU", "VIRTIO", "VIRTIO_PCI", "VIRTIO_NET",
    # virtio-rng: without entropy dropbear waits for the crng under TCG
    "HW_RANDOM", "HW_RANDOM_VIRTIO",
    # the workloads' scratch disks
    "BLOCK", "BLK_DEV", "VIRTIO_BLK", "BLK_DEV_NVME",
    # the figures: /proc/slabinfo needs SLUB_DEBUG; swiotlb in debugfs; the
    # swiotlb_bounced tracepoint counted by a hist trigger
    "SLUB", "SLUB_DEBUG", "DEBUG_FS", "FTRACE", "HIST_TRIGGERS",
)


@dataclass(frozen=True)
class ArchBuild:
    """How to build for one guest arch (per-arch knowledge as data)."""

    arch: Arch
    make_arch: str  # ARCH=
    src_arch: str  # its directory under arch/
    target: str  # the image make target
    image: str  # where it lands in the output directory
    host_machine: str  # platform.machine() of a host that builds natively
    cross_compile: str  # CROSS_COMPILE= elsewhere (Debian's cross toolchain)
    cross_package: str  # the Debian package that has it
    options: tuple[str, ...]  # the serial console and PCI host of QEMU's machine


ARCH_BUILDS: dict[str, ArchBuild] = {
    "x86_64": ArchBuild("x86_64", "x86_64", "x86", "bzImage", "arch/x86/boot/bzImage", "x86_64",
                        "x86_64-linux-gnu-", "gcc-x86-64-linux-gnu",
                        ("64BIT", "SERIAL_8250", "SERIAL_8250_CONSOLE")),
    # QEMU 7.2 boots a plain arm64 Image, not the EFI zboot image.
    "arm64": ArchBuild("arm64", "arm64", "arm64", "Image", "arch/arm64/boot/Image", "aarch64",
                       "aarch64-linux-gnu-", "gcc-aarch64-linux-gnu",
                       ("SERIAL_AMBA_PL011", "SERIAL_AMBA_PL011_CONSOLE", "PCI_HOST_GENERIC")),
}


@dataclass(frozen=True)
class BuildRequest:
    tree: Path
    out: Path  # make O=; reused between builds
    arch: Arch
    kconfig: str  # a config file, or a make target (defconfig, tinyconfig, ...)
    jobs: int = os.cpu_count() or 1
    timeout: float = 3 * 3600.0


@dataclass(frozen=True)
class Built:
    image: Path
    config: Path
    seconds: float  # wall clock
    cpu_seconds: float  # of make and the compilers: what the build costs on an idle host
    log: Path


class BuildFailure(KernelFault):
    """The tree did not build, or its Kconfig cannot give the guest what it needs."""


def build(req: BuildRequest, log: Path) -> Built:
    """Configure and build `req.tree` into `req.out`; the make output goes to `log`."""
    spec = ARCH_BUILDS[req.arch]
    tree = _check_tree(req.tree, spec)
    base = _base_config(req.kconfig)
    make = make_argv(tree, req.out, spec, req.jobs)
    req.out.mkdir(parents=True, exist_ok=True)
    started, cpu = time.monotonic(), _children_cpu()
    with log.open("w") as sink:
        if base is None:
            _make([*make, req.kconfig], sink, req.timeout, log)
        else:
            shutil.copyfile(base, req.out / ".config")
        with (req.out / ".config").open("a") as f:
            f.write("\n# kharness guest needs\n" + fragment(spec))
        _make([*make, "olddefconfig"], sink, req.timeout, log)
        _check_options(req.out / ".config", spec)
        _make([*make, spec.target], sink, req.timeout, log)
    image = req.out / spec.image
    if not image.is_file():
        raise BuildFailure(f"make {spec.target} left no {spec.image}", _tail(log))
    return Built(image, req.out / ".config", round(time.monotonic() - started, 1),
                 round(_children_cpu() - cpu, 1), log)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fragment(spec: ArchBuild) -> str:
    """The options appended to the user's config; kconfig takes the last value given."""
    return "".join(f"CONFIG_{o}=y\n" for o in (*GUEST_OPTIONS, *spec.options))


def make_argv(tree: Path, out: Path, spec: ArchBuild, jobs: int) -> list[str]:
    argv = ["make", "-C", str(tree), f"O={out.absolute()}", f"ARCH={spec.make_arch}", f"-j{max(1, jobs)}"]
    if platform.machine() != spec.host_machine:
        compiler = spec.cross_compile + "gcc"
        if shutil.which(compiler) is None:
            raise InfraError(f"no {compiler} to build an {spec.arch} kernel on {platform.machine()}",
                             f"apt-get install {spec.cross_package}")
        argv.append(f"CROSS_COMPILE={spec.cross_compile}")
    return argv


def _check_tree(tree: Path, spec: ArchBuild) -> Path:
    tree = tree.expanduser().absolute()
    if not ((tree / "Makefile").is_file() and (tree / "Kconfig").is_file()
            and (tree / "arch" / spec.src_arch).is_dir()):
        raise UsageError(f"{tree} is not a Linux source tree with arch/{spec.src_arch}",
                         "give --tree the top of a kernel tree")
    if shutil.which("make") is None:
        raise InfraError("no make on this host", "apt-get install make gcc flex bison bc libelf-dev libssl-dev")
    return tree


def _base_config(kconfig: str) -> Path | None:
    """A config file to start from, or None for a make target."""
    path = Path(kconfig).expanduser()
    if path.is_file():
        return path.absolute()
    if MAKE_TARGET_RE.fullmatch(kconfig) and os.sep not in kconfig:
        return None
    raise UsageError(f"--kconfig {kconfig!r} is neither a file nor a make target",
                     "give a .config file, or a target such as defconfig or tinyconfig")


def _make(argv: list[str], sink: IO[str], timeout: float, log: Path) -> None:
    sink.write(f"$ {' '.join(argv)}\n")
    sink.flush()
    try:
        res = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "LC_ALL": "C"},
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildFailure(f"make {argv[-1]} took more than {timeout:.0f} s", _tail(log)) from exc
    if res.returncode != 0:
        raise BuildFailure(f"make {argv[-1]} exited with {res.returncode}", _tail(log))


def _check_options(config: Path, spec: ArchBuild) -> None:
    values = read_config(config)
    missing = [o for o in (*GUEST_OPTIONS, *spec.options) if values.get(o) != "y"]
    if missing:
        raise BuildFailure(f"this tree's Kconfig cannot give the guest {', '.join(missing)} (=y)",
                           "their dependencies are off or they do not exist in this version")


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])
