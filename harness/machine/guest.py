"""The boot contract: a booted guest that runs commands, and how a boot hands it over.

`Guest` is what the runner talks to: run a command (bounded output), tell
whether it is alive, describe itself for cell.json, close. `BootFn` is how a
runner gets one: a context manager that boots a cell and yields `Booted`.
`QemuGuest` is the real backend (QEMU + SSH, booted by harness.run.boot); the
tests' fake guest (tests/fakes/guest.py) plugs in through the same BootFn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

from harness.errors import GuestError
from harness.machine.qemu import MachineSpec, QemuMachine
from harness.machine.ssh import DEFAULT_OUTPUT_LIMIT, CommandResult, GuestShell
from harness.model import Cell

log = logging.getLogger(__name__)

READY_MARKER = b"KHARNESS-READY"


class Guest(Protocol):
    console_log: Path

    def run(self, command: str, timeout: float, stdin: bytes = b"",
            env: dict[str, str] | None = None, limit: int = DEFAULT_OUTPUT_LIMIT) -> CommandResult: ...

    def alive(self) -> bool: ...

    def describe(self) -> dict[str, object]: ...

    def close(self) -> None: ...


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
        """Start QEMU, wait for init's ready marker, connect over SSH."""
        self.machine.start()
        self.ready_line = self.machine.wait_for_console(READY_MARKER, timeout)
        left = timeout - (time.monotonic() - self.machine.started_at)
        self.shell = GuestShell(self.machine.ssh_port, self.access.host_key_line, self.access.client_key)
        try:
            self.shell.connect(max(5.0, left))
        except GuestError as exc:
            exc.console_tail = self.machine.console_tail()
            raise
        self.boot_seconds = time.monotonic() - self.machine.started_at

    def run(self, command: str, timeout: float, stdin: bytes = b"",
            env: dict[str, str] | None = None, limit: int = DEFAULT_OUTPUT_LIMIT) -> CommandResult:
        if self.shell is None:
            raise GuestError("the guest is not booted")
        if not self.machine.running():
            raise GuestError("QEMU is gone", console_tail=self.machine.console_tail())
        return self.shell.run(command, timeout, stdin=stdin, env=env, limit=limit)

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
