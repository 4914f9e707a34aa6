"""The judgement options `check` and `bisect` share, and how they become a Judge.

Reference runs (`--closer-to-bad`) are read here, once: the judge keeps only
the two means, so judging stays pure and a resumed bisection judges with the
numbers it started with.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from harness import results
from harness.bisect.judge import (
    EXPR_EXAMPLE,
    RULE_HELP,
    RULES,
    ExpectationRule,
    Judge,
    ReferenceRule,
    Rule,
    console_rule,
    parse_expression,
    parse_metric,
)
from harness.errors import UsageError

USABLE = ("pass", "fail")  # a failed repetition is still the kernel's figures
REPEAT_MAX = 100


def add_judge_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("judgement (a repetition is bad if any of these says so; "
                             "with none, a failed cell is bad)")
    g.add_argument("--bad-if", action="append", default=[], metavar="EXPR",
                   help=f"a metric threshold [WORKLOAD:]METRIC OP NUMBER, e.g. {EXPR_EXAMPLE}")
    g.add_argument("--bad-if-console", action="append", default=[], metavar="REGEX",
                   help="a regular expression found in the serial console, e.g. 'WARNING: CPU:'")
    g.add_argument("--bad-if-expectation", action="append", default=[], metavar="NAME",
                   help="a config expectation (name or glob; '*' any) that failed")
    g.add_argument("--closer-to-bad", metavar="[WORKLOAD:]METRIC",
                   help="bad if the metric is closer to the mean of --bad-run than of --good-run")
    g.add_argument("--good-run", metavar="DIR[:CELL]", help="result directory of a good run (its only cell, or CELL)")
    g.add_argument("--bad-run", metavar="DIR[:CELL]", help="result directory of a bad run (its only cell, or CELL)")
    g.add_argument("--repeat", type=int, metavar="N", help="boots per test (default 1)")
    rules = "; ".join(f"{r}: {h}" for r, h in RULE_HELP.items())
    g.add_argument("--rule", choices=RULES, help=f"how N repetitions decide ({rules}); default majority")


def judge_from_args(args: argparse.Namespace) -> Judge:
    """The Judge the options describe; UsageError for a bad expression or reference."""
    metrics = tuple(parse_expression(e) for e in args.bad_if)
    consoles = tuple(console_rule(p) for p in args.bad_if_console)
    exps = tuple(ExpectationRule(n) for n in args.bad_if_expectation)
    refs = (reference(args.closer_to_bad, args.good_run, args.bad_run),) if args.closer_to_bad else ()
    if not args.closer_to_bad and (args.good_run or args.bad_run):
        raise UsageError("--good-run and --bad-run are references for --closer-to-bad",
                         "add --closer-to-bad METRIC")
    return Judge(metrics, consoles, exps, refs)


def repeat_and_rule(args: argparse.Namespace) -> tuple[int, Rule]:
    repeat = 1 if args.repeat is None else args.repeat
    if not 1 <= repeat <= REPEAT_MAX:
        raise UsageError(f"--repeat {repeat} is out of range", f"give 1..{REPEAT_MAX}")
    rule: Rule = args.rule or "majority"
    return repeat, rule


def reference(metric_text: str, good: str | None, bad: str | None) -> ReferenceRule:
    if not good or not bad:
        raise UsageError("--closer-to-bad needs both --good-run and --bad-run", "give two result directories")
    workload, metric = parse_metric(metric_text)
    good_values, bad_values = _values(good, metric), _values(bad, metric)
    shared = sorted(set(good_values) & set(bad_values))
    if workload is not None:
        shared = [w for w in shared if w == workload]
    if len(shared) != 1:
        where = f"workloads {', '.join(shared)}" if shared else "no workload of both runs"
        raise UsageError(f"{metric} is reported by {where}",
                         f"name one workload measured in both runs: --closer-to-bad WORKLOAD:{metric}")
    wl = shared[0]
    return ReferenceRule(metric, wl, statistics.fmean(good_values[wl]), statistics.fmean(bad_values[wl]))


def _values(ref: str, metric: str) -> dict[str, list[float]]:
    """Workload -> the metric's values over the usable repetitions of the reference cell."""
    path, cell = _split_ref(ref)
    run = results.load_run(path)
    cells = run.cells()
    if cell is None and len(cells) != 1:
        raise UsageError(f"{path} has {len(cells)} cells", f"name one: {path}:CELL (an id or slug)")
    chosen = [reps for cid, reps in cells.items() if cell in (None, cid, reps[0].record.slug)]
    if len(chosen) != 1:
        raise UsageError(f"{path} has no single cell {cell!r}", "give a cell id or slug of that run")
    out: dict[str, list[float]] = {}
    for rep in chosen[0]:
        if rep.record.status in USABLE:
            for m in rep.metrics:
                if m.name == metric:
                    out.setdefault(m.workload, []).append(m.value)
    if not out:
        raise UsageError(f"{path}: no usable repetition measured {metric}", "give a run that measured it")
    return out


def _split_ref(ref: str) -> tuple[Path, str | None]:
    if Path(ref).is_dir() or ":" not in ref:
        return Path(ref), None
    head, cell = ref.rsplit(":", 1)
    return Path(head), cell
