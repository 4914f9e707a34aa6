"""The boot contract: a booted guest that runs commands, and how a boot hands it over.

`Guest` is what the runner talks to: run a command (bounded output), run
several in one round trip (run_steps), tell whether it is alive, describe itself for cell.json, close. `BootFn` is how a
runner gets one: a context manager that boots a cell and yields `Booted`.
`QemuGuest` is the real backend (QEMU + SSH, booted by harness.run.boot); the
tests' fake guest (tests/fakes/guest.py) plugs in through the same BootFn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Protocol

from harness.collect import console as console_scan
from harness.errors import GuestError, KernelFault
from harness.machine.qemu import MachineSpec, QemuMachine
from harness.machine.ssh import DEFAULT_OUTPUT_LIMIT, CommandResult, GuestShell, Step
from harness.model import Cell

log = logging.getLogger(__name__)

READY_MARKER = b"KHARNESS-READY"
INIT_ERROR_MARKER = b"KHARNESS-INIT-ERROR"  # init gave up: no READY is coming
LOST_GUEST_GRACE = 2.0  # seconds for QEMU to exit after the guest was lost


class Guest(Protocol):
    console_log: Path

    def run(self, command: str, timeout: float, stdin: bytes = b"",
            env: dict[str, str] | None = None, limit: int = DEFAULT_OUTPUT_LIMIT) -> CommandResult: ...

    def run_steps(self, steps: Sequence[Step]) -> list[CommandResult]: ...

    def alive(self) -> bool: ...

    def describe(self) -> dict[str, object]: ...

    def close(self) -> None: ...


def run_one_by_one(guest: Guest, steps: Sequence[Step]) -> list[CommandResult]:
    """run_steps() as one run() per step, with the same results (a fake's run_steps).

    A step that raises ends the list with a result whose `lost` holds the
    error; a step cut off by its deadline ends it too, as one round trip would.
    """
    results: list[CommandResult] = []
    for st in steps:
        try:
            res = guest.run(st.command, st.timeout, env=dict(st.env), limit=st.limit)
        except (GuestError, KernelFault) as exc:
            results.append(CommandResult(st.command, -1, b"", b"", 0.0, lost=exc))
            break
        results.append(res)
        if res.timed_out:
            break
    return results


@dataclass
class Booted:
    """What a boot function hands back: the guest plus facts for cell.json."""

    guest: Guest
    kernel: dict[str, object] = field(default_factory=dict)
    boot_seconds: float = 0.0


BootFn = Callable[[Cell, Path], AbstractContextManager[Booted]]


@dataclass(frozen=True)
class Access:
    """What the host needs to log in: the pinned host key and its own key."""

    host_key_line: str
    client_key: Path


def scan_console(path: Path, limit: int = console_scan.MAX_BYTES) -> list[console_scan.ConsoleHit]:
    """The console log's kernel incidents; a log over `limit` is read as its first and last limit/2."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if size <= limit:
            return console_scan.scan(f.read())
        head = f.read(limit // 2)
        f.seek(size - limit // 2)
        return console_scan.scan_ends(head, f.read())


def console_fault(console_log: Path) -> KernelFault | None:
    """The kernel's fault a lost guest's console shows (panic, oops, BUG, ...), if any.

    Every backend asks this when it loses its guest, so a guest lost with a
    kernel message is the kernel's failure, and one lost without is ours.
    """
    hits = scan_console(console_log) if console_log.is_file() else []
    if not hits:
        return None
    first = hits[0]
    return KernelFault(f"the kernel failed: {first.title} (console line {first.line})", first.excerpt)


class QemuGuest:
    """A booted QEMU guest reachable over SSH. `boot()` returns only when it is."""

    def __init__(self, spec: MachineSpec, access: Access, console_log: Path) -> None:
        self.machine = QemuMachine(spec, console_log)
        self.console_log = console_log
        self.access = access
        self.shell: GuestShell | None = None
        self.boot_seconds = 0.0
        self.ready_line = ""

    def __enter__(self) -> QemuGuest:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def boot(self, timeout: float) -> None:
        """Start QEMU, wait for init's ready marker, connect over SSH.

        A guest that never gets ready raises GuestError, or KernelFault when
        its console says the kernel failed (a panic while booting).
        """
        self.machine.start()
        try:
            self.ready_line = self.machine.wait_for_console(READY_MARKER, timeout, INIT_ERROR_MARKER)
            left = timeout - (time.monotonic() - self.machine.started_at)
            self.shell = GuestShell(self.machine.ssh_port, self.access.host_key_line, self.access.client_key)
            self.shell.connect(max(5.0, left))
        except GuestError as exc:
            exc.console_tail = exc.console_tail or self.machine.console_tail()
            self._raise_fault(exc)
            raise
        self.boot_seconds = time.monotonic() - self.machine.started_at

    def run(self, command: str, timeout: float, stdin: bytes = b"",
            env: dict[str, str] | None = None, limit: int = DEFAULT_OUTPUT_LIMIT) -> CommandResult:
        """Run `command`; KernelFault if the guest is lost and its console shows a kernel fault."""
        if self.shell is None:
            raise GuestError("the guest is not booted")
        try:
            if not self.machine.running():
                raise GuestError("QEMU is gone", console_tail=self.machine.console_tail())
            res = self.shell.run(command, timeout, stdin=stdin, env=env, limit=limit)
        except GuestError as exc:
            self._raise_fault(exc)
            raise
        if res.exit_status == -1 and not res.timed_out:  # the channel closed under the command
            self._raise_fault(GuestError("the guest went away during a command"))
        return res

    def run_steps(self, steps: Sequence[Step]) -> list[CommandResult]:
        """Run `steps` in one round trip (GuestShell.run_steps); a step lost with a kernel
        fault on the console carries the KernelFault in its result's `lost`."""
        if self.shell is None:
            raise GuestError("the guest is not booted")
        try:
            if not self.machine.running():
                raise GuestError("QEMU is gone", console_tail=self.machine.console_tail())
            results = self.shell.run_steps(steps)
        except GuestError as exc:
            self._raise_fault(exc)
            raise
        last = results[-1] if results else None
        if last is not None and last.exit_status == -1 and not last.timed_out:  # the channel closed under it
            try:
                self._raise_fault(GuestError("the guest went away during a command"))
            except KernelFault as fault:
                results[-1] = replace(last, lost=fault)
        return results

    def _raise_fault(self, lost: GuestError) -> None:
        """The guest is lost: if its console shows why, that is the kernel's fault, raised as such.

        QEMU may still be writing the console of a guest that just panicked
        (panic=-1 and -no-reboot end it), so give it a moment to exit first.
        """
        self.machine.wait_exit(LOST_GUEST_GRACE)
        fault = console_fault(self.console_log)
        if fault is not None:
            raise fault from lost

    def alive(self) -> bool:
        return self.machine.running()

    def describe(self) -> dict[str, object]:
        return {"argv": self.machine.argv, "accelerator": self.machine.spec.accel,
                "ssh_port": self.machine.ssh_port, "pid": self.machine.pid}

    def poweroff(self, timeout: float = 10.0) -> None:
        """Clean power-off from inside; QMP quit and kill follow in close()."""
        if self.shell is not None and self.machine.running():
            try:
                self.shell.run("sync; poweroff -f", timeout=5.0)
            except GuestError as exc:
                log.debug("poweroff over SSH failed: %s", exc)
            self.machine.wait_exit(timeout)

    def close(self) -> None:
        if self.shell is not None:
            self.shell.close()
            self.shell = None
        self.machine.close()
