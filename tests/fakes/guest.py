"""FAKE: a guest for unit tests of the runner's logic: no QEMU, no SSH.

It answers each command from a table of canned responses (the protocol
boundary, as QEMU's python tests fake QMP), so tests can play a guest that
works, fails, hangs, floods or lies, and check what the runner records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import GuestError
from harness.machine.guest import Booted, BootFn, console_fault, run_one_by_one
from harness.machine.ssh import DEFAULT_OUTPUT_LIMIT, CommandResult, Step
from harness.model import Cell

Responder = Callable[[str, dict[str, str]], CommandResult | None]
SETUP_DONE = (b"@@kharness-section init@@\nok modules=2\n@@kharness-section trace@@\n"
              b"kharness-trace: ok\n@@kharness-section disks@@\nok\n")


def ok(command: str, stdout: bytes = b"", status: int = 0, stderr: bytes = b"",
       timed_out: bool = False) -> CommandResult:
    return CommandResult(command, status, stdout, stderr, 0.01, timed_out=timed_out)


@dataclass
class FakeGuest:
    """Answers commands with the first responder that returns a result."""

    console_log: Path
    responders: list[Responder] = field(default_factory=list)
    console_text: str = "[    0.000000] Linux version 6.12.0-fake\nKHARNESS-READY release=6.12.0-fake\n"
    commands: list[str] = field(default_factory=list)
    is_alive: bool = True

    def run(self, command: str, timeout: float, stdin: bytes = b"",
            env: dict[str, str] | None = None, limit: int = DEFAULT_OUTPUT_LIMIT) -> CommandResult:
        self.commands.append(command)
        if not self.is_alive:
            raise GuestError("the SSH connection to the guest is gone (fake)")
        for responder in self.responders:
            try:
                result = responder(command, env or {})
            except GuestError as lost:  # as the real backend does: the console decides whose fault
                fault = console_fault(self.console_log)
                if fault is not None:
                    raise fault from lost
                raise
            if result is not None:
                return result
        if "kharness-setup.sh" in command:  # a guest whose init finished, nothing armed at init
            return ok(command, SETUP_DONE)
        return ok(command)

    def run_steps(self, steps: Sequence[Step]) -> list[CommandResult]:
        return run_one_by_one(self, steps)

    def alive(self) -> bool:
        return self.is_alive

    def describe(self) -> dict[str, object]:
        return {"argv": ["fake-qemu"], "accelerator": "fake"}

    def close(self) -> None:
        self.is_alive = False


def fake_boot(make_guest: Callable[[Path], FakeGuest]) -> BootFn:
    """A boot function (the same contract as harness.run.boot.boot_cell) that hands out fake guests."""

    @contextmanager
    def boot(cell: Cell, rep_path: Path) -> Iterator[Booted]:
        guest = make_guest(rep_path / "console.log")
        guest.console_log.parent.mkdir(parents=True, exist_ok=True)
        guest.console_log.write_text(guest.console_text)
        try:
            yield Booted(guest, {"name": cell.kernel.name, "release": "6.12.0-fake"}, 0.5)
        finally:
            guest.close()

    return boot
