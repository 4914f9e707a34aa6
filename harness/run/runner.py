"""A whole run: cells x repetitions into one result directory, then reports.

run.json is written first (status "running") and rewritten at the end, so a
run killed at any point leaves a directory that says what it was and which
repetitions finished (those with a cell.json). Repetitions run side by side
within the host's budget (harness/run/parallel.py).

Interrupted semantics: a repetition is finished iff its cell.json exists. A
run stopped by Ctrl-C or SIGTERM keeps every finished repetition, writes
nothing for the ones it cut off (their partial files stay for a look, and
--resume replaces them), records the stop in run.json ("status":
"interrupted", and an entry in "interruptions"), lists each unfinished
repetition in junit.xml as an error of type "interrupted" (CI never sees a
partial run as a pass), and exits 130.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__, arches, atomic, results
from harness.config.load import Config
from harness.errors import EXIT_FAILURES, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, UsageError
from harness.kernel.build import BuildInterrupted
from harness.machine.guest import BootFn
from harness.model import Cell, TestResult, worst
from harness.results import RepRecord, RunResult
from harness.run import building, junit, parallel, report, shard
from harness.run.cell import run_repetition
from harness.run.parallel import Budget, Stop
from harness.run.progress import Progress, Silent
from harness.workloads import Workload
from harness.workloads import load as load_workload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    output: Path | None = None  # the result directory; default results/<name>-<time>
    results_root: Path = Path("results")
    accel: str = "auto"
    jobs: int | None = None  # guests at once; None: as many as the host's cores and memory allow
    shard: shard.Shard | None = None


@dataclass
class RunOutcome:
    """What the CLI needs after a run: where, what finished, what did not, and whether it was stopped."""

    path: Path
    records: list[RepRecord]  # finished repetitions (on resume, the earlier ones too)
    unfinished: list[RepRecord] = field(default_factory=list)  # stand-ins, status "interrupted"
    interrupted: str = ""  # why the run stopped early ("SIGTERM"); empty if it ran to the end

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return exit_code_of(self.records + self.unfinished)


def exit_code_of(records: list[RepRecord]) -> int:
    """design.md: 0 all good, 1 the kernel's failures, 3 ours (or results missing)."""
    statuses = {r.status for r in records}
    if statuses & {"error", "interrupted"}:
        return EXIT_INFRA
    if "fail" in statuses:
        return EXIT_FAILURES
    return EXIT_OK


def default_run_dir(config: Config, root: Path, part: shard.Shard | None = None) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-shard{part.index}of{part.count}" if part else ""
    return root / f"{config.name}-{stamp}{suffix}"


def run(config: Config, opts: RunOptions, boot: BootFn, progress: Progress | None = None,
        stop: Stop | None = None) -> RunOutcome:
    """Run the config (or its shard) into a new result directory."""
    out = opts.output or default_run_dir(config, opts.results_root, opts.shard)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty",
                         "choose another --output, remove it, or continue it with --resume")
    out.mkdir(parents=True, exist_ok=True)
    cells = shard.select(config.cells, opts.shard)
    doc = run_doc(config, opts.shard)
    todo = [(c, r) for c in cells for r in range(c.repeat)]
    return execute(config, cells, out, doc, todo, boot, opts, progress or Silent(), stop or Stop())


def run_doc(config: Config, part: shard.Shard | None) -> dict[str, Any]:
    """run.json before anything ran; `cells` lists only this run's (shard's) cells."""
    return {
        "format": results.RESULT_FORMAT,
        "status": "running",
        "name": config.name,
        "config_path": str(config.path),
        "config": config.to_json(),
        "started": now_iso(),
        "finished": None,
        "host": host_facts(),
        "tools": _tools(),
        "shard": part.to_json() if part else None,
        "interruptions": [],
        "resumed": [],
        "cells": [cell_entry(c, None) for c in shard.select(config.cells, part)],
    }


def execute(config: Config, cells: tuple[Cell, ...], out: Path, doc: dict[str, Any],
            todo: list[tuple[Cell, int]], boot: BootFn, opts: RunOptions, progress: Progress,
            stop: Stop) -> RunOutcome:
    """Run `todo` (some repetitions of `cells`) into `out`, then the reports; run and resume share it."""
    workloads = _workloads(config)
    budget = Budget.from_host(opts.jobs)
    doc["budget"] = {"cores": budget.cores, "memory_mib": budget.memory_mib, "jobs": budget.jobs}
    with contextlib.suppress(BuildInterrupted):  # stopped: nothing boots, and the stop is recorded below
        building.prepare([c for c, _ in todo], progress.note, stop)  # source kernels, before any boot
    doc["status"] = "running"
    atomic.write_json(out / results.RUN_FILE, doc)

    def rep_fn(cell: Cell, rep: int) -> RepRecord:
        return run_repetition(cell, rep, out, workloads, boot,
                              progress=lambda phase: progress.phase(cell, rep, phase), stopping=stop)

    total = sum(c.repeat for c in cells)
    progress.begin(total, total - len(todo))
    progress.note(f"{len(todo)} repetition(s) of {len(cells)} cell(s); up to "
                  f"{budget.most_at_once([c for c, _ in todo])} guest(s) at once ({budget.describe()})")
    try:
        executed = parallel.execute(todo, rep_fn, budget, stop, progress)
    finally:
        progress.end()
    if stop():
        doc.setdefault("interruptions", []).append({
            "at": now_iso(), "reason": stop.reason,
            "cut_off": [{"cell": c, "rep": r} for c, r in executed.cut_off],
            "not_started": len(executed.not_started),
        })
    doc["status"] = "interrupted" if stop() else "finished"
    doc["finished"] = None if stop() else now_iso()
    finished, unfinished = finish(out, doc)
    if executed.failure is not None:
        raise executed.failure
    return RunOutcome(out, finished, unfinished, stop.reason if stop() else "")


