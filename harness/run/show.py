"""`kharness show RUN [--format table|json]`: a run's summary again, from its directory.

The same table `kharness run` ends with (harness/run/summary.py), read back
from disk: every repetition run.json expects, finished or not (an
unfinished one is listed as interrupted, with what to do). `--format json`
gives the same rows for scripts, with the run's status and counts. The
directory is read through harness.results, which names the first bad file
(exit 2). The exit code is the run's verdict, as `kharness merge` gives it:
0 all passed, 1 kernel failures, 3 errors or unfinished repetitions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness import results
from harness.run import runner, summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN",
                   help="a result directory (kharness run -o DIR, or results/<name>-<time>)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default; box drawing only on a terminal) or json")


def main(args: argparse.Namespace) -> int:
    loaded = results.load_run(args.run_dir)
    finished, unfinished = runner.records_of(loaded, loaded.run)
    records = finished + unfinished
    if args.format == "json":
        print(json.dumps(document(args.run_dir, loaded.run, records), indent=2))
    else:
        summary.print_summary(args.run_dir, records, color=getattr(args, "color", "auto"))
    return runner.exit_code_of(records)


def document(run_dir: Path, run: dict[str, Any], records: list[results.RepRecord]) -> dict[str, Any]:
    return {
        "path": str(run_dir),
        **{key: run.get(key) for key in ("name", "status", "started", "finished", "shard")},
        "counts": summary.counts(records),
        "exit_code": runner.exit_code_of(records),
        "repetitions": summary.rows(run_dir, records),
    }
