"""A kernel from a source tree, built to boot in a kharness guest without modules.

The kernel layer's one way to build (used by check, bisect and run). For
`git bisect run kharness check --tree .`: every commit is built out of
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

from harness import devices
from harness.arches import ArchBuild, preset
from harness.errors import InfraError, KernelFault, UsageError
from harness.kernel.kconfig import read_config
from harness.model import Arch

LOG_TAIL_LINES = 30
MAKE_TARGET_RE = re.compile(r"[a-z0-9_.-]*config")

# What every kharness guest needs, beyond the user's config and its devices'
# (each device kind's build options, harness/devices/). Dependencies are
# listed too: olddefconfig drops a symbol whose dependencies are off.
CORE_OPTIONS: tuple[str, ...] = (
    # init, busybox, dropbear and fio from a Debian userland in an uncompressed initramfs
    "BLK_DEV_INITRD", "BINFMT_ELF", "BINFMT_SCRIPT", "MULTIUSER", "SYSVIPC", "POSIX_TIMERS",
    "FUTEX", "EPOLL", "SIGNALFD", "TIMERFD", "EVENTFD", "SHMEM", "AIO", "IO_URING",
    "FILE_LOCKING", "ADVISE_SYSCALLS", "PRINTK", "BUG", "TTY", "UNIX98_PTYS",
    "PROC_FS", "PROC_SYSCTL", "SYSFS", "TMPFS", "DEVTMPFS", "DEVTMPFS_MOUNT",
    # the figures: /proc/slabinfo needs SLUB_DEBUG; swiotlb in debugfs; the
    # swiotlb_bounced tracepoint counted by a hist trigger
    "SLUB", "SLUB_DEBUG", "DEBUG_FS", "FTRACE", "HIST_TRIGGERS",
)
# Every source-built guest kernel: the core plus the devices every build has
# (the SSH NIC, entropy, virtio-blk and NVMe scratch disks).
GUEST_OPTIONS: tuple[str, ...] = tuple(dict.fromkeys((*CORE_OPTIONS, *devices.every_build_options())))


@dataclass(frozen=True)
class BuildRequest:
    tree: Path
    out: Path  # make O=; reused between builds
    arch: Arch
    kconfig: str  # a config file, or a make target (defconfig, tinyconfig, ...)
    jobs: int = os.cpu_count() or 1
    timeout: float = 3 * 3600.0
    devices: tuple[str, ...] = ()  # device kinds the cells need beyond every build's (e.g. usb-storage)


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
    arch = preset(req.arch)
    spec = arch.build
    tree = _check_tree(req.tree, spec)
    base = _base_config(req.kconfig)
    make = make_argv(tree, req.out, arch.name, req.jobs)
    wanted = options(req)
    req.out.mkdir(parents=True, exist_ok=True)
    started, cpu = time.monotonic(), _children_cpu()
    with log.open("w") as sink:
        if base is None:
            _make([*make, req.kconfig], sink, req.timeout, log)
        else:
            shutil.copyfile(base, req.out / ".config")
        with (req.out / ".config").open("a") as f:
            f.write("\n# kharness guest needs\n" + fragment(wanted))
        _make([*make, "olddefconfig"], sink, req.timeout, log)
        _check_options(req.out / ".config", wanted)
        _make([*make, spec.target], sink, req.timeout, log)
    image = req.out / spec.image
    if not image.is_file():
        raise BuildFailure(f"make {spec.target} left no {spec.image}", _tail(log))
    return Built(image, req.out / ".config", round(time.monotonic() - started, 1),
                 round(_children_cpu() - cpu, 1), log)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def options(req: BuildRequest) -> tuple[str, ...]:
    """Every option (=y) the guest needs: every build's, the cells' devices', the arch's machine's."""
    extra = (o for name in req.devices for o in devices.get(name).build_options)
    return tuple(dict.fromkeys((*GUEST_OPTIONS, *extra, *preset(req.arch).build.options)))


def fragment(wanted: tuple[str, ...]) -> str:
    """The options appended to the user's config; kconfig takes the last value given."""
    return "".join(f"CONFIG_{o}=y\n" for o in wanted)


def make_argv(tree: Path, out: Path, arch_name: Arch, jobs: int) -> list[str]:
    arch = preset(arch_name)
    spec = arch.build
    argv = ["make", "-C", str(tree), f"O={out.absolute()}", f"ARCH={spec.make_arch}", f"-j{max(1, jobs)}"]
    if platform.machine() != arch.host_machine:
        compiler = spec.cross_compile + "gcc"
        if shutil.which(compiler) is None:
            raise InfraError(f"no {compiler} to build an {arch.name} kernel on {platform.machine()}",
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


def _check_options(config: Path, wanted: tuple[str, ...]) -> None:
    values = read_config(config)
    missing = [o for o in wanted if values.get(o) != "y"]
    if missing:
        raise BuildFailure(f"this tree's Kconfig cannot give the guest {', '.join(missing)} (=y)",
                           "their dependencies are off or they do not exist in this version")


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])
