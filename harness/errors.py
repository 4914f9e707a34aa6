"""The exceptions that decide whose fault a failure is.

Two families, kept apart on purpose (syzkaller's BootError vs InfraError):

- `KharnessError` and its subclasses are *our* side: bad input (exit 2) or a
  host/infrastructure problem (exit 3). They abort a command with one line.
- `KernelFault` is the kernel under test misbehaving: it is a *result*
  (a cell's "fail" status), never an exit of the tool itself.

Every message is one line that names the problem and, after "; ", the fix.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


class KharnessError(Exception):
    """Base of the tool's own errors; `exit_code` is what the CLI returns."""

    exit_code = EXIT_USAGE

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        self.details: dict[str, object] = {}  # facts for the record (e.g. the QEMU argv)
        super().__init__(f"{problem}; {fix}" if fix else problem)


class UsageError(KharnessError):
    """A bad argument, file or value given by the user (exit 2)."""


class ConfigError(UsageError):
    """A config file that does not validate; carries where (file:line and key path)."""

    def __init__(self, problem: str, fix: str = "", *, where: str = "") -> None:
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem, fix)


class ResultsError(UsageError):
    """A result directory that is not one, is truncated, or of another format."""


class InfraError(KharnessError):
    """The host or the harness failed: missing QEMU, no network, port clash (exit 3)."""

    exit_code = EXIT_INFRA


class CommandError(InfraError):
    """A host command failed; keeps argv, exit code and the tail of its output."""

    def __init__(self, argv: list[str], returncode: int, output: str, fix: str = "") -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        tail = output.strip().splitlines()[-1:] or [""]
        super().__init__(f"{argv[0]} exited with {returncode}: {tail[0][:200]}", fix)


class GuestError(InfraError):
    """Talking to the guest failed (SSH refused, timed out, QEMU gone).

    Whether that was the kernel's fault is decided by the caller from the
    console (a panic is a KernelFault); by itself it is infrastructure.
    """

    def __init__(self, problem: str, fix: str = "", *, console_tail: str = "") -> None:
        self.console_tail = console_tail
        super().__init__(problem, fix)


class KernelFault(Exception):
    """The kernel under test failed (panic, oops, never reached init): a result.

    Raised where the fault is seen: the machine layer, when the guest is lost
    and its console shows why; a source build that does not build.
    """

    def __init__(self, summary: str, excerpt: str = "") -> None:
        self.summary = summary
        self.excerpt = excerpt
        self.details: dict[str, object] = {}  # facts for the record (e.g. the QEMU argv)
        super().__init__(summary)


def internal_error(exc: BaseException) -> str:
    """A bug of ours, as one line for the user: what it was and where its traceback went.

    The CLI exits 3 with it (the harness failed, never the kernel: exit 1
    would read as a regression or a kernel failure). The details go to a
    fresh private file in the temporary directory, for the bug report.
    """
    what = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    what = what if what.isprintable() else repr(what)[1:-1]
    try:
        fd, path = tempfile.mkstemp(prefix="kharness-internal-error-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(f"argv: {sys.argv!r}\npython: {sys.version}\n\n")
            f.write("".join(traceback.format_exception(exc)))
    except OSError as write_error:
        return f"internal error ({what}); its details could not be written ({write_error.strerror})"
    return f"internal error ({what}); the details are in {path}: please report it"
