"""A kernel from a source tree, built to boot in a kharness guest without modules.

The kernel layer's one way to run make (used by check directly, and through
harness/kernel/source.py by run, ab and bisect). For
`git bisect run kharness check --tree .`: every commit is built out of
tree (make O=...), from the config the user names (a file, or a make target
such as defconfig or tinyconfig) plus the options a kharness guest needs,
all as =y so no modules have to be found, packed and loaded. The same
output directory is reused from one commit to the next, so make rebuilds
only what changed.

A tree that does not build, or whose Kconfig cannot give the guest what it
needs, is the code under test failing (`BuildFailure`, a KernelFault); a
missing compiler is the host's problem (InfraError). make reports where it
is (phase, target, its last kbuild line) to a callback on every line, and
stops, with every compiler it started, when asked.
"""

from __future__ import annotations

import contextlib
import os
import platform
import queue
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness import devices
from harness.arches import ArchBuild, preset
from harness.errors import EXIT_INTERRUPTED, InfraError, KernelFault, KharnessError, UsageError
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
    fragments: tuple[Path, ...] = ()  # config fragments merged over the kconfig, in order


@dataclass(frozen=True)
class Built:
    image: Path
    config: Path
    seconds: float  # wall clock
    cpu_seconds: float  # of make and the compilers: what the build costs on an idle host
    log: Path
    compiled: int = 0  # objects make compiled (CC lines): about 1 for a one-file patch on a warm tree


@dataclass(frozen=True)
class Status:
    """Where a build is, for the person watching: reported on every line make prints."""

    phase: str  # configure, compile, link, image
    target: str  # the make target running (olddefconfig, bzImage)
    step: str  # make's last kbuild line, e.g. "CC kernel/dma/swiotlb.o"
    compiled: int  # objects compiled so far by this make


Report = Callable[[Status], None]
Stopping = Callable[[], bool]


class BuildFailure(KernelFault):
    """The tree did not build, or its Kconfig cannot give the guest what it needs."""


class BuildInterrupted(KharnessError):
    """Ctrl-C or SIGTERM stopped a build (make and its compilers are gone); nothing is cached."""

    exit_code = EXIT_INTERRUPTED


def build(req: BuildRequest, log: Path, report: Report | None = None, stop: Stopping | None = None) -> Built:
    """Configure and build `req.tree` into `req.out`; the make output goes to `log`."""
    started, cpu = time.monotonic(), _children_cpu()
    with log.open("w") as sink:
        configure(req, sink, log, report, stop)
        return make_image(req, sink, log, report, stop, started, cpu)


def configure(req: BuildRequest, sink: IO[str], log: Path, report: Report | None = None,
              stop: Stopping | None = None) -> Path:
    """The resolved .config in `req.out`: the kconfig, its fragments, the guest's options, olddefconfig."""
    arch = preset(req.arch)
    tree = _check_tree(req.tree, arch.build)
    base = _base_config(req.kconfig)
    make = make_argv(tree, req.out, arch.name, req.jobs)
    wanted = options(req)
    req.out.mkdir(parents=True, exist_ok=True)
    if base is None:
        _make([*make, req.kconfig], sink, req.timeout, log, report, stop)
    else:
        shutil.copyfile(base, req.out / ".config")
    with (req.out / ".config").open("a") as f:
        for frag in req.fragments:
            f.write(f"\n# fragment {frag.name}\n" + _read_fragment(frag))
        f.write("\n# kharness guest needs\n" + fragment(wanted))
    _make([*make, "olddefconfig"], sink, req.timeout, log, report, stop)
    _check_options(req.out / ".config", wanted)
    return req.out / ".config"


def make_image(req: BuildRequest, sink: IO[str], log: Path, report: Report | None = None,
               stop: Stopping | None = None, started: float | None = None, cpu: float | None = None) -> Built:
    """make the image target in a configured `req.out`."""
    started = time.monotonic() if started is None else started
    cpu = _children_cpu() if cpu is None else cpu
    spec = preset(req.arch).build
    make = make_argv(_check_tree(req.tree, spec), req.out, req.arch, req.jobs)
    compiled = _make([*make, spec.target], sink, req.timeout, log, report, stop)
    image = req.out / spec.image
    if not image.is_file():
        raise BuildFailure(f"make {spec.target} left no {spec.image}", _tail(log))
    return Built(image, req.out / ".config", round(time.monotonic() - started, 1),
                 round(_children_cpu() - cpu, 1), log, compiled)


