"""Parallel cells with fake guests (no QEMU): the budget, isolation of failures,
stopping, and progress output."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from junitparser import JUnitXml
from rich.console import Console

from harness.config.load import Config, load
from harness.errors import EXIT_INTERRUPTED, InfraError
from harness.machine.guest import Booted
from harness.model import Cell, KernelSource
from harness.results import RepRecord, load_run
from harness.run import parallel, progress
from harness.run.parallel import Budget, Stop
from harness.run.runner import RunOptions, RunOutcome, run
from tests.fakes.guest import fake_boot
from tests.fakes.runs import guest_factory

PANIC = "[    1.0] Kernel panic - not syncing: fake\nKHARNESS-READY release=6.12.0-fake\n"
BootFn = Callable[[Cell, Path], AbstractContextManager[Booted]]


def config(tmp_path: Path, cells: int = 4, repeat: int = 1, cpus: int = 1) -> Config:
    """`cells` small cells: trixie-x86_64 with different extra kernel words."""
    words = ", ".join(f"[kh.n={i}]" for i in range(cells))
    (tmp_path / "c.yaml").write_text(f"""
name: par
defaults: {{workloads: [idle], memory: 128, cpus: {cpus}, repeat: {repeat}}}
matrix:
  kernel: [trixie-x86_64]
  cmdline: [{words}]
""")
    return load(tmp_path / "c.yaml")


def _words(cell: Cell) -> str:
    """The cell's extra kernel words: what the fakes key their behaviour on."""
    return " ".join(cell.cmdline)


class SlowBoots:
    """A fake boot that takes `seconds` (ending early on `stop`, or held until `hold` is set) and counts
    guests alive at once."""

    def __init__(self, seconds: float, stop: Stop | None = None, fail: tuple[str, ...] = (),
                 panic: tuple[str, ...] = (), fast: tuple[str, ...] = (),
                 hold: threading.Event | None = None) -> None:
        self.seconds, self.stop, self.hold = seconds, stop, hold
        self.fail, self.panic, self.fast = fail, panic, fast
        self.lock = threading.Lock()
        self.alive = 0
        self.most = 0
        self.booted: list[str] = []
        self.first = self.last = 0.0  # when the first boot began, the last guest closed

    def __call__(self, cell: Cell, path: Path) -> AbstractContextManager[Booted]:
        return self._boot(cell, path)

    @contextmanager
    def _boot(self, cell: Cell, path: Path) -> Iterator[Booted]:
        with self.lock:
            self.alive += 1
            self.most = max(self.most, self.alive)
            self.booted.append(_words(cell))
            self.first = self.first or time.monotonic()
        try:
            deadline = time.monotonic() + (0.01 if _words(cell) in self.fast else self.seconds)
            if self.hold is not None:  # stuck until the test lets go, stop or no stop
                self.hold.wait(self.seconds)
            while self.hold is None and time.monotonic() < deadline and not (self.stop and self.stop()):
                time.sleep(0.005)
            if _words(cell) in self.fail:
                raise InfraError("qemu-system-x86_64 not found (fake)")
            console = PANIC if _words(cell) in self.panic else None
            with fake_boot(guest_factory(console=console))(cell, path) as booted:
                yield booted
        finally:
            with self.lock:
                self.alive -= 1
                self.last = time.monotonic()


class StopAfter(progress.Tracker):
    """Requests a stop (as Ctrl-C would) once `count` repetitions have finished."""

    def __init__(self, stop: Stop, count: int, reason: str = "SIGINT") -> None:
        super().__init__()
        self.stop, self.count, self.reason = stop, count, reason

    def finished(self, cell: Cell, rep: int, record: RepRecord | None) -> None:
        super().finished(cell, rep, record)
        if self.done >= self.count:
            self.stop.request(self.reason)


def _run(cfg: Config, tmp_path: Path, boot: BootFn, jobs: int | None = 2, stop: Stop | None = None,
         prog: progress.Progress | None = None) -> RunOutcome:
    return run(cfg, RunOptions(output=tmp_path / "out", jobs=jobs), boot, prog, stop)


