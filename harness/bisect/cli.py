"""`kharness bisect --good A --bad B`: which settings turn a good cell into a bad one.

    kharness bisect --config c.yaml --good trixie-arm64 --bad trixie-arm64.mem2048.nc.slub \\
        --bad-if 'dd-direct:swiotlb.bounces > 0' -o results/why-bounces

A and B are cells of --config (by id or slug), or configs (their only
cell, or CONFIG:CELL). Both ends are tested first; then ddmin narrows the
keys in which they differ to a minimal set that causes the problem (one key,
or several that only do it together); then that set is run once more. Every
step is a trial of its own directory; bisect.json is saved after each, and
`--resume -o DIR` carries on after an interruption with the same answer.

Exit 0: a minimal set, confirmed. 1: no answer (an end does not hold, or
the answer did not reproduce). 2: bad arguments. 3: an end could not be
tested at all (infrastructure). 130: interrupted (resume it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import atomic
from harness.bisect import cells, keys, report, search
from harness.bisect import state as st
from harness.bisect.judge import Judge, Rule
from harness.bisect.options import add_judge_arguments, judge_from_args, repeat_and_rule
from harness.bisect.trial import Booter, TrialResult, real_boot, run_trial
from harness.config.load import Config, load
from harness.errors import EXIT_FAILURES, EXIT_INFRA, EXIT_OK, ConfigError, UsageError
from harness.model import Cell
from harness.run.parallel import Stop, on_signals
from harness.run.progress import Progress, for_terminal


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--good", metavar="CELL|CONFIG[:CELL]", help="the cell without the problem")
    p.add_argument("--bad", metavar="CELL|CONFIG[:CELL]", help="the cell with the problem")
    p.add_argument("--config", type=Path, help="the config --good and --bad name cells of")
    add_judge_arguments(p)
    p.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="the bisection's directory (default results/bisect-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="carry on the bisection in -o DIR (its question is read from there)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto", help="accelerator (default auto)")
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="guests at once within a step (default: what fits)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the step lines and the report")


@dataclass(frozen=True)
class Setup:
    """Everything a bisection needs, rebuilt from its question (so resume rebuilds it the same)."""

    question: dict[str, Any]
    good: Cell
    bad: Cell
    space: keys.Space
    origin: cells.Origin
    judge: Judge
    repeat: int
    rule: Rule


def main(args: argparse.Namespace) -> int:
    return bisect(args, real_boot(args.accel))


def bisect(args: argparse.Namespace, booter: Booter) -> int:
    root, state = _open(args)
    setup = _setup(state.question)
    _say(f"{len(setup.space.keys)} keys differ: "
        + "; ".join(keys.describe(setup.space, k.name) for k in setup.space.keys))
    progress = for_terminal(args.quiet, color=getattr(args, "color", "auto"))
    with on_signals(Stop()) as stop:
        def trial(index: int, role: st.Role, chosen: tuple[str, ...]) -> TrialResult:
            return _trial(root, setup, index, role, chosen, booter, progress, stop, args.jobs)

        answer = search.bisect([k.name for k in setup.space.keys], state,
                               trial, lambda s: st.save(root, s), _say)
    text = report.render(setup.space, answer, state.steps, state.question, setup.judge.describe())
    atomic.write_text(root / st.REPORT_FILE, text)
    print(text, end="")
    print(f"kharness bisect: {answer.message}; report in {root / st.REPORT_FILE}", file=sys.stderr)
    if answer.outcome == "found":
        return EXIT_OK
    return EXIT_INFRA if answer.untestable_end else EXIT_FAILURES


def _say(line: str) -> None:
    """Step lines go to stderr even with -q: they are the bisection's progress."""
    print(f"kharness bisect: {line}", file=sys.stderr, flush=True)


def _open(args: argparse.Namespace) -> tuple[Path, st.State]:
    """A new bisection from the arguments, or the one in -o DIR to resume."""
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give 1 or more")
    if not args.resume:
        root = args.output or Path("results") / f"bisect-{dt.datetime.now():%Y%m%d-%H%M%S}"
        return root, st.start(root, _question(args))
    if args.output is None:
        raise UsageError("--resume needs the bisection's directory", "give -o DIR")
    state = st.load(args.output)
    _same_question(args, state.question)
    st.clear_unfinished(args.output, state)
    return args.output, state


