"""Half of a big job in a forked child, beside the parent's half: two cores, about twice the speed.

Encoding the JSON document is most of what `kharness compare --format json`
does on a big matrix, and it splits in two without changing a byte: each
cell encodes on its own. So `beside(child_work, parent_work)` forks; the
child does its work and sends back bytes through a pipe, the parent does its
own meanwhile, then reads them. The child's work is a function of what both
had at the fork, so its bytes are the ones the parent would have made.

(Loading the two directories this way was tried and left out: the runs must
come back as objects, pickled, and with that and copy-on-write it cost 30 %
more CPU for a wall time 5 % shorter at best, often longer, on a shared
2-core machine.)

It is an optimisation only, never a second way of computing: whenever the
child cannot be used (no fork on this system, other threads running, the
fork failing, the child dying, raising, or sending less than it said), the
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

import os
import signal
import struct
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_HEADER = struct.Struct("<Q")  # the length of what follows
_CHUNK = 1 << 20


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
           parent_work: Callable[[], T]) -> tuple[T, bytearray | None]:
    """parent_work()'s value, and child_work()'s bytes as a forked child made them
    (None: no child could do it; call child_work yourself)."""
    if not usable() or not _idle_cpu():
        return parent_work(), None
    try:
        r, w = os.pipe()
    except OSError:
        return parent_work(), None
    # Signals wait until the child has put back the default handlers: a handler of the
    # caller's (one that kills guests, or removes a directory) must never run in the child.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(r)
        os.close(w)
        return parent_work(), None
    if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
        _child(child_work, r, w, blocked)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(w)
    try:
        try:
            value = parent_work()
            data = _received(r)
        finally:
            os.close(r)
    except BaseException:
        _kill(pid)
        raise
    return value, data if _exited_well(pid) else None


def _child(work: Callable[[], bytes | bytearray], r: int, w: int,
           blocked: set[int | signal.Signals]) -> None:  # pragma: no cover - runs in the child
    code = 1
    try:
        for sig in signal.valid_signals():
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(r)
        data = work()
        _write_all(w, memoryview(_HEADER.pack(len(data))))
        _write_all(w, memoryview(data))
        code = 0
    except BaseException:  # whatever it is, the parent does this work again
        pass
    finally:
        os._exit(code)


def _write_all(fd: int, view: memoryview) -> None:  # pragma: no cover - runs in the child
    while view:
        view = view[os.write(fd, view[:_CHUNK]):]


def _received(r: int) -> bytearray | None:
    """What the child sent, if it is whole: its length, then that many bytes, then the end."""
    head = _read_into(r, bytearray(_HEADER.size))
    if head is None:
        return None
    (size,) = _HEADER.unpack(head)
    data = _read_into(r, bytearray(size))
    if data is None or os.read(r, 1):
        return None
    return data


def _read_into(fd: int, buf: bytearray) -> bytearray | None:
    """`buf` filled from `fd`, or None: the end came first."""
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = os.readv(fd, [view[got:got + _CHUNK]])
        if not n:
            return None
        got += n
    return buf


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
