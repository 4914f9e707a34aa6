"""What a run tells the person (or CI log) watching it while it runs.

Three faces of one tracker: a live rich display on a terminal (repetitions
done/total, each running cell's phase, elapsed, ETA), one plain line per
event when stderr is not a terminal (CI logs keep every line, and a live
display would fill them with redraws), and nothing for `--quiet`. The
live panel's colour follows `--color`/NO_COLOR, its width COLUMNS.

Events come from the worker threads of parallel cells, so the tracker's
state is behind a lock; the displays only format it.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.formats import terminal
from harness.model import Cell
from harness.results import RepRecord

STYLE = {"pass": "green", "fail": "red", "error": "magenta", "skipped": "yellow", "interrupted": "yellow"}


class Progress(Protocol):
    """The runner's side: it reports events and never asks anything back."""

    def begin(self, total: int, done: int) -> None: ...

    def started(self, cell: Cell, rep: int) -> None: ...

    def phase(self, cell: Cell, rep: int, phase: str) -> None: ...

    def finished(self, cell: Cell, rep: int, record: RepRecord | None) -> None: ...

    def note(self, text: str) -> None: ...

    def end(self) -> None: ...


@dataclass
class _Running:
    label: str
    phase: str
    since: float  # when the phase began (monotonic)
    began: float  # when the repetition began


def label(cell: Cell, rep: int) -> str:
    return f"{cell.slug}#{rep}"


def clock(seconds: float) -> str:
    """`1:05` or `1:02:05`: short enough for a status line."""
    s = int(max(0.0, seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


class Tracker:
    """Counts and running phases, shared by the displays; safe across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.done_here = 0  # finished in this process (resume: not the old ones), for the ETA
        self.start = time.monotonic()
        self.running: dict[tuple[str, int], _Running] = {}

    def begin(self, total: int, done: int) -> None:
        with self.lock:
            self.total, self.done, self.start = total, done, time.monotonic()

    def started(self, cell: Cell, rep: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.running[(cell.id, rep)] = _Running(label(cell, rep), "start", now, now)

    def phase(self, cell: Cell, rep: int, phase: str) -> None:
        with self.lock:
            r = self.running.get((cell.id, rep))
            if r is not None:
                r.phase, r.since = phase, time.monotonic()

    def finished(self, cell: Cell, rep: int, record: RepRecord | None) -> None:
        with self.lock:
            self.running.pop((cell.id, rep), None)
            if record is not None:
                self.done += 1
                self.done_here += 1

    def note(self, text: str) -> None:
        """Run-level news (budget, interruption); the displays print it."""

    def end(self) -> None:
        """Called once, after the last event."""

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def eta(self) -> float | None:
        """Throughput so far times what is left: parallelism is in the throughput."""
        if not self.done_here:
            return None
        return self.elapsed() / self.done_here * (self.total - self.done)

    def headline(self) -> str:
        eta = self.eta()
        return (f"{self.done}/{self.total} done, {len(self.running)} running, elapsed {clock(self.elapsed())}"
                + (f", ETA {clock(eta)}" if eta is not None and self.done < self.total else ""))


class Silent(Tracker):
    """--quiet: the summary at the end is all."""


class Lines(Tracker):
    """One line per event, for CI logs: `[0:42] [3/8] slug#0: boot`."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr

    def _say(self, text: str) -> None:
        line = f"[{clock(self.elapsed())}] [{self.done}/{self.total}] {text}"
        print(line, file=self.stream, flush=True)

    def begin(self, total: int, done: int) -> None:
        super().begin(total, done)
        with self.lock:
            self._say(f"{total - done} repetitions to run" + (f" ({done} already finished)" if done else ""))

    def started(self, cell: Cell, rep: int) -> None:
        super().started(cell, rep)
        with self.lock:
            self._say(f"{label(cell, rep)}: start")

    def phase(self, cell: Cell, rep: int, phase: str) -> None:
        super().phase(cell, rep, phase)
        with self.lock:
            self._say(f"{label(cell, rep)}: {phase}")

    def finished(self, cell: Cell, rep: int, record: RepRecord | None) -> None:
        super().finished(cell, rep, record)
        with self.lock:
            eta = self.eta() if record is not None and self.done < self.total else None
            self._say(f"{label(cell, rep)}: {_outcome(record)}" + (f" (ETA {clock(eta)})" if eta else ""))

    def note(self, text: str) -> None:
        with self.lock:
            self._say(text)


class LiveDisplay(Tracker):
    """A rich live panel on a terminal; finished repetitions scroll above it."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        self.console = console or Console(stderr=True)
        self.live = Live(console=self.console, get_renderable=self._render, refresh_per_second=4,
                         transient=True, redirect_stdout=False, redirect_stderr=False)

    def begin(self, total: int, done: int) -> None:
        super().begin(total, done)
        self.live.start()

    def finished(self, cell: Cell, rep: int, record: RepRecord | None) -> None:
        super().finished(cell, rep, record)
        status = record.status if record else "interrupted"
        self.live.console.print(Text.assemble(
            (f"{label(cell, rep)} ", "bold"), (status, STYLE.get(status, "")),
            f" {record.reason[:100]}" if record and record.reason else "",
        ))

    def note(self, text: str) -> None:
        self.live.console.print(Text(text, style="yellow"))

    def end(self) -> None:
        self.live.stop()

    def _render(self) -> Group:
        with self.lock:
            rows = sorted(self.running.values(), key=lambda r: r.began)
            head = Text(f"kharness: {self.headline()}", style="bold")
            now = time.monotonic()
        table = Table(box=None, show_header=bool(rows), pad_edge=False)
        for col in ("cell", "phase", "in phase", "total"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.label, r.phase, clock(now - r.since), clock(now - r.began))
        return Group(head, table)


def _outcome(record: RepRecord | None) -> str:
    if record is None:
        return "interrupted (not recorded; --resume reruns it)"
    return record.status + (f" ({record.reason})" if record.reason else "")


def for_terminal(quiet: bool, stream: IO[str] | None = None, color: str = "auto") -> Tracker:
    """Silent, live or lines, from --quiet and whether stderr is a terminal;
    the live panel's colour and width by --color, NO_COLOR and COLUMNS."""
    stream = stream or sys.stderr
    if quiet:
        return Silent()
    term = terminal.of(stream, color)
    if term.tty:
        return LiveDisplay(term.console(stream))
    return Lines(stream)
