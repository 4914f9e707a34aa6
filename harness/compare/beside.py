"""Half of a big job in a forked child, beside the parent's half: two cores, about twice the speed.

Encoding the JSON document is most of what `kharness compare --format json`
does on a big matrix, and it splits in two without changing a byte: each
cell encodes on its own. So `beside(child_work, parent_work)` forks; the
child does its work and leaves its bytes in a memory file (memfd), the parent
does its own meanwhile, then maps them. The child's work is a
function of what both had at the fork, so its bytes are the ones the parent
would have made. (Not a pipe: it holds 64 KiB, so the child's 50 MB waited
for the parent to finish its half, then crossed in 0.07-0.15 s, 64 KiB at a
time, while the parent did nothing else; a memory file is filled while the
parent works.)

Loading the directories is split the same way (harness.compare.load.load_runs):
the child loads the later ones, and its runs come back packed by msgspec
(msgpack, the metric keys once per run), which costs some tens of
milliseconds; pickled, as first tried, they cost more than half the time saved.

It is an optimisation only, never a second way of computing: whenever the
child cannot be used (no fork on this system, other threads running, the
fork or the memory file failing, the child dying, raising, or leaving less
than it said), the
result is None and the caller does that work itself, in this process, as
if no child had been asked. So an error in the child's half (a bad file)
is raised by the parent, with the message it would have given anyway. An
error in the parent's own half is raised after the child is killed.

The child never returns into the caller's code: it leaves by os._exit, with
no atexit handlers and no flushing of the parent's buffers, and it runs with
the default action for every signal (a Ctrl-C ends it; the caller's handlers,
which may clean up what the parent owns, never run in it).
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_HEADER = struct.Struct("<Q")  # the length of what follows
_CHUNK = 16 << 20  # bytes a write takes at most


def usable() -> bool:
    """Can a child be forked safely here? (Forking with other threads running may copy
    a lock one of them holds; Python 3.12 warns about it.)"""
    return hasattr(os, "fork") and sys.platform.startswith("linux") and threading.active_count() == 1


def cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _idle_cpu() -> bool:
    """Is a CPU idle now, for the child? (Tasks runnable at this instant, this one among them,
    from /proc/loadavg: with every core busy, a child costs CPU and saves no time.)"""
    if cpus() < 2:
        return False
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return True
    return running < cpus()


def beside(child_work: Callable[[], bytes | bytearray],
           parent_work: Callable[[], T]) -> tuple[T, memoryview | None]:
    """parent_work()'s value, and child_work()'s bytes as a forked child made them, read-only
    (None: no child could do it; call child_work yourself)."""
    if not usable() or not _idle_cpu():
        return parent_work(), None
    try:
        fd = os.memfd_create("kharness-beside", os.MFD_CLOEXEC)
    except OSError:
        return parent_work(), None
    # Signals wait until the child has put back the default handlers: a handler of the
    # caller's (one that kills guests, or removes a directory) must never run in the child.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(fd)
        return parent_work(), None
    if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
        _child(child_work, fd, blocked)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    try:
        try:
            value = parent_work()
        except BaseException:
            _kill(pid)
            raise
        data = _received(fd) if _exited_well(pid) else None
    finally:
        os.close(fd)
    return value, data


def _child(work: Callable[[], bytes | bytearray], fd: int,
           blocked: set[int | signal.Signals]) -> None:  # pragma: no cover - runs in the child
    code = 1
    try:
        for sig in signal.valid_signals():
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        data = work()
        _write_all(fd, memoryview(_HEADER.pack(len(data))))
        _write_all(fd, memoryview(data))
        code = 0
    except BaseException:  # whatever it is, the parent does this work again
        pass
    finally:
        os._exit(code)


def _write_all(fd: int, view: memoryview) -> None:  # pragma: no cover - runs in the child
    while view:
        view = view[os.write(fd, view[:_CHUNK]):]


def _received(fd: int) -> memoryview | None:
    """What the child left in the memory file, if it is whole (its length, then that many
    bytes): mapped, not copied. Half a big JSON document is 50 MB, and copying it into
    fresh memory and again after the parent's half (25,600 page faults) took 0.09 s, a
    sixth of rendering. The view keeps the mapping until it is dropped."""
    total = os.fstat(fd).st_size
    if total < _HEADER.size:
        return None
    mapped = mmap.mmap(fd, total, prot=mmap.PROT_READ)
    (size,) = _HEADER.unpack(mapped[:_HEADER.size])
    if total != _HEADER.size + size:
        mapped.close()
        return None
    return memoryview(mapped)[_HEADER.size:]


def _exited_well(pid: int) -> bool:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped by someone else (SIGCHLD ignored): its exit is unknown
        return False
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
