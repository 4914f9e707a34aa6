"""JUnit for CI: one testsuite per new directory, a testcase per cell status and metric.

A regression is a <failure>; an inconclusive, new or gone one is <skipped>
with the reason (it was not judged); improved, changed and unchanged pass.
harness.formats.junit writes the file (declaration, times, safe text).
"""

from __future__ import annotations

from collections import Counter

from harness.compare.diff import CellDiff, Comparison, MetricDiff
from harness.compare.judge import Judgement
from harness.compare.table import STATUS_ROW, delta_text, p_text, percent_text, side_text
from harness.formats import junit

# Judging takes no measurable time per testcase, but every testcase gets a
# time: without one, dorny/test-reporter sums NaN.
NO_TIME = 0.0


def render(comparisons: list[Comparison]) -> str:
    return junit.render([_suite(cmp) for cmp in comparisons], "kharness compare")


def _suite(cmp: Comparison) -> junit.Suite:
    cells_per_slug = Counter(cell.slug for cell in cmp.cells)
    cases: list[junit.Case] = []
    for cell in cmp.cells:
        # <new dir>.<cell>: the same cell is in every comparison's suite, and
        # annotations are titled with the last dotted part (see junit.classname).
        label = cell.slug if cells_per_slug[cell.slug] == 1 else cell.cell.cell_id
        name = junit.classname(cmp.new.name, label)
        cases.append(_status_case(cell, name))
        cases += [_metric_case(cell, m, name) for m in cell.metrics]
    return junit.Suite(f"compare {cmp.base.name} -> {cmp.new.name}", tuple(cases))


def _status_case(cell: CellDiff, classname: str) -> junit.Case:
    return _judged(STATUS_ROW, classname, cell.status, f"{cell.slug}: {cell.status.reason}")


def _metric_case(cell: CellDiff, m: MetricDiff, classname: str) -> junit.Case:
    b, n = m.summary("base"), m.summary("new")
    change = percent_text(m.percent()) or delta_text(b, n) or "n/a"
    evidence = (f"baseline {side_text(b)} (n={b.n if b else 0}), new {side_text(n)} "
                f"(n={n.n if n else 0}), change {change}, p {p_text(m.judgement.p) or 'n/a'}: "
                f"{m.judgement.reason}")
    return _judged(m.key, classname, m.judgement, evidence)


def _judged(name: str, classname: str, j: Judgement, evidence: str) -> junit.Case:
    said = f"{j.verdict}: {evidence}"
    if j.verdict == "regressed":
        return junit.Case(name, classname, NO_TIME, "failure", said, kind="regression")
    if j.verdict in ("inconclusive", "new", "gone"):
        return junit.Case(name, classname, NO_TIME, "skipped", said)
    if j.verdict in ("improved", "changed"):
        return junit.Case(name, classname, NO_TIME, output=said)
    return junit.Case(name, classname, NO_TIME)
