"""One QEMU guest lifetime: argv from plain values, launch, console, QMP, stop.

`QemuMachine` is a context manager (QEMU's python/qemu/machine habit): closing
it twice is harmless, it always ends with no QEMU process left, and the
console log is kept. QEMU dies with kharness even on `kill -9` of kharness:
the child asks the kernel for SIGKILL when its parent thread exits
(PR_SET_PDEATHSIG), so a machine must be started and closed by the same
thread. The death signal is set by util-linux's `setpriv --pdeathsig`
rather than a preexec_fn, which is unsafe with the threads of parallel cells.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from harness import atomic, devices, tmpdirs
from harness.arches import ArchPreset, preset
from harness.errors import GuestError, InfraError
from harness.machine import traffic

log = logging.getLogger(__name__)

PORT_TRIES = 5
MEMORY_DISKS_MIB = 4096  # scratch disks up to this total live in /dev/shm (tmpdirs)
CONSOLE_SCAN_BYTES = 64 * 1024 * 1024  # stop reading a console that floods beyond this
QEMU_LOG_BYTES = 64 * 1024  # of QEMU's stderr kept as qemu.log


@dataclass(frozen=True)
class Disk:
    """A throwaway scratch disk; the guest finds it by `id` (its serial)."""

    id: str
    kind: str  # a device kind of role "disk" (harness/devices/)
    size_mib: int = 256


# The traffic NIC's own user-mode network. `restrict=on`: the guest reaches
# nothing through it but the peers QEMU spawns per connection to PEER_ADDR
# (guestfwd cmd:, see harness/machine/traffic.py), so nothing listens on the host.
TRAFFIC_NET = "10.0.3.0/24"
TRAFFIC_GUEST = "10.0.3.15/24"
TRAFFIC_PEER = "10.0.3.100"
TRAFFIC_MAC = "52:54:00:6b:68:01"
SSH_MAC = "52:54:00:12:34:56"  # QEMU's default MAC, which the SSH NIC always had


@dataclass(frozen=True)
class Nic:
    """The traffic NIC of net workloads; the guest finds it by TRAFFIC_MAC."""

    id: str
    peers: tuple[tuple[str, int, str], ...] = ()  # (role, port on TRAFFIC_PEER, guestfwd cmd: text)
    kind: str = "virtio-net"  # a device kind of role "nic" (harness/devices/)


def traffic_env() -> str:
    """What a workload script needs to use the traffic NIC (its `KH_NET_<ID>`): key=value words."""
    ports = " ".join(f"{role}={port}" for role, port in traffic.PORTS)
    return f"mac={TRAFFIC_MAC} addr={TRAFFIC_GUEST} peer={TRAFFIC_PEER} {ports}"


@dataclass(frozen=True)
class MachineSpec:
    arch: str
    kernel: Path
    initrd: Path
    cmdline: tuple[str, ...]
    memory_mib: int = 1024
    cpus: int = 2
    accel: str = "tcg"
    disks: tuple[Disk, ...] = ()
    iommu_platform: bool = False  # virtio devices (not the SSH NIC) use the DMA API
    dtb: Path | None = None  # arm64: a device tree to boot instead of QEMU's own
    nics: tuple[Nic, ...] = ()  # traffic NICs besides the SSH one (at most one today)
    iommu: str = "none"  # a device kind of role "iommu" (harness/devices/) in front of PCI
    page_size: int | None = None  # the kernel's, where it decides the CPU model (arm64 16K)
    extra_args: tuple[str, ...] = field(default=())


def free_port() -> int:
    """A port free on 127.0.0.1 now (QEMU may still lose it; start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def device_args(disks: tuple[Disk, ...], scratch_dir: Path, iommu_platform: bool) -> list[str]:
    """QEMU arguments for the scratch disks, each with its own image file."""
    args: list[str] = []
    controllers: set[str] = set()
    for d in disks:
        kind = devices.get(d.kind)
        img = scratch_dir / f"{d.id}.img"
        with img.open("wb") as f:
            f.truncate(d.size_mib << 20)
        args += ["-drive", f"if=none,id=drv-{d.id},file={img},format=raw,cache=unsafe,aio=threads"]
        if kind.controller and kind.controller not in controllers:
            args += ["-device", kind.controller]
            controllers.add(kind.controller)
        args += ["-device", kind.device_arg(iommu_platform, drive=f"drv-{d.id}", id=d.id)]
    return args


def nic_args(nics: tuple[Nic, ...], iommu_platform: bool, peers: bool = True) -> list[str]:
    """-netdev/-device pairs of the traffic NICs (peers=False: the NICs without their peers)."""
    if len(nics) > 1:
        raise InfraError(f"{len(nics)} traffic NICs; one is supported (they would share {TRAFFIC_NET})")
    args: list[str] = []
    for nic in nics:
        fwd = "".join(f",guestfwd=tcp:{TRAFFIC_PEER}:{port}-cmd:{cmd}" for _, port, cmd in nic.peers)
        args += ["-netdev", f"user,id=nic-{nic.id},net={TRAFFIC_NET},ipv6=off,restrict=on"
                 + (fwd if peers else "")]
        kind = devices.get(nic.kind)
        args += ["-device", kind.device_arg(iommu_platform, netdev=f"nic-{nic.id}", mac=TRAFFIC_MAC, id=nic.id)]
    return args


def machine_arg(spec: MachineSpec, arch: ArchPreset) -> str:
    """-M: the arch's machine, with the IOMMU's machine option (virt's iommu=smmuv3) if it has one."""
    iommu = devices.get(spec.iommu) if spec.iommu != "none" else None
    return ",".join(p for p in (arch.machine, iommu.machine_option if iommu else "") if p)


def iommu_args(spec: MachineSpec) -> list[str]:
    """The IOMMU's own -device, if it is one (virtio-iommu-pci, intel-iommu)."""
    if spec.iommu == "none" or not (qemu := devices.get(spec.iommu).qemu):
        return []
    return ["-device", qemu]


def kernel_words(spec: MachineSpec) -> tuple[str, ...]:
    """The spec's command line plus what its IOMMU needs (intel_iommu=on)."""
    extra = devices.get(spec.iommu).cmdline if spec.iommu != "none" else ()
    return (*spec.cmdline, *(w for w in extra if w not in spec.cmdline))


def _every_guest_devices() -> list[str]:
    """The SSH NIC (on netdev net0, legacy virtio: it never needs the DMA API) and the entropy source."""
    args: list[str] = []
    for name in devices.EVERY_GUEST:
        args += ["-device", devices.get(name).device_arg(False, netdev="net0", mac=SSH_MAC, id=name)]
    return args


def dumpdtb_argv(spec: MachineSpec, arch: ArchPreset, out: Path, scratch_dir: Path) -> list[str]:
    """QEMU arguments that write `spec`'s device tree to `out` and exit (arm64 virt).

    The board, CPU, RAM and devices are the boot's own, so the tree is the one
    the boot would get; kernel, console and the SSH forward do not shape it and
    are left out (QEMU fills /chosen at boot, for a -dtb too).
    """
    cpu = arch.cpu(spec.accel, spec.page_size)
    return [
        arch.qemu, "-accel", spec.accel, "-M", f"{machine_arg(spec, arch)},dumpdtb={out}", "-cpu", cpu,
        "-m", str(spec.memory_mib), "-smp", str(spec.cpus), "-nodefaults", "-display", "none",
        *iommu_args(spec), "-netdev", "user,id=net0,restrict=on", *_every_guest_devices(),
        *device_args(spec.disks, scratch_dir, spec.iommu_platform),
        *nic_args(spec.nics, spec.iommu_platform, peers=False),
        *arch.extra_args, *spec.extra_args,
    ]


def build_argv(spec: MachineSpec, arch: ArchPreset, console: Path, qmp: Path, ssh_port: int,
               scratch_dir: Path) -> list[str]:
    """The whole QEMU command line for `spec` (recorded verbatim in cell.json)."""
    cpu = arch.cpu(spec.accel, spec.page_size)
    argv = [
        arch.qemu, "-accel", spec.accel, "-M", machine_arg(spec, arch), "-cpu", cpu,
        "-m", str(spec.memory_mib), "-smp", str(spec.cpus),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-serial", f"file:{console}",
        "-qmp", f"unix:{qmp},server=on,wait=off",
        "-kernel", str(spec.kernel), "-initrd", str(spec.initrd),
        "-append", " ".join((*arch.cmdline, "panic=-1", *kernel_words(spec))),
        # The IOMMU first: intel-iommu must come before the devices it translates.
        *iommu_args(spec),
        # SSH forward on loopback only; the guest's address is fixed by init.
        "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        *_every_guest_devices(),
    ]
    if spec.dtb is not None:
        argv += ["-dtb", str(spec.dtb)]
    argv += device_args(spec.disks, scratch_dir, spec.iommu_platform)
    argv += nic_args(spec.nics, spec.iommu_platform)
    argv += [*arch.extra_args, *spec.extra_args]
    return argv


def console_tail(path: Path, lines: int = 40) -> str:
    """A console log's last `lines` lines, read from its end (a flooding guest writes gigabytes); "" if unreadable."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 16384))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


class QemuMachine:
    """A running guest. Use as a context manager; `close()` is idempotent."""

    def __init__(self, spec: MachineSpec, console_log: Path) -> None:
        self.spec = spec
        self.arch = preset(spec.arch)
        self.console_log = console_log
        self.argv: list[str] = []
        self.ssh_port = 0
        self.started_at = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._disks: Path | None = None
        self._scan_offset = 0

    def __enter__(self) -> QemuMachine:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if shutil.which(self.arch.qemu) is None:
            raise InfraError(f"{self.arch.qemu} not found",
                             f"install {self.arch.qemu_package} (./setup.sh does)")
        # Unix socket paths are limited to 108 bytes: keep them in a short temp dir.
        self._tmp = tmpdirs.make("qemu")
        small = sum(d.size_mib for d in self.spec.disks) <= MEMORY_DISKS_MIB
        self._disks = tmpdirs.make("disks", in_memory=small)
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(PORT_TRIES):
            self.ssh_port = free_port()
            self._launch()
            if self._survived_startup():
                return
            err = self._stderr_text()
            if "host forwarding" not in err or attempt == PORT_TRIES - 1:
                self.close()
                raise InfraError(f"QEMU failed to start: {err.strip()[-300:] or 'no message'}",
                                 "see the QEMU argv in cell.json")
            log.info("SSH port %d taken, retrying with another", self.ssh_port)
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        assert self._tmp is not None
        self.console_log.write_bytes(b"")
        self._scan_offset = 0
        qmp = self._tmp / "qmp.sock"
        qmp.unlink(missing_ok=True)
        assert self._disks is not None
        self.argv = build_argv(self.spec, self.arch, self.console_log, qmp, self.ssh_port, self._disks)
        stderr = (self._tmp / "qemu.stderr").open("wb")
        self.started_at = time.monotonic()
        self._proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "--", *self.argv],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, close_fds=True,
        )
        stderr.close()

    def _survived_startup(self) -> bool:
        """QEMU reports argument and hostfwd errors at once; give it a moment."""
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            time.sleep(0.02)
        return True

    def _stderr_text(self, limit: int = 4096) -> str:
        if self._tmp is None:
            return ""
        try:
            with (self._tmp / "qemu.stderr").open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
                return f.read(limit).decode(errors="replace")
        except OSError:
            return ""

    def _keep_log(self) -> None:
        """QEMU's stderr, when it said anything, beside the console (`qemu.log`), its tail bounded.

        A guest that dies late (an assertion in a device model, a host
        signal) is explained only here; it is gone with the temp dir otherwise.
        """
        text = self._stderr_text(QEMU_LOG_BYTES)
        if text.strip():
            try:
                atomic.write_text(self.console_log.with_name("qemu.log"), text)
            except OSError as exc:
                log.warning("could not keep QEMU's log: %s", exc)

    def console_tail(self, lines: int = 40) -> str:
        return console_tail(self.console_log, lines)

    def wait_for_console(self, marker: bytes, timeout: float, give_up: bytes = b"") -> str:
        """Wait until a console line contains `marker`; return that line.

        Raises GuestError if QEMU exits, the timeout passes, or a line with
        `give_up` (init's error marker) comes first.
        """
        deadline = time.monotonic() + timeout
        failed_at = self._scan_offset
        while True:
            line, self._scan_offset = self._scan(marker, self._scan_offset)
            if line is not None:
                return line
            if give_up:
                failed, failed_at = self._scan(give_up, failed_at)
                if failed is not None:
                    raise GuestError(f"guest init gave up: {failed[:300]}", "see console.log",
                                     console_tail=self.console_tail())
            if not self.running():
                raise GuestError(f"QEMU exited ({self._exit_text()}) before the guest was ready",
                                 console_tail=self.console_tail())
            if time.monotonic() > deadline:
                raise GuestError(f"guest not ready after {timeout:.0f}s",
                                 "raise timeouts.boot or read console.log",
                                 console_tail=self.console_tail())
            time.sleep(0.01)  # a read of the console's new bytes: cheap, and READY is seen at once

    def _scan(self, marker: bytes, offset: int) -> tuple[str | None, int]:
        """The first complete console line with `marker` at or after `offset`, and where to look next."""
        try:
            with self.console_log.open("rb") as f:
                start = max(0, offset - len(marker))
                if start > CONSOLE_SCAN_BYTES:
                    return None, offset
                f.seek(start)
                data = f.read(CONSOLE_SCAN_BYTES - start)
        except OSError:
            return None, offset
        idx = data.find(marker)
        if idx < 0:
            return None, start + len(data)
        end = data.find(b"\n", idx)
        if end < 0:
            return None, start + idx  # the line is not complete yet
        begin = data.rfind(b"\n", 0, idx) + 1
        return data[begin:end].decode(errors="replace").strip(), start + end

    def _exit_text(self) -> str:
        rc = self._proc.returncode if self._proc else None
        if rc is not None and rc < 0:
            return f"killed by signal {-rc}"
        return f"exit code {rc}"

    def wait_exit(self, timeout: float) -> bool:
        """Wait for QEMU to end by itself (guest poweroff); True if it did."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def quit(self) -> None:
        """Ask QEMU to quit over QMP (a hard power-off of the guest)."""
        if not self.running() or self._tmp is None:
            return
        from qemu.qmp.legacy import QEMUMonitorProtocol

        qmp = QEMUMonitorProtocol(str(self._tmp / "qmp.sock"))
        try:
            qmp.connect()
            qmp.cmd("quit")
        except Exception as exc:  # QMP is best effort; kill() follows
            log.debug("QMP quit failed: %s", exc)
        finally:
            try:
                qmp.close()
            except Exception as exc:
                log.debug("QMP close failed: %s", exc)

    def close(self) -> None:
        """Soft stop (QMP quit), then SIGKILL; keep the console and QEMU's own log; remove temp files."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self.quit()
                if not self.wait_exit(3.0):
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
            self._keep_log()
        for tmp in (self._tmp, self._disks):
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        self._tmp = self._disks = None
