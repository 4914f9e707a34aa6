"""Source kernels are built before the first boot: once per kernel, visibly, stoppably.

A run (and so check, bisect and ab) builds every source kernel its cells
boot before it starts a guest, in the main thread: the build prints where
it is (phase, elapsed, the make target and make's last step) at each phase
change and every few seconds, and Ctrl-C or SIGTERM stops make and its
compilers. A kernel that does not build is not a reason to stop the run:
it is the kernel's result, so each of its repetitions records it as a
failure (harness/kernel/source.py remembers the failure, so the boots do
not try again) and the other kernels' cells run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from harness.kernel import source
from harness.kernel.build import BuildFailure, Status, Stopping
from harness.model import Cell, KernelSource
from harness.run.progress import clock

Say = Callable[[str], None]
EVERY = 15.0  # seconds between progress lines within one phase


class Reporter:
    """make's progress as lines: on each phase change, and every EVERY seconds within one."""

    def __init__(self, name: str, say: Say, every: float = EVERY) -> None:
        self.name, self.say, self.every = name, say, every
        self.started = time.monotonic()
        self.last_phase = ""
        self.last_said = 0.0

    def __call__(self, status: Status) -> None:
        now = time.monotonic()
        if status.phase == self.last_phase and now - self.last_said < self.every:
            return
        self.last_phase, self.last_said = status.phase, now
        objects = f", {status.compiled} objects compiled" if status.compiled else ""
        step = f"; {status.step}" if status.step else ""
        self.say(f"build {self.name}: {status.phase} (make {status.target}), "
                 f"{clock(now - self.started)} elapsed{objects}{step}")


def build_kernel(kernel: KernelSource, say: Say, stop: Stopping | None = None,
                 jobs: int | None = None) -> source.SourceBuild:
    """Build one source kernel (or find it in the cache), saying so; BuildFailure if it does not build."""
    plan = source.plan(kernel)
    hit = source.lookup(plan)
    if hit is not None:
        say(f"kernel {kernel.name}: {plan.describe()}: built already "
            f"({hit.facts.get('build_seconds', '?')} s when built; {hit.entry})")
        return hit
    say(f"kernel {kernel.name}: {plan.describe()}: building (make's output: "
        f"{plan.lineage_dir() / source.LOG_FILE})")
    t0 = time.monotonic()
    built = source.build(kernel, Reporter(kernel.name, say), stop, jobs)
    objects = built.facts.get("compiled_objects")
    say(f"kernel {kernel.name}: built in {clock(time.monotonic() - t0)}"
        + (f" ({objects} objects compiled)" if objects is not None else ""))
    return built


def prepare(cells: Iterable[Cell], say: Say, stop: Stopping | None = None,
            jobs: int | None = None) -> dict[str, source.SourceBuild | BuildFailure]:
    """Build every source kernel the cells boot, in order of first use."""
    kernels = {c.kernel.name: c.kernel for c in cells if c.kernel.source is not None}
    for kernel in kernels.values():  # a series that does not apply is bad input: before any build
        source.check_series(kernel)
    out: dict[str, source.SourceBuild | BuildFailure] = {}
    for name, kernel in kernels.items():
        if stop is not None and stop():
            break
        try:
            out[name] = build_kernel(kernel, say, stop, jobs)
        except BuildFailure as exc:
            say(f"kernel {name} does not build: {exc.summary}; its cells fail")
            out[name] = exc
    return out
