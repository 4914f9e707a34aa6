"""The result directory: a contract that run writes and compare/merge/bisect read.

    <run>/run.json                      config, host, tool versions, cells + status
    <run>/junit.xml                     derived from the cell.json files
    <run>/report.html
    <run>/cells/<cell-id>/<rep>/cell.json
    <run>/cells/<cell-id>/<rep>/metrics.json
    <run>/cells/<cell-id>/<rep>/console.log
    <run>/cells/<cell-id>/<rep>/raw/...

Every JSON file carries "format": RESULT_FORMAT. Files are written
atomically; a repetition is finished when its cell.json exists (it is written
last), so a killed run leaves no repetition that looks finished but is not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import atomic
from harness.errors import ResultsError
from harness.model import STATUS_ORDER, Metric, TestResult

RESULT_FORMAT = 1
CELL_FILE = "cell.json"
METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"


@dataclass
class RepRecord:
    """What cell.json holds for one repetition of one cell."""

    cell_id: str
    slug: str
    axes: dict[str, Any]
    rep: int
    status: str
    reason: str = ""
    kernel: dict[str, Any] = field(default_factory=dict)
    qemu: dict[str, Any] = field(default_factory=dict)  # argv, accelerator, version
    timings: dict[str, float] = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = RESULT_FORMAT
        return d


@dataclass
class RepResult:
    record: RepRecord
    metrics: list[Metric]
    path: Path


@dataclass
class RunResult:
    path: Path
    run: dict[str, Any]
    reps: list[RepResult]

    def cells(self) -> dict[str, list[RepResult]]:
        out: dict[str, list[RepResult]] = {}
        for r in self.reps:
            out.setdefault(r.record.cell_id, []).append(r)
        return out


def rep_dir(run_dir: Path, cell_id: str, rep: int) -> Path:
    return run_dir / "cells" / cell_id / str(rep)


def write_metrics(path: Path, metrics: list[Metric]) -> None:
    atomic.write_json(
        path / METRICS_FILE,
        {"format": RESULT_FORMAT, "metrics": [asdict(m) for m in metrics]},
    )


def write_record(path: Path, record: RepRecord) -> None:
    """Write cell.json: the mark that this repetition is finished."""
    atomic.write_json(path / CELL_FILE, record.to_json())


def _load_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing", "is the run finished? resume it or rerun") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})",
                           "the file is truncated or corrupt; rerun that cell") from exc
    if not isinstance(value, dict):
        raise ResultsError(f"{path}: not a JSON object", "the file is corrupt; rerun that cell")
    fmt = value.get("format")
    if fmt != RESULT_FORMAT:
        raise ResultsError(
            f"{path}: result format {fmt!r}, this kharness reads {RESULT_FORMAT}",
            "use the kharness version that wrote it",
        )
    return value


def load_record(path: Path) -> RepRecord:
    d = _load_json(path / CELL_FILE)
    try:
        tests = [TestResult(**t) for t in d.get("tests", [])]
        rec = RepRecord(
            cell_id=str(d["cell_id"]), slug=str(d["slug"]), axes=dict(d["axes"]), rep=int(d["rep"]),
            status=str(d["status"]), reason=str(d.get("reason", "")), kernel=dict(d.get("kernel", {})),
            qemu=dict(d.get("qemu", {})), timings=dict(d.get("timings", {})), tests=tests,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{path / CELL_FILE}: malformed ({exc})", "rerun that cell") from exc
    if rec.status not in STATUS_ORDER:
        raise ResultsError(f"{path / CELL_FILE}: unknown status {rec.status!r}", "rerun that cell")
    return rec


def load_metrics(path: Path) -> list[Metric]:
    d = _load_json(path / METRICS_FILE)
    try:
        return [Metric(**m) for m in d["metrics"]]
    except (KeyError, TypeError) as exc:
        raise ResultsError(f"{path / METRICS_FILE}: malformed ({exc})", "rerun that cell") from exc


def load_run(run_dir: Path) -> RunResult:
    """Read a whole result directory; ResultsError names the first bad file."""
    if not run_dir.is_dir():
        raise ResultsError(f"{run_dir}: not a directory", "give a result directory written by kharness run")
    run = _load_json(run_dir / RUN_FILE)
    reps: list[RepResult] = []
    cells = run_dir / "cells"
    for cell_dir in sorted(cells.iterdir()) if cells.is_dir() else []:
        for rd in sorted(p for p in cell_dir.iterdir() if p.is_dir()):
            if not (rd / CELL_FILE).exists():
                continue  # unfinished repetition (a killed run): not a result
            record = load_record(rd)
            metrics = load_metrics(rd) if (rd / METRICS_FILE).exists() else []
            reps.append(RepResult(record, metrics, rd))
    return RunResult(run_dir, run, reps)