def _read_fragment(path: Path) -> str:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config fragment {path} ({exc})", "check fragments:") from exc
    return text if text.endswith("\n") else text + "\n"


@dataclass(frozen=True)
class Toolchain:
    """The compiler and linker an arch's build uses, by their own version lines."""

    compiler: str  # e.g. "gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
    linker: str  # e.g. "GNU ld (GNU Binutils for Debian) 2.40"
    cross_compile: str  # CROSS_COMPILE= ("" for a native build)


_TOOLCHAINS: dict[Arch, Toolchain] = {}


def toolchain(arch_name: Arch) -> Toolchain:
    """What builds `arch_name` here; a missing cross compiler is the host's (InfraError, with the apt line)."""
    hit = _TOOLCHAINS.get(arch_name)
    if hit is not None:
        return hit
    arch = preset(arch_name)
    spec = arch.build
    cross = spec.cross_compile if platform.machine() != arch.host_machine else ""
    if shutil.which(cross + "gcc") is None:
        fix = f"apt-get install {spec.cross_package}" if cross else "apt-get install gcc make"
        raise InfraError(f"no {cross}gcc to build an {arch.name} kernel on {platform.machine()}", fix)
    found = Toolchain(_version(cross + "gcc"), _version(cross + "ld"), cross)
    _TOOLCHAINS[arch_name] = found
    return found


def _version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0].strip() if out else ""


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


# kbuild's short lines: "  CC      kernel/dma/swiotlb.o", "  LD      vmlinux"
_KBUILD_LINE = re.compile(r"^  ([A-Z][A-Z0-9_-]{1,11}) +(\S.*)$")
STOP_GRACE = 5.0  # seconds from SIGTERM to SIGKILL for make and its compilers


def _phase(current: str, tag: str, what: str) -> str:
    """compile until vmlinux is linked, then link, then the boot image."""
    if tag == "LD" and what.startswith("vmlinux"):
        return "link"
    if current in ("link", "image") and "/boot/" in what:
        return "image"
    return current


def _make(argv: list[str], sink: IO[str], timeout: float, log: Path, report: Report | None = None,
          stop: Stopping | None = None) -> int:
    """Run one make, its output into `sink`; returns how many objects it compiled.

    make runs in a session of its own, so that stopping it (Ctrl-C, SIGTERM,
    the timeout) reaches every compiler it started; setpriv's death signal
    ends it if kharness itself is killed.
    """
    target = argv[-1]
    sink.write(f"$ {' '.join(argv)}\n")
    sink.flush()
    prefix = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
    lines: queue.Queue[str | None] = queue.Queue()
    proc = subprocess.Popen([*prefix, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"},
                            start_new_session=True, text=True, errors="replace", bufsize=1)
    reader = threading.Thread(target=_pump, args=(proc, lines), daemon=True, name="kharness-make-output")
    reader.start()
    deadline = time.monotonic() + timeout
    phase, compiled, step = "configure" if MAKE_TARGET_RE.fullmatch(target) else "compile", 0, ""
    try:
        while True:
            if stop is not None and stop():
                raise BuildInterrupted(f"make {target} stopped", "run the same command again: the build "
                                       "continues where it stopped")
            if time.monotonic() > deadline:
                raise BuildFailure(f"make {target} took more than {timeout:.0f} s", _tail(log))
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            sink.write(line)
            m = _KBUILD_LINE.match(line.rstrip("\n"))
            if m:
                tag, what = m.group(1), m.group(2).strip()
                compiled += int(tag == "CC")
                phase = _phase(phase, tag, what)
                step = f"{tag} {what}"
            if report is not None:
                report(Status(phase, target, step, compiled))
        rc = proc.wait()
    except BaseException:
        _kill(proc)
        raise
    finally:
        sink.flush()
    if rc != 0:
        raise BuildFailure(f"make {target} exited with {rc}", _tail(log))
    return compiled


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def _kill(proc: subprocess.Popen[str]) -> None:
    """make's whole session: SIGTERM, then SIGKILL after STOP_GRACE."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, STOP_GRACE)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


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
