"""One trial: a one-cell config run N times into a result directory, then judged.

Both `check` and each step of `bisect` are a trial. The repetitions are a
normal run (`harness.run.runner`), so a trial's directory is a result
directory like any other: `kharness compare` reads it, and a good step can
be compared with a bad one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import results
from harness.bisect.judge import Decision, Judge, RepVerdict, RepView, Rule, Verdict, decide, judge_rep
from harness.config.load import Config
from harness.errors import EXIT_INTERRUPTED, KharnessError
from harness.machine.guest import BootFn
from harness.results import RepRecord
from harness.run.boot import boot_cell
from harness.run.parallel import Stop
from harness.run.progress import Progress
from harness.run.runner import RunOptions, run

CONSOLE_READ_LIMIT = 64 * 1024 * 1024

Booter = Callable[[Config], BootFn]  # the boot function for a config's cells


class TrialInterrupted(KharnessError):
    """Ctrl-C or SIGTERM cut a trial short: it has no verdict, and is not recorded."""

    exit_code = EXIT_INTERRUPTED


@dataclass(frozen=True)
class TrialResult:
    """A trial's verdict, the verdict of each repetition, and where its files are."""

    verdict: Verdict
    reason: str
    reps: tuple[RepVerdict, ...] = ()
    cell_id: str = ""
    slug: str = ""
    run_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "cell_id": self.cell_id,
                "slug": self.slug, "run_dir": self.run_dir,
                "reps": [{"verdict": r.verdict, "reason": r.reason} for r in self.reps]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrialResult:
        return cls(d["verdict"], d["reason"], tuple(RepVerdict(r["verdict"], r["reason"]) for r in d["reps"]),
                   d.get("cell_id", ""), d.get("slug", ""), d.get("run_dir", ""))


def real_boot(accel: str) -> Booter:
    """Boot under QEMU, with the config's workload folders."""
    return lambda config: lambda cell, path: boot_cell(cell, path, accel, config.workload_dirs)


def run_trial(config: Config, out: Path, judge: Judge, rule: Rule, booter: Booter,
              progress: Progress | None = None, stop: Stop | None = None,
              jobs: int | None = None) -> TrialResult:
    """Run the config's one cell (`repeat` times, side by side if the host can) into `out`, judge it."""
    outcome = run(config, RunOptions(output=out, jobs=jobs), booter(config), progress, stop)
    if outcome.interrupted:
        raise TrialInterrupted(f"interrupted ({outcome.interrupted}) during {out}",
                               "the step will be run again on --resume")
    verdicts = tuple(judge_rep(judge, rep_view(out, r)) for r in outcome.records)
    decision = decide([v.verdict for v in verdicts], rule)
    cell = config.cells[0]
    return TrialResult(decision.verdict, _reason(decision, verdicts), verdicts, cell.id, cell.slug, str(out))


def rep_view(run_dir: Path, record: RepRecord) -> RepView:
    """What judging needs of a finished repetition, read from its directory."""
    path = results.rep_dir(run_dir, record.cell_id, record.rep)
    metrics = results.load_metrics(path) if (path / results.METRICS_FILE).exists() else []
    return RepView(record.status, record.reason, tuple(record.tests), tuple(metrics), _console(path))


def _console(path: Path) -> str:
    try:
        with (path / "console.log").open("rb") as f:
            return f.read(CONSOLE_READ_LIMIT).decode(errors="replace")
    except OSError:
        return ""


def _reason(decision: Decision, verdicts: tuple[RepVerdict, ...]) -> str:
    """The counts, then the first repetition that agrees with the verdict."""
    agreeing = next((v.reason for v in verdicts if v.verdict == decision.verdict), "")
    return f"{decision.reason}: {agreeing}" if agreeing else decision.reason