def test_parallel_two_guests_at_a_time_halve_the_wall_time(tmp_path: Path) -> None:
    boots = SlowBoots(1.0)
    outcome = _run(config(tmp_path, cells=4), tmp_path, boots, jobs=2)
    assert [r.status for r in outcome.records] == ["pass"] * 4
    assert boots.most == 2
    wall = boots.last - boots.first  # the guests' part; run.json and tool versions are fixed costs
    assert wall < 4 * 1.0 * 0.75, wall  # serial: at least 4 s of boots


def test_parallel_default_budget_follows_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "_cpu_count", lambda: 2)
    boots = SlowBoots(0.2)
    _run(config(tmp_path, cells=4, cpus=2), tmp_path, boots, jobs=None)
    assert boots.most == 1  # two 2-vCPU guests do not fit in 2 cores


def _cell(cpus: int = 1, memory: int = 1024) -> Cell:
    return Cell(id=f"c-{cpus}-{memory}", slug="c", axes=(), kernel=KernelSource("k", "x86_64"),
                cpus=cpus, memory_mib=memory)


def test_budget_counts_cores_memory_and_jobs() -> None:
    b = Budget(cores=4, memory_mib=4000)
    assert b.admits([], _cell(cpus=8, memory=64000))  # too big for the host: still runs, alone
    assert b.admits([_cell(2)], _cell(2))
    assert not b.admits([_cell(2), _cell(1)], _cell(2))  # 5 vCPUs > 4 cores
    assert not b.admits([_cell(1, 2000)], _cell(1, 2000))  # 2 x (2000 + 256 QEMU) > 4000 MiB
    jobs = Budget(cores=1, memory_mib=4000, jobs=3)
    assert jobs.admits([_cell(2), _cell(2)], _cell(2))  # --jobs may oversubscribe cores...
    assert not jobs.admits([_cell(2)] * 3, _cell(2))  # ...up to N guests
    assert not jobs.admits([_cell(1, 3000)], _cell(1, 1000))  # ...but never memory
    assert Budget(cores=2, memory_mib=10**6).most_at_once([_cell(1)] * 5) == 2


