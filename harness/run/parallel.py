"""Running repetitions side by side within the host's cores and memory, and stopping them.

Each repetition runs in its own thread, which starts and closes its guest
(QEMU dies with the thread that started it: harness/machine/qemu.py), so a
guest that panics, hangs or loses QEMU is one repetition's result and the
others go on. The main thread only schedules: it starts a repetition when
the budget has room, in config order, and collects results.

Stopping (Ctrl-C, SIGTERM, a host error): no new repetition starts, and the
main thread sends SIGTERM to every QEMU child of this process, again to any
that a boot already under way starts later, and SIGKILL to what is left
after a few seconds. The waiting loops of the guests' threads (console
marker, SSH) see their QEMU gone within a fraction of a second, and each
thread closes its own guest on the way out. A repetition cut off like this
raises RepInterrupted and records nothing, so --resume runs it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from harness.model import Cell
from harness.results import RepRecord
from harness.run.cell import RepInterrupted
from harness.run.progress import Progress

log = logging.getLogger(__name__)

# QEMU's own memory beyond guest RAM (TCG translation cache, devices, slirp).
QEMU_OVERHEAD_MIB = 256
# Left to the host, kharness and page cache when the budget comes from MemAvailable.
HOST_RESERVE_MIB = 1024
TERM_GRACE = 3.0  # seconds from SIGTERM to SIGKILL for a guest that does not go
WORKER_GRACE = 20.0  # seconds to wait for threads still in artefact preparation
POLL = 0.1

RepKey = tuple[str, int]
RepFn = Callable[[Cell, int], RepRecord]  # raises RepInterrupted when cut off


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _mem_available_mib(meminfo: Path = Path("/proc/meminfo")) -> int:
    """MemAvailable, not MemFree: page cache the kernel can drop counts as room for guests."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 4096  # unknown: assume a small machine rather than overcommit


def guest_cost_mib(cell: Cell) -> int:
    return cell.memory_mib + QEMU_OVERHEAD_MIB


@dataclass(frozen=True)
class Budget:
    """How many guests run at once.

    With `jobs` unset, guests start while their vCPUs fit in the host's cores
    (under TCG each vCPU keeps a host core busy, and under KVM it wants one)
    and their RAM fits in what the host has available. `--jobs N` caps the
    number of guests instead and lets the user oversubscribe cores; memory
    still limits, as an OOM-killed QEMU would be an error of our making. A
    cell larger than the whole budget still runs, alone.
    """

    cores: int
    memory_mib: int
    jobs: int | None = None

    @classmethod
    def from_host(cls, jobs: int | None = None) -> Budget:
        return cls(_cpu_count(), max(0, _mem_available_mib() - HOST_RESERVE_MIB), jobs)

    def admits(self, running: Sequence[Cell], cell: Cell) -> bool:
        if not running:
            return True
        if self.jobs is not None and len(running) >= self.jobs:
            return False
        if sum(guest_cost_mib(c) for c in running) + guest_cost_mib(cell) > self.memory_mib:
            return False
        return self.jobs is not None or sum(c.cpus for c in running) + cell.cpus <= self.cores

    def most_at_once(self, cells: Sequence[Cell]) -> int:
        """How many of `cells` (the first ones, in order) would start together."""
        running: list[Cell] = []
        for cell in cells:
            if not self.admits(running, cell):
                break
            running.append(cell)
        return len(running)

    def describe(self) -> str:
        limit = f"--jobs {self.jobs}" if self.jobs is not None else f"{self.cores} cores"
        return f"{limit}, {self.memory_mib} MiB for guests"


class Stop:
    """A request to stop the run: worker threads poll it, the scheduler acts on it.

    A second request (Ctrl-C twice) means "now": guests get SIGKILL at once
    and the scheduler does not wait for threads still preparing artefacts.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self.forced = False

    def request(self, reason: str) -> None:
        if self._event.is_set():
            self.forced = True
        else:
            self.reason = reason
            self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


@contextmanager
def on_signals(stop: Stop) -> Iterator[Stop]:
    """SIGINT and SIGTERM request a stop instead of raising, for the duration."""
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.request(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def qemu_children(parent: int | None = None) -> list[int]:
    """Pids of this process's QEMU children (setpriv execs QEMU in place)."""
    parent = os.getpid() if parent is None else parent
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, _, rest = text.partition("(")[2].rpartition(")")
        fields = rest.split()
        if len(fields) > 1 and int(fields[1]) == parent and comm.startswith("qemu-system"):
            pids.append(int(stat.parent.name))
    return pids