def _question(args: argparse.Namespace) -> dict[str, Any]:
    if not args.good or not args.bad:
        raise UsageError("a bisection needs --good and --bad", "name two cells (id or slug) or two configs")
    judge = judge_from_args(args)
    repeat, rule = repeat_and_rule(args)
    loaded: dict[Path, Config] = {}
    good = _ref(args.good, args.config, loaded, "--good")
    bad = _ref(args.bad, args.config, loaded, "--bad")
    question = {"good": good, "bad": bad, "judge": judge.to_json(), "repeat": repeat, "rule": rule,
                "good_cell": good["cell"], "bad_cell": bad["cell"]}
    question["space"] = _setup(question, loaded).space.to_json()
    return question


def _ref(text: str, config: Path | None, loaded: dict[Path, Config], flag: str) -> dict[str, str]:
    """CELL (of --config), CONFIG (its only cell) or CONFIG:CELL -> {config, cell id}."""
    path, cell = _split(text, config, flag)
    chosen = cells.pick(_load(path, loaded), cell)
    return {"config": str(path), "cell": chosen.id}


def _split(text: str, config: Path | None, flag: str) -> tuple[Path, str | None]:
    if Path(text).is_file():
        return Path(text).absolute(), None
    head, _, cell = text.rpartition(":")
    if head and Path(head).is_file():
        return Path(head).absolute(), cell
    if config is None:
        raise UsageError(f"{flag} {text!r} is not a config file", "name a cell with --config CONFIG, or give a config")
    return config.absolute(), text


def _load(path: Path, loaded: dict[Path, Config]) -> Config:
    if path not in loaded:
        loaded[path] = load(path)
    return loaded[path]


def _same_question(args: argparse.Namespace, question: dict[str, Any]) -> None:
    """On resume, arguments given again must ask the same question."""
    given = any((args.good, args.bad, args.config, args.bad_if, args.bad_if_console,
                 args.bad_if_expectation, args.closer_to_bad, args.repeat, args.rule))
    if not given:
        return
    again = _question(args)
    differ = [k for k in ("good", "bad", "judge", "repeat", "rule") if again[k] != question[k]]
    if differ:
        raise UsageError(f"--resume: this bisection was started with another {', '.join(differ)}",
                         "leave the question out with --resume (it is read from the directory)")


def _setup(question: dict[str, Any], loaded: dict[Path, Config] | None = None) -> Setup:
    loaded = {} if loaded is None else loaded
    good_config = _load(Path(question["good"]["config"]), loaded)
    bad_config = _load(Path(question["bad"]["config"]), loaded)
    good = cells.pick(good_config, question["good"]["cell"])
    bad = cells.pick(bad_config, question["bad"]["cell"])
    sp = keys.space(good, bad)
    if "space" in question and sp.to_json() != question["space"]:
        raise UsageError("the configs changed since this bisection began: the cells differ in other keys",
                         "start a new bisection (another -o)")
    org = cells.origin([good_config] if good_config is bad_config else [good_config, bad_config])
    return Setup(question, good, bad, sp, org, Judge.from_json(question["judge"]),
                 int(question["repeat"]), question["rule"])


def _trial(root: Path, setup: Setup, index: int, role: st.Role, chosen: tuple[str, ...], booter: Booter,
           progress: Progress, stop: Stop, jobs: int | None) -> TrialResult:
    """One step: the candidate as a one-cell config, run and judged in its own directory."""
    where = st.step_dir(root, index, role)
    doc = cells.document(setup.origin, setup.space.settings(keys.apply(setup.space, chosen)),
                         f"bisect-step-{index + 1:02d}", setup.repeat,
                         cells.widest(setup.good.timeouts, setup.bad.timeouts))
    shown = ", ".join(chosen) or "none"
    try:
        config = cells.build(setup.origin, doc, where / "cell.yaml",
                             f"kharness bisect step {index + 1} ({role}): the good cell with {shown} from the bad")
    except ConfigError as exc:  # e.g. dma_coherent: false with an x86_64 kernel
        return TrialResult("untestable", f"not a valid cell: {exc}")
    result = run_trial(config, where / "run", setup.judge, setup.rule, booter, progress, stop, jobs)
    return TrialResult(result.verdict, result.reason, result.reps, result.cell_id, result.slug,
                       str((where / "run").relative_to(root)))