def test_budget_from_host_reads_meminfo(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text("MemTotal: 8000000 kB\nMemAvailable: 4194304 kB\n")
    assert parallel._mem_available_mib(tmp_path / "meminfo") == 4096
    assert parallel._mem_available_mib(tmp_path / "missing") == 4096


def test_parallel_one_guest_failing_does_not_stop_the_others(tmp_path: Path) -> None:
    boots = SlowBoots(0.05, fail=("kh.n=1",), panic=("kh.n=2",))
    outcome = _run(config(tmp_path, cells=4), tmp_path, boots)
    by_word = {r.axes["cmdline"]: r.status for r in outcome.records}
    assert by_word == {"kh.n=0": "pass", "kh.n=1": "error", "kh.n=2": "fail", "kh.n=3": "pass"}
    assert outcome.exit_code == 3
    assert len(load_run(outcome.path).reps) == 4


def test_parallel_results_keep_config_order(tmp_path: Path) -> None:
    # The first cell is the slowest: it finishes last but is still listed first.
    boots = SlowBoots(0.3, fast=("kh.n=1", "kh.n=2", "kh.n=3"))
    outcome = _run(config(tmp_path, cells=4), tmp_path, boots)
    assert [r.axes["cmdline"] for r in outcome.records] == [f"kh.n={i}" for i in range(4)]
    suites = [s.name for s in JUnitXml.fromfile(str(outcome.path / "junit.xml"))]
    assert suites == [f"{r.slug}#0" for r in outcome.records]


def _stop_after(stop: Stop, seconds: float) -> threading.Thread:
    t = threading.Timer(seconds, stop.request, args=("SIGTERM",))
    t.start()
    return t


def test_stop_keeps_finished_marks_the_rest_and_exits_130(tmp_path: Path) -> None:
    stop = Stop()
    boots = SlowBoots(5.0, stop=stop, fast=("kh.n=0",))
    outcome = _run(config(tmp_path, cells=5), tmp_path, boots, stop=stop, prog=StopAfter(stop, 1, "SIGTERM"))
    assert outcome.exit_code == EXIT_INTERRUPTED
    assert outcome.interrupted == "SIGTERM"
    assert [r.axes["cmdline"] for r in outcome.records] == ["kh.n=0"]
    assert len(outcome.unfinished) == 4 and {u.status for u in outcome.unfinished} == {"interrupted"}
    run_dir = load_run(outcome.path)
    assert [r.record.axes["cmdline"] for r in run_dir.reps] == ["kh.n=0"]  # no cell.json for the rest
    assert run_dir.run["status"] == "interrupted"
    (stopped,) = run_dir.run["interruptions"]
    assert stopped["reason"] == "SIGTERM"
    assert len(stopped["cut_off"]) == 1 and stopped["not_started"] == 3  # kh.n=1 was booting
    assert [c["status"] for c in run_dir.run["cells"]] == ["pass"] + ["interrupted"] * 4
    errors = [c.result[0].type for s in JUnitXml.fromfile(str(outcome.path / "junit.xml")) for c in s
              if c.result]
    assert errors == ["interrupted"] * 4  # a partial run never reads as a pass


def test_stop_forced_does_not_wait_for_stuck_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "WORKER_GRACE", 0.3)
    stop = Stop()
    hold = threading.Event()
    boots = SlowBoots(60.0, hold=hold)  # ignores the stop, like a thread stuck in a download
    _stop_after(stop, 0.2)
    try:
        outcome = _run(config(tmp_path, cells=2), tmp_path, boots, stop=stop)
        # it returned while every boot it began was still stuck: it did not wait for them
        assert boots.booted and boots.alive == len(boots.booted)
    finally:
        hold.set()
    assert outcome.exit_code == EXIT_INTERRUPTED
    assert not outcome.records
    for _ in range(2000):  # let the abandoned threads end before tmp_path goes
        if not boots.alive:
            break
        time.sleep(0.005)


def test_stop_signal_handlers_request_a_stop() -> None:
    import os
    import signal

    stop = Stop()
    with parallel.on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stop() and stop.reason == "SIGTERM" and not stop.forced
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.forced
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_progress_lines_for_ci_logs(tmp_path: Path) -> None:
    out = io.StringIO()
    _run(config(tmp_path, cells=2), tmp_path, SlowBoots(0.01), prog=progress.Lines(out))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("[0/2] 2 repetitions to run")
    assert any("guest(s) at once" in line for line in lines)
    assert sum(": boot" in line for line in lines) == 2
    done = [line for line in lines if ": pass" in line]
    assert len(done) == 2 and "[2/2]" in done[-1]


def test_progress_live_display_renders(tmp_path: Path) -> None:
    buf = io.StringIO()
    live = progress.LiveDisplay(Console(file=buf, force_terminal=True, width=100))
    cfg = config(tmp_path, cells=3)
    live.begin(3, 1)
    live.started(cfg.cells[0], 0)
    live.phase(cfg.cells[0], 0, "workload idle")
    text = io.StringIO()
    Console(file=text, width=100).print(live._render())
    live.end()
    assert "1/3 done, 1 running" in text.getvalue()
    assert "workload idle" in text.getvalue() and cfg.cells[0].slug in text.getvalue()


def test_progress_eta_from_throughput() -> None:
    t = progress.Tracker()
    t.begin(10, 2)
    assert t.eta() is None
    t.start -= 10.0
    t.done_here, t.done = 2, 4
    assert t.eta() == pytest.approx(30.0, rel=0.05)  # 5 s per repetition, 6 to go
    assert progress.clock(3725) == "1:02:05" and progress.clock(65) == "1:05"


def test_progress_for_terminal_picks_the_face() -> None:
    assert isinstance(progress.for_terminal(quiet=True), progress.Silent)
    assert isinstance(progress.for_terminal(False, io.StringIO()), progress.Lines)