class GuestStopper:
    """Stops this process's guests: SIGTERM first, SIGKILL after TERM_GRACE."""

    def __init__(self) -> None:
        self.first: float | None = None

    def sweep(self, forced: bool) -> int:
        """Signal every QEMU child now alive; returns how many there were."""
        now = time.monotonic()
        self.first = self.first or now
        sig = signal.SIGKILL if forced or now - self.first > TERM_GRACE else signal.SIGTERM
        pids = qemu_children()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)  # a zombie ignores it; only its own thread reaps it
        return len(pids)


@dataclass
class Executed:
    """What happened to each repetition handed to `execute`."""

    records: dict[RepKey, RepRecord] = field(default_factory=dict)
    cut_off: list[RepKey] = field(default_factory=list)  # running when the stop came
    not_started: list[RepKey] = field(default_factory=list)
    failure: BaseException | None = None  # a host error that stopped the run (e.g. disk full)


@dataclass
class _Scheduler:
    """The main thread's bookkeeping: only it starts threads and reads results, so no locks here."""

    rep_fn: RepFn
    budget: Budget
    stop: Stop
    progress: Progress
    pending: deque[tuple[Cell, int]]
    running: dict[RepKey, Cell] = field(default_factory=dict)
    threads: dict[RepKey, threading.Thread] = field(default_factory=dict)
    done: queue.Queue[tuple[RepKey, RepRecord | BaseException | None]] = field(default_factory=queue.Queue)
    result: Executed = field(default_factory=Executed)
    stopper: GuestStopper = field(default_factory=GuestStopper)
    stopped_at: float | None = None

    def launch(self) -> None:
        while self.pending and not self.stop() and self.budget.admits(list(self.running.values()),
                                                                      self.pending[0][0]):
            cell, rep = self.pending.popleft()
            key = (cell.id, rep)
            self.running[key] = cell
            self.progress.started(cell, rep)
            t = threading.Thread(target=self._work, args=(cell, rep), name=f"kharness-{cell.slug}#{rep}",
                                 daemon=True)  # daemon: a thread stuck past WORKER_GRACE must not block exit
            self.threads[key] = t
            t.start()

    def _work(self, cell: Cell, rep: int) -> None:
        """The thread body: its guest is started and closed here, whatever happens."""
        outcome: RepRecord | BaseException | None
        try:
            outcome = self.rep_fn(cell, rep)
        except RepInterrupted:
            outcome = None
        except BaseException as exc:  # handed to the main thread, which stops the run
            outcome = exc
        self.done.put(((cell.id, rep), outcome))

    def collect(self, timeout: float) -> None:
        """Take one finished repetition; an exception from a thread (not a guest's fault) stops the run."""
        try:
            key, outcome = self.done.get(timeout=timeout)
        except queue.Empty:
            return
        cell = self.running.pop(key)
        self.threads.pop(key).join()
        if isinstance(outcome, RepRecord):
            self.result.records[key] = outcome
        else:
            self.result.cut_off.append(key)
        if isinstance(outcome, BaseException):
            log.error("%s#%d: %s", cell.slug, key[1], outcome)
            self.result.failure = self.result.failure or outcome
            self.stop.request(f"host error: {outcome}")
        self.progress.finished(cell, key[1], outcome if isinstance(outcome, RepRecord) else None)

    def stopping(self) -> bool:
        """Stop guests (again: a boot under way may start one); True when waiting is over."""
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
            self.progress.note(f"stopping ({self.stop.reason}): stopping {len(self.running)} guest(s), "
                               "keeping finished repetitions")
            self.result.not_started = [(c.id, r) for c, r in self.pending]
            self.pending.clear()
        self.stopper.sweep(self.stop.forced)
        return self.stop.forced or time.monotonic() - self.stopped_at > WORKER_GRACE

    def abandon(self) -> None:
        """After giving up waiting: what reported meanwhile counts, the rest was cut off."""
        while not self.done.empty():
            self.collect(0)
        for key, cell in self.running.items():  # daemon threads: they end with the process
            self.result.cut_off.append(key)
            self.progress.finished(cell, key[1], None)
        self.running.clear()
        if self.stopped_at is not None:
            self.stopper.sweep(forced=True)


def execute(todo: Sequence[tuple[Cell, int]], rep_fn: RepFn, budget: Budget, stop: Stop,
            progress: Progress) -> Executed:
    """Run `todo` within `budget` until done or stopped; never raises for one repetition."""
    s = _Scheduler(rep_fn, budget, stop, progress, deque(todo))
    while s.pending or s.running:
        try:
            if stop() and s.stopping():
                break
            s.launch()
            s.collect(POLL)
        except KeyboardInterrupt:  # no handler installed (a library caller): same as SIGINT
            stop.request("SIGINT")
    s.abandon()
    return s.result
