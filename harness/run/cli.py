"""`kharness run CONFIG`: run every cell of a config into a result directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.config.load import load
from harness.run import summary
from harness.run.boot import boot_cell
from harness.run.runner import RunOptions, run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="the YAML config (e.g. configs/quick.yaml)")
    p.add_argument("-o", "--output", type=Path, help="result directory (default results/<name>-<time>)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="accelerator: auto probes KVM and falls back to TCG (default auto)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


def main(args: argparse.Namespace) -> int:
    config = load(args.config)

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    opts = RunOptions(output=args.output, accel=args.accel)
    outcome = run(config, opts, lambda cell, path: boot_cell(cell, path, opts.accel, config.workload_dirs),
                  progress)
    summary.print_summary(outcome.path, outcome.records)
    return outcome.exit_code
