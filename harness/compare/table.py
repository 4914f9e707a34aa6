"""The rows that the table writers (terminal, markdown, HTML) show, already as text.

Pure: which rows are worth a reader's eye, in which order, and how numbers
read. Unchanged metrics are counted in the summary, not listed, unless asked;
an inconclusive one is listed only when its mean moved beyond the noise floor
(otherwise, with too few samples, every metric would be listed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from harness.compare.diff import CellDiff, Comparison, MetricDiff
from harness.compare.judge import VERDICTS, Verdict
from harness.compare.load import CellSamples, RunSamples
from harness.compare.stats import Summary

STATUS_ROW = "(status)"
CELL_ROW = "(cell)"


class Row(NamedTuple):
    cell: str
    metric: str  # workload:name [unit], or STATUS_ROW / CELL_ROW
    base: str  # mean ±stddev
    new: str
    n: str  # repetitions, baseline/new
    base_range: str  # min..max
    new_range: str
    change: str  # %change of the mean
    p: str
    verdict: Verdict
    reason: str
    sort_size: float  # |%change|, for ordering


def rows(cmp: Comparison, *, show_all: bool = False) -> list[Row]:
    """The rows of one comparison, most telling first."""
    return first_rows(cmp, show_all=show_all)[0]


def first_rows(cmp: Comparison, *, show_all: bool = False, limit: int = 0,
               ranges: bool = True) -> tuple[list[Row], int]:
    """The first `limit` rows of rows() (0: all of them), and how many rows there are.

    Ranked before they are written out: a table of the first 50 of 200,000 rows
    formats 50 (the sort key is the Row's own: verdict, |%change|, cell, metric).
    ranges=False leaves base_range and new_range empty, for a writer that does not
    show them (the terminal table: 800,000 numbers fewer to write for 200,000 rows).
    """
    order = _ORDER
    ranked: list[tuple[tuple[int, float, str, str], CellDiff, MetricDiff | None, float | None]] = []
    append = ranked.append
    for cell in cmp.cells:
        slug = cell.slug
        if show_all or status_worth_a_row(cell):
            metric = STATUS_ROW if cell.presence == "both" else CELL_ROW
            append(((order[cell.status.verdict], -0.0, slug, metric), cell, None, None))
        for m in cell.metrics:
            if show_all or metric_worth_a_row(cmp, m):
                pct = m.percent()
                unit = f" [{m.info.unit}]" if m.info.unit else ""
                size = abs(pct) if pct is not None else math.inf
                append(((order[m.judgement.verdict], -size, slug, f"{m.key}{unit}"), cell, m, pct))
    ranked.sort(key=_first)
    chosen = ranked[:limit] if limit else ranked
    return [_cell_row(cell) if m is None else _metric_row(cell, m, pct, key[3], ranges)
            for key, cell, m, pct in chosen], len(ranked)


def _first(entry: tuple[tuple[int, float, str, str], CellDiff, MetricDiff | None, float | None]
           ) -> tuple[int, float, str, str]:
    return entry[0]


_ORDER = {v: i for i, v in enumerate(VERDICTS)}


def summary_line(cmp: Comparison) -> str:
    metrics = cmp.metric_counts()
    cells = cmp.presence_counts()
    statuses = [c.status.verdict for c in cmp.cells if c.presence == "both"]
    parts = [f"{metrics[v]} {v}" for v in VERDICTS if metrics[v]] or ["no metrics"]
    text = (f"metrics: {', '.join(parts)}; cells: {cells['both']} matched, "
            f"{cells['new']} new, {cells['gone']} gone")
    changed = [f"{statuses.count(v)} {v}" for v in ("regressed", "improved", "inconclusive")
               if v in statuses]
    return f"{text}; status: {', '.join(changed)}" if changed else text


def missing_lines(run: RunSamples) -> list[str]:
    """What a half-finished run lacks: cells with no finished repetition, unfinished reps."""
    out = [f"{run.name}: cell {cid}: {why}" for cid, why in sorted(run.missing.items())]
    for cell in run.cells.values():
        if cell.unfinished:
            out.append(f"{run.name}: {', '.join(cell.unfinished)}: unfinished (no cell.json)")
    return out


def no_match_hint(cmp: Comparison) -> str:
    """When no cell matched: which axes differ, so --ignore-axis can be suggested."""
    if not cmp.base.cells or not cmp.new.cells or cmp.presence_counts()["both"]:
        return ""
    base_axes = _axis_values(cmp.base.cells.values())
    new_axes = _axis_values(cmp.new.cells.values())
    differ = sorted(a for a in base_axes.keys() | new_axes.keys()
                    if base_axes.get(a) != new_axes.get(a))
    if not differ:
        return ""
    return (f"no cell matches between {cmp.base.name} and {cmp.new.name}; their axes differ in "
            f"{', '.join(differ)}: to compare across them, use --ignore-axis {differ[0]}")


def _axis_values(cells: Iterable[CellSamples]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for c in cells:
        for k, v in c.axes.items():
            out.setdefault(k, set()).add(repr(v))
    return out


def status_worth_a_row(cell: CellDiff) -> bool:
    """A cell's status earns a row of its own: the cell is on one side only, its status
    moved, or the new side did not pass (the reports shown without --all)."""
    if cell.presence != "both":
        return True
    assert cell.base is not None and cell.new is not None
    return cell.status.verdict != "unchanged" or cell.new.status != "pass"


def metric_worth_a_row(cmp: Comparison, m: MetricDiff) -> bool:
    """A metric earns a row without --all: a verdict other than unchanged, but an
    inconclusive one without a p-value only when its figures moved (_moved)."""
    verdict = m.judgement.verdict
    if verdict == "unchanged":
        return False
    if verdict != "inconclusive" or m.judgement.p is not None:
        return True
    return _moved(cmp, m)


def _moved(cmp: Comparison, m: MetricDiff) -> bool:
    """Did the mean move beyond the noise floor (judged or not)?"""
    if not m.base or not m.new:
        return False
    base = sum(m.base) / len(m.base)
    delta = sum(m.new) / len(m.new) - base
    return abs(delta) > cmp.rules.rule_for(m.key).floor(base)


def _cell_row(cell: CellDiff) -> Row:
    b = cell.base.status_text() if cell.base else "-"
    n = cell.new.status_text() if cell.new else "-"
    metric = STATUS_ROW if cell.presence == "both" else CELL_ROW
    return Row(cell.slug, metric, b, n, "", "", "", "", "", cell.status.verdict, cell.status.reason,
               0.0)


def _metric_row(cell: CellDiff, m: MetricDiff, pct: float | None, metric: str, ranges: bool) -> Row:
    reason = m.judgement.reason + ("; includes failed repetitions" if m.suspect else "")
    b, n = m.summary("base"), m.summary("new")
    change = percent_text(pct) if pct is not None else delta_text(b, n)
    return Row(
        cell.slug, metric, side_text(b), side_text(n),
        f"{b.n if b else '-'}/{n.n if n else '-'}",
        range_text(b) if ranges else "", range_text(n) if ranges else "",
        change, p_text(m.judgement.p), m.judgement.verdict, reason,
        abs(pct) if pct is not None else math.inf,
    )


def side_text(s: Summary | None) -> str:
    """mean ±stddev (the stddev left out when there is none to tell)."""
    if s is None:
        return "-"
    spread = f" ±{number(s.stddev, 3)}" if s.n > 1 and s.stddev else ""
    return f"{number(s.mean)}{spread}"


def range_text(s: Summary | None) -> str:
    if s is None or s.n < 2:
        return ""
    return f"{number(s.min)}..{number(s.max)}"


def percent_text(pct: float | None) -> str:
    return "" if pct is None else f"{pct:+.1f}%"


def delta_text(b: Summary | None, n: Summary | None) -> str:
    """The change in the metric's unit, where a percentage cannot be had (from zero)."""
    if b is None or n is None:
        return ""
    delta = n.mean - b.mean
    return f"{'+' if delta >= 0 else '-'}{number(abs(delta))}"


def p_text(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.0001" if p < 1e-4 else f"{p:.2g}"


def number(v: float, digits: int = 4) -> str:
    """Whole numbers with thousands separators, others to `digits` significant digits."""
    if v - v != 0:  # inf or nan (a finite number less itself is 0)
        return str(v)
    if v % 1 == 0 or abs(v) >= _WHOLE.get(digits, 10 ** (digits - 1)):
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


_WHOLE = {d: 10 ** (d - 1) for d in range(1, 10)}  # (a power a call: a fifth of number's time)
