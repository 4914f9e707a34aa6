"""`kharness run CONFIG`: run every cell of a config into a result directory.

Also `--shard K/N` (this job's share of the cells, for CI matrices) and
`--resume DIR` (finish what an interrupted run left). Ctrl-C or SIGTERM
stops the guests within seconds, keeps what finished and exits 130.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from contextlib import AbstractContextManager
from pathlib import Path

from harness.config.cli import locate
from harness.config.load import load
from harness.errors import UsageError
from harness.machine.guest import Booted
from harness.model import Cell
from harness.run import shard, summary
from harness.run.boot import boot_cell
from harness.run.parallel import Stop, on_signals
from harness.run.progress import for_terminal
from harness.run.resume import recorded_config, resume
from harness.run.runner import RunOptions, RunOutcome, run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, nargs="?",
                   help="the YAML config (e.g. configs/quick.yaml, or a shipped one by name: quick); "
                        "with --resume, default: the run's own")
    p.add_argument("-o", "--output", type=Path, help="result directory (default results/<name>-<time>)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="accelerator: auto probes KVM and falls back to TCG (default auto)")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="guests at once (default: as many as host cores and memory hold, "
                        "one core per guest vCPU)")
    p.add_argument("--shard", metavar="K/N", help="run only shard K of N (deterministic by cell id; for CI matrices)")
    p.add_argument("--resume", type=Path, metavar="DIR",
                   help="finish the run in DIR: only repetitions without a cell.json (same config required)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


def main(args: argparse.Namespace) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give 1 or more")
    if args.resume is not None and args.output is not None:
        raise UsageError("--resume continues DIR in place; -o does not apply", "leave out -o")
    config_path = args.config
    if config_path is None:
        if args.resume is None:
            raise UsageError("no CONFIG given", "e.g. kharness run configs/quick.yaml")
        config_path = recorded_config(args.resume)
    config = load(locate(config_path))
    part = shard.parse(args.shard) if args.shard else None
    opts = RunOptions(output=args.output, accel=args.accel, jobs=args.jobs, shard=part)
    color = getattr(args, "color", "auto")
    progress = for_terminal(args.quiet, color=color)

    def boot(cell: Cell, path: Path) -> AbstractContextManager[Booted]:
        return boot_cell(cell, path, opts.accel, config.workload_dirs)

    with on_signals(Stop()) as stop:
        if args.resume is not None:
            outcome = resume(config, args.resume, opts, boot, progress, stop)
        else:
            outcome = run(config, opts, boot, progress, stop)
    summary.print_summary(outcome.path, outcome.records + outcome.unfinished, color=color)
    _interrupted_hint(outcome)
    return outcome.exit_code


def _interrupted_hint(outcome: RunOutcome) -> None:
    if not outcome.interrupted:
        return
    total = len(outcome.records) + len(outcome.unfinished)
    print(f"kharness: interrupted ({outcome.interrupted}): {len(outcome.records)} of {total} repetitions "
          f"finished; continue with: kharness run --resume {shlex.quote(str(outcome.path))}",
          file=sys.stderr)
