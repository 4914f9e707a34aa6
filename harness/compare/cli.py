"""`kharness compare BASE NEW [NEW2 ...]`: what changed, with noise taken into account.

Exit status: 0 nothing regressed, 1 a metric or a cell status regressed (a
CI gate), 2 bad input (not a result directory, another result format, a
truncated file: the message names it).
"""

from __future__ import annotations

import argparse
import codecs
import gc
import locale
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from harness import atomic
from harness.compare import htmlpage, jsondoc, junitreport, mail, markdown, slubdebug, text
from harness.compare.diff import Comparison, compare_runs
from harness.compare.load import Selection, check_selection, load_runs
from harness.compare.rules import Rules, load_rules
from harness.compare.table import no_match_hint
from harness.errors import EXIT_FAILURES, EXIT_OK, UsageError
from harness.formats import terminal

FORMATS = ("text", "mail", "markdown", "json", "html", "junit")
DEFAULT_LIMIT = {"text": 50, "mail": 50, "markdown": 50, "html": 500}
PIPE_WIDTH = 240  # not a terminal (a file, a CI log): wide enough that rows need not wrap


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                        help="result directories: the baseline first, then the ones to compare")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="compare every DIR against this one (default: the first DIR)")
    parser.add_argument("--where", action="append", default=[], type=_where, metavar="AXIS=GLOB",
                        help="only cells whose axis matches, e.g. kernel=trixie-arm64 "
                             "(repeat: different axes must all match, the same axis any)")
    parser.add_argument("--metric", action="append", default=[], metavar="GLOB",
                        help="only metrics whose name matches, e.g. 'swiotlb.*' "
                             "or 'fio-randrw:fio.*.iops' (repeatable)")
    parser.add_argument("--ignore-axis", action="append", default=[], metavar="AXIS",
                        help="leave an axis out of cell identity, e.g. kernel, to compare a run "
                             "of one kernel with a run of another")
    parser.add_argument("--rules", type=Path, metavar="YAML",
                        help="noise floors, directions and thresholds per metric pattern")
    parser.add_argument("--alpha", type=float, help="significance level (default 0.05)")
    parser.add_argument("--min-samples", type=int, metavar="N",
                        help="repetitions needed a side before judging (default 3, at least 2)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (a table; box drawing on a terminal only), mail (plain text, "
                             "at most 72 columns), markdown, json, html or junit")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the report here (atomically) instead of stdout")
    parser.add_argument("--all", action="store_true", dest="show_all",
                        help="list unchanged metrics too (json and junit always list all)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="rows per table (0: no limit; default 50, html 500)")
    parser.add_argument("--plot-cells", type=int, default=12, metavar="N",
                        help="html: plot at most N cells, most changed first (default 12)")


def main(args: argparse.Namespace) -> int:
    _check_numbers(args)
    base_dir, new_dirs = baseline_and_new(args.dirs, args.baseline)
    selection = Selection(where=_group(args.where), metrics=tuple(args.metric),
                          ignore_axes=tuple(args.ignore_axis))
    comparisons = compare_dirs(base_dir, new_dirs, selection, _rules(args))
    with gc_paused():
        report = jsondoc.render_parts(comparisons) if args.format == "json" else render(comparisons, args)
    _write(report, args.output)
    if args.format in ("json", "junit") or args.output:
        for hint in filter(None, map(no_match_hint, comparisons)):
            print(f"kharness: note: {hint}", file=sys.stderr)
    for warning in slubdebug.warnings(comparisons):
        print(f"kharness: warning: {warning}", file=sys.stderr)
    return EXIT_FAILURES if any(c.regressions for c in comparisons) else EXIT_OK


def _write(report: str | list[bytearray | memoryview], output: Path | None) -> None:
    """The report to the file, or stdout. The JSON document comes as parts of UTF-8: written
    as they are where the text would have been written in UTF-8, else decoded and written
    as text."""
    if output:
        if isinstance(report, str) or not _utf8(locale.getpreferredencoding(False)):
            atomic.write_text(output, report if isinstance(report, str) else _text(report))
        else:
            with atomic.atomic_open(output, "wb") as f:  # (write_bytes takes bytes: a copy)
                for part in report:
                    f.write(part)
        return
    buffer = getattr(sys.stdout, "buffer", None)
    if isinstance(report, str) or buffer is None or not _utf8(getattr(sys.stdout, "encoding", None)):
        sys.stdout.write(report if isinstance(report, str) else _text(report))
        return
    sys.stdout.flush()
    for part in report:
        buffer.write(part)
    buffer.flush()


def _text(parts: list[bytearray | memoryview]) -> str:
    return b"".join(parts).decode()


def _utf8(encoding: str | None) -> bool:
    try:
        return encoding is not None and codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def compare_dirs(base_dir: Path, new_dirs: list[Path], selection: Selection,
                 rules: Rules) -> list[Comparison]:
    """Load the directories and compare each new one with the baseline."""
    with gc_paused():
        runs = load_runs([base_dir, *new_dirs], selection)
        check_selection(runs, selection)
        # A slub_debug U boot's slab figures are not judged against a normal boot's.
        return [slubdebug.apply(compare_runs(runs[0], r, rules)) for r in runs[1:]]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Loading and comparing allocate millions of objects and free none: the cyclic
    garbage collector would rescan them over and over (a third of the time) for
    nothing. Paused only here, never left off.

    What was made meanwhile lives on, so it is handed to the oldest generation as the
    collector resumes, as if it had survived the young collections (gc.freeze then
    unfreeze: two list splices): else the first young collection after would scan it
    all once, 0.09-0.15 s after loading and comparing 1000 cells x 200 metrics. (Not
    when something else has frozen objects: unfreezing would undo that.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def baseline_and_new(dirs: list[Path], baseline: Path | None) -> tuple[Path, list[Path]]:
    """The baseline (--baseline, else the first DIR) and the others, in order."""
    if baseline is None:
        base, rest = dirs[0], dirs[1:]
    else:
        base = baseline
        rest = [d for d in dirs if d.resolve() != baseline.resolve()]
    if not rest:
        raise UsageError("compare needs two result directories or more",
                         "kharness compare BASE NEW [NEW2 ...]")
    return base, rest


def render(comparisons: list[Comparison], args: argparse.Namespace) -> str:
    limit = args.limit if args.limit is not None else DEFAULT_LIMIT.get(args.format, 0)
    if args.format == "markdown":
        return markdown.render(comparisons, show_all=args.show_all, limit=limit)
    if args.format == "json":
        return jsondoc.render(comparisons)
    if args.format == "html":
        return htmlpage.render(comparisons, show_all=args.show_all, limit=limit,
                               plot_cells=args.plot_cells)
    if args.format == "junit":
        return junitreport.render(comparisons)
    if args.format == "mail":
        return mail.render_mail(comparisons, show_all=args.show_all, limit=limit)
    term = terminal.of(sys.stdout, getattr(args, "color", "auto"), pipe_width=PIPE_WIDTH)
    if args.output is not None:  # a file: plain columns, colour only if asked for
        term = terminal.Terminal(tty=False, color=getattr(args, "color", "auto") == "always", width=PIPE_WIDTH)
    return text.render(comparisons, show_all=args.show_all, limit=limit, color=term.color, width=term.width,
                       boxes=term.tty)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.alpha is not None and not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha}: must be between 0 and 1", "e.g. --alpha 0.05")
    if args.min_samples is not None and args.min_samples < 2:
        raise UsageError(f"--min-samples {args.min_samples}: must be 2 or more",
                         "Welch's t-test needs 2 samples a side")
    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit {args.limit}: must be 0 (no limit) or more")
    if args.plot_cells < 1:
        raise UsageError(f"--plot-cells {args.plot_cells}: must be 1 or more")


def _rules(args: argparse.Namespace) -> Rules:
    """--rules YAML, with --alpha and --min-samples over what it says."""
    rules = load_rules(args.rules) if args.rules else Rules()
    alpha = rules.alpha if args.alpha is None else args.alpha
    min_samples = rules.min_samples if args.min_samples is None else args.min_samples
    return replace(rules, alpha=alpha, min_samples=min_samples)


def _where(text: str) -> tuple[str, str]:
    axis, sep, glob = text.partition("=")
    if not sep or not axis.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected AXIS=GLOB, e.g. kernel=trixie-arm64")
    return axis.strip(), glob.strip()


def _group(pairs: list[tuple[str, str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    grouped: dict[str, list[str]] = {}
    for axis, glob in pairs:
        grouped.setdefault(axis, []).append(glob)
    return tuple((axis, tuple(globs)) for axis, globs in grouped.items())
