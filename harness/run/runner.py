"""A whole run: cells x repetitions into one result directory, then reports.

run.json is written first (status "running") and rewritten at the end, so a
run killed at any point leaves a directory that says what it was and which
repetitions finished (those with a cell.json).
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__, atomic, results
from harness.config.load import Config
from harness.errors import EXIT_FAILURES, EXIT_INFRA, EXIT_OK, UsageError
from harness.model import Cell
from harness.results import RepRecord
from harness.run import junit
from harness.run.cell import BootFn, run_repetition
from harness.workloads import Workload
from harness.workloads import load as load_workload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    output: Path | None = None  # the result directory; default results/<name>-<time>
    results_root: Path = Path("results")
    accel: str = "auto"


@dataclass
class RunOutcome:
    path: Path
    records: list[RepRecord]

    @property
    def exit_code(self) -> int:
        statuses = {r.status for r in self.records}
        if statuses & {"error", "interrupted"}:
            return EXIT_INFRA
        if "fail" in statuses:
            return EXIT_FAILURES
        return EXIT_OK


def default_run_dir(config: Config, root: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / f"{config.name}-{stamp}"


def run(config: Config, opts: RunOptions, boot: BootFn,
        progress: Callable[[str], None] = lambda s: None) -> RunOutcome:
    out = opts.output or default_run_dir(config, opts.results_root)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", "choose another --output or remove it")
    out.mkdir(parents=True, exist_ok=True)
    workloads = _workloads(config)
    started = time.time()
    _write_run_json(out, config, opts, "running", started, {})
    records: list[RepRecord] = []
    total = sum(c.repeat for c in config.cells)
    done = 0
    for cell in config.cells:
        for rep in range(cell.repeat):
            done += 1
            tag = f"[{done}/{total}] {cell.slug}#{rep}"
            progress(f"{tag}: start")
            record = run_repetition(cell, rep, out, workloads, boot, progress=_prefixed(progress, tag))
            progress(f"{tag}: {record.status}" + (f" ({record.reason})" if record.reason else ""))
            records.append(record)
    write_reports(out)
    _write_run_json(out, config, opts, "finished", started, {r.cell_id: r.status for r in records})
    return RunOutcome(out, records)


def _prefixed(progress: Callable[[str], None], tag: str) -> Callable[[str], None]:
    return lambda phase: progress(f"{tag}: {phase}")


def write_reports(run_dir: Path) -> None:
    """junit.xml from what is on disk (so merge and resume can call it too)."""
    loaded = results.load_run(run_dir)
    junit.write(run_dir / "junit.xml", [(r.record, r.metrics) for r in loaded.reps])


def _workloads(config: Config) -> dict[str, Workload]:
    names = {w.name for c in config.cells for w in c.workloads}
    return {n: load_workload(n, tuple(config.workload_dirs)) for n in sorted(names)}


def _write_run_json(out: Path, config: Config, opts: RunOptions, status: str, started: float,
                    statuses: dict[str, str]) -> None:
    atomic.write_json(out / results.RUN_FILE, {
        "format": results.RESULT_FORMAT,
        "status": status,
        "name": config.name,
        "config_path": str(config.path),
        "config": config.to_json(),
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
        "finished": dt.datetime.now(dt.UTC).isoformat() if status == "finished" else None,
        "host": _host(),
        "tools": _tools(),
        "cells": [_cell_entry(c, statuses) for c in config.cells],
    })


def _cell_entry(cell: Cell, statuses: dict[str, str]) -> dict[str, Any]:
    return {"id": cell.id, "slug": cell.slug, "axes": dict(cell.axes), "repeat": cell.repeat,
            "status": statuses.get(cell.id)}


def _host() -> dict[str, Any]:
    return {"hostname": platform.node(), "machine": platform.machine(), "kernel": platform.release(),
            "python": sys.version.split()[0], "user": getpass.getuser()}


def _tools() -> dict[str, str]:
    versions = {"kharness": __version__}
    for binary in ("qemu-system-x86_64", "qemu-system-aarch64"):
        try:
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.search(r"version (\S+)", out)
        versions[binary] = m.group(1) if m else out.strip()[:60]
    return versions