def finish(out: Path, doc: dict[str, Any]) -> tuple[list[RepRecord], list[RepRecord]]:
    """run.json with each cell's status, then junit.xml and report.html, all from disk."""
    loaded = results.load_run(out)
    finished, unfinished = records_of(loaded, doc)
    statuses: dict[str, list[str]] = {}
    for r in finished + unfinished:
        statuses.setdefault(r.cell_id, []).append(r.status)
    for entry in doc["cells"]:
        entry["status"] = worst(statuses.get(entry["id"], []))
    atomic.write_json(out / results.RUN_FILE, doc)
    loaded.run = doc
    _write_reports(loaded, finished, unfinished)
    return finished, unfinished


def write_reports(run_dir: Path) -> tuple[list[RepRecord], list[RepRecord]]:
    """junit.xml and report.html from what is on disk (so merge and resume can call it too)."""
    loaded = results.load_run(run_dir)
    finished, unfinished = records_of(loaded, loaded.run)
    _write_reports(loaded, finished, unfinished)
    return finished, unfinished


def _write_reports(loaded: RunResult, finished: list[RepRecord], unfinished: list[RepRecord]) -> None:
    metrics = {(r.record.cell_id, r.record.rep): r.metrics for r in loaded.reps}
    junit.write(loaded.path / "junit.xml",
                [(r, metrics.get((r.cell_id, r.rep), [])) for r in finished + unfinished])
    report.write(loaded.path / "report.html", loaded, unfinished)


def records_of(loaded: RunResult, doc: dict[str, Any]) -> tuple[list[RepRecord], list[RepRecord]]:
    """Finished records in run.json's cell order, and a stand-in for every repetition missing.

    A repetition run.json expects but without cell.json is never left out
    silently: it becomes an "interrupted" record saying why and what to do.
    """
    on_disk = {(r.record.cell_id, r.record.rep): r.record for r in loaded.reps}
    finished: list[RepRecord] = []
    unfinished: list[RepRecord] = []
    why = unfinished_reason(doc, loaded.path)
    for entry in doc.get("cells", []):
        for rep in range(int(entry.get("repeat", 1))):
            rec = on_disk.pop((entry["id"], rep), None)
            if rec is not None:
                finished.append(rec)
            else:
                unfinished.append(RepRecord(
                    cell_id=entry["id"], slug=entry.get("slug", entry["id"]), axes=dict(entry.get("axes", {})),
                    rep=rep, status="interrupted", reason=f"not finished: {why.split(';')[0]}",
                    tests=[TestResult("run", "interrupted", f"not finished: {why}")],
                ))
    finished += on_disk.values()  # on disk but not listed (should not happen): still reported
    return finished, unfinished


def unfinished_reason(doc: dict[str, Any], run_dir: Path) -> str:
    """Why repetitions are missing, and what to do, from what run.json says happened."""
    status = doc.get("status")
    if doc.get("merged_from"):
        return "none of the merged runs has this repetition (a shard missing or interrupted)"
    resume = f"`kharness run --resume {run_dir}` runs it"
    if status == "interrupted":
        stops = doc.get("interruptions") or [{}]
        return f"the run was interrupted ({stops[-1].get('reason', '?')}); {resume}"
    if status == "running":
        return f"the run was killed or is still running; {resume}"
    return f"no cell.json on disk; {resume}"




def _workloads(config: Config) -> dict[str, Workload]:
    names = {w.name for c in config.cells for w in c.workloads}
    return {n: load_workload(n, tuple(config.workload_dirs)) for n in sorted(names)}


def cell_entry(cell: Cell, status: str | None) -> dict[str, Any]:
    return {"id": cell.id, "slug": cell.slug, "axes": dict(cell.axes), "repeat": cell.repeat, "status": status}


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def host_facts() -> dict[str, Any]:
    return {"hostname": platform.node(), "machine": platform.machine(), "kernel": platform.release(),
            "python": sys.version.split()[0], "user": getpass.getuser()}


def _tools() -> dict[str, str]:
    """kharness's version and each QEMU's; the QEMUs are asked at once (60 ms each here, at every run's start)."""
    versions = {"kharness": __version__}
    asked: dict[str, subprocess.Popen[str]] = {}
    for binary in sorted({p.qemu for p in arches.presets().values()}):
        try:
            asked[binary] = subprocess.Popen([binary, "--version"], stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        except OSError:
            continue
    for binary, proc in asked.items():
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            continue
        m = re.search(r"version (\S+)", out)
        versions[binary] = m.group(1) if m else out.strip()[:60]
    return versions
