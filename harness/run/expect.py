"""Judging a cell's expectations against its metrics: pure functions."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from harness.model import Cell, Expectation, Metric, TestResult

OPS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def applies(exp: Expectation, cell: Cell) -> bool:
    axes: dict[str, Any] = dict(cell.axes)
    return all(axes.get(k) == v for k, v in exp.when)


def judge(exp: Expectation, metrics: list[Metric], ran: list[str]) -> list[TestResult]:
    """One testcase per workload the expectation covers.

    A metric that the workload did not report is a failure ("not measured"),
    never a pass: an unknown is not good news. `workload: boot` judges the
    figures after boot, which exist once the boot snapshot was taken; a rule
    without a workload covers the workloads only.
    """
    workloads = [exp.workload] if exp.workload else ran
    by_key = {m.key: m for m in metrics}
    booted = any(m.workload == "boot" for m in metrics)
    out: list[TestResult] = []
    for wl in workloads:
        name = f"expect:{exp.name}[{wl}]"
        if wl not in ran and not (wl == "boot" and booted):
            out.append(TestResult(name, "skipped", f"workload {wl} did not run"))
            continue
        m = by_key.get(f"{wl}:{exp.metric}")
        if m is None:
            if exp.workload is None:
                continue  # the rule is for workloads that report this metric
            out.append(TestResult(name, "fail", f"{exp.metric} was not measured by {wl}"))
            continue
        ok = OPS[exp.op](m.value, exp.value)
        msg = f"{exp.metric} = {m.value:g} {m.unit}".strip() + f" (expected {exp.op} {exp.value:g})"
        out.append(TestResult(name, "pass" if ok else "fail", "" if ok else msg, msg))
    if not out:
        out.append(TestResult(f"expect:{exp.name}", "fail", f"{exp.metric} was not measured by any workload"))
    return out
