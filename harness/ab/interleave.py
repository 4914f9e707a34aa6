"""Both sides' boots in one schedule: base, patched, base, patched, ...

A shared machine drifts (other jobs, thermal limits, page cache): running
all base boots and then all patched boots would put that drift into the
difference. So the repetitions are ordered repetition by repetition and
cell by cell, base before patched (A B A B ...), and handed to the one
parallel scheduler of `harness.run.parallel`, which starts them in that
order as the host's cores and memory allow: with room for two guests, each
base boot runs beside its patched twin.

Each side writes an ordinary result directory (run.json, cells/, junit.xml,
report.html) through the same repetition code as `kharness run`, so
resuming, comparing and merging read them as they read any run: a
repetition is finished when its cell.json exists, and `--resume` runs only
the ones that are not, in the same interleaved order.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import atomic, results
from harness.ab.plan import Side
from harness.machine.guest import BootFn
from harness.model import Cell
from harness.results import RepRecord
from harness.run import parallel, runner
from harness.run.boot import boot_cell
from harness.run.cell import run_repetition
from harness.run.parallel import Budget, Stop
from harness.run.progress import Progress
from harness.run.resume import check_same_config
from harness.workloads import Workload
from harness.workloads import load as load_workload

BootFor = Callable[[Side], BootFn]


@dataclass
class Outcome:
    records: dict[str, list[RepRecord]] = field(default_factory=dict)  # role -> finished repetitions
    unfinished: dict[str, list[RepRecord]] = field(default_factory=dict)
    interrupted: str = ""

    def statuses(self) -> set[str]:
        return {r.status for recs in (*self.records.values(), *self.unfinished.values()) for r in recs}


def order(sides: tuple[Side, ...], done: dict[str, set[tuple[str, int]]]) -> list[tuple[Side, Cell, int]]:
    """Repetition by repetition, cell by cell, each side in turn; finished ones left out."""
    most = max(c.repeat for s in sides for c in s.config.cells)
    width = max(len(s.config.cells) for s in sides)
    out = []
    for rep in range(most):
        for i in range(width):
            for side in sides:
                if i < len(side.config.cells):
                    cell = side.config.cells[i]
                    if rep < cell.repeat and (cell.id, rep) not in done[side.role]:
                        out.append((side, cell, rep))
    return out


def run_sides(sides: tuple[Side, ...], boot_for: BootFor, progress: Progress, stop: Stop,
              jobs: int | None = None, resume: bool = False) -> Outcome:
    """Run (or finish) both sides into their result directories, interleaved."""
    docs: dict[str, dict[str, Any]] = {}
    done: dict[str, set[tuple[str, int]]] = {}
    for side in sides:
        docs[side.role], done[side.role] = _open(side, resume)
    todo = order(sides, done)
    for side, cell, rep in todo:  # a cut-off attempt's partial files would mix with the new ones
        if resume:
            shutil.rmtree(results.rep_dir(side.run_dir, cell.id, rep), ignore_errors=True)
    budget = Budget.from_host(jobs)
    for side in sides:
        doc = docs[side.role]
        doc["budget"] = {"cores": budget.cores, "memory_mib": budget.memory_mib, "jobs": budget.jobs}
        doc["status"] = "running"
        doc["interleaved_with"] = [s.run_dir.name for s in sides if s is not side]
        atomic.write_json(side.run_dir / results.RUN_FILE, doc)
    workloads = _workloads(sides)
    by_id = {c.id: s for s in sides for c in s.config.cells}
    boots = {s.role: boot_for(s) for s in sides}

    def rep_fn(cell: Cell, rep: int) -> RepRecord:
        side = by_id[cell.id]
        return run_repetition(cell, rep, side.run_dir, workloads, boots[side.role],
                              progress=lambda phase: progress.phase(cell, rep, phase), stopping=stop)

    total = sum(c.repeat for s in sides for c in s.config.cells)
    progress.begin(total, total - len(todo))
    progress.note(f"{len(todo)} boot(s), {' and '.join(s.role for s in sides)} interleaved; up to "
                  f"{budget.most_at_once([c for _, c, _ in todo])} guest(s) at once ({budget.describe()})")
    try:
        executed = parallel.execute([(c, r) for _, c, r in todo], rep_fn, budget, stop, progress)
    finally:
        progress.end()
    outcome = Outcome(interrupted=stop.reason if stop() else "")
    for side in sides:
        doc = docs[side.role]
        if stop():
            doc.setdefault("interruptions", []).append({
                "at": runner.now_iso(), "reason": stop.reason,
                "cut_off": [{"cell": c, "rep": r} for c, r in executed.cut_off if by_id[c] is side],
                "not_started": sum(1 for c, _ in executed.not_started if by_id[c] is side),
            })
        doc["status"] = "interrupted" if stop() else "finished"
        doc["finished"] = None if stop() else runner.now_iso()
        outcome.records[side.role], outcome.unfinished[side.role] = runner.finish(side.run_dir, doc)
    if executed.failure is not None:
        raise executed.failure
    return outcome


def _open(side: Side, resume: bool) -> tuple[dict[str, Any], set[tuple[str, int]]]:
    """run.json to start from and the repetitions already finished (on resume)."""
    if resume and (side.run_dir / results.RUN_FILE).exists():
        loaded = results.load_run(side.run_dir)
        doc = loaded.run
        check_same_config(doc, side.config, side.run_dir)
        doc["resumed"] = [*doc.get("resumed", []), {"at": runner.now_iso(), "host": runner.host_facts()}]
        doc["cells"] = [runner.cell_entry(c, None) for c in side.config.cells]
        return doc, {(r.record.cell_id, r.record.rep) for r in loaded.reps}
    side.run_dir.mkdir(parents=True, exist_ok=True)
    return runner.run_doc(side.config, None), set()


def _workloads(sides: tuple[Side, ...]) -> dict[str, Workload]:
    out: dict[str, Workload] = {}
    for side in sides:
        for cell in side.config.cells:
            for run in cell.workloads:
                if run.name not in out:
                    out[run.name] = load_workload(run.name, tuple(side.config.workload_dirs))
    return out


def boot_under_qemu(accel: str) -> BootFor:
    def boot_for(side: Side) -> BootFn:
        return lambda cell, path: boot_cell(cell, path, accel, side.config.workload_dirs)

    return boot_for


__all__ = ["Outcome", "boot_under_qemu", "order", "run_sides"]
