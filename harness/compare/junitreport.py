"""JUnit for CI: one testsuite per new directory, a testcase per cell status and metric.

A regression is a <failure>; an inconclusive, new or gone one is <skipped>
with the reason (it was not judged); improved, changed and unchanged pass.
The root carries only the attributes junit-10.xsd allows (no "skipped").
"""

from __future__ import annotations

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

from harness.compare.diff import CellDiff, Comparison, MetricDiff
from harness.compare.judge import Judgement
from harness.compare.table import STATUS_ROW, delta_text, p_text, percent_text, side_text


def render(comparisons: list[Comparison]) -> str:
    xml = JUnitXml("kharness compare")
    for cmp in comparisons:
        suite = TestSuite(f"compare {cmp.base.name} -> {cmp.new.name}")
        # append, not add_testcase: that one recounts the whole suite on every call
        for cell in cmp.cells:
            suite.append(_status_case(cell))  # type: ignore[no-untyped-call]
            for m in cell.metrics:
                suite.append(_metric_case(cell, m))  # type: ignore[no-untyped-call]
        suite.update_statistics()  # type: ignore[no-untyped-call]
        xml.add_testsuite(suite)
    xml.tests = sum(s.tests for s in xml)
    xml.failures = sum(s.failures for s in xml)
    xml.errors = sum(s.errors for s in xml)
    text: str = xml.tostring().decode()  # type: ignore[no-untyped-call]
    return '<?xml version="1.0" encoding="utf-8"?>\n' + text + "\n"


def _status_case(cell: CellDiff) -> TestCase:
    case = TestCase(STATUS_ROW, cell.slug)
    _judged(case, cell.status, f"{cell.slug}: {cell.status.reason}")
    return case


def _metric_case(cell: CellDiff, m: MetricDiff) -> TestCase:
    case = TestCase(m.key, cell.slug)
    b, n = m.summary("base"), m.summary("new")
    change = percent_text(m.percent()) or delta_text(b, n) or "n/a"
    evidence = (f"baseline {side_text(b)} (n={b.n if b else 0}), new {side_text(n)} "
                f"(n={n.n if n else 0}), change {change}, p {p_text(m.judgement.p) or 'n/a'}: "
                f"{m.judgement.reason}")
    _judged(case, m.judgement, evidence)
    return case


def _judged(case: TestCase, j: Judgement, evidence: str) -> None:
    if j.verdict == "regressed":
        case.result = [Failure(f"regressed: {evidence}", "regression")]
    elif j.verdict in ("inconclusive", "new", "gone"):
        case.result = [Skipped(f"{j.verdict}: {evidence}")]
    elif j.verdict in ("improved", "changed"):
        case.system_out = f"{j.verdict}: {evidence}"
