"""The comparison as one JSON document, for machines: every cell and every metric."""

from __future__ import annotations

import json
from typing import Any

try:
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None  # type: ignore[assignment]

from harness import __version__
from harness.compare.diff import CellDiff, Comparison, MetricDiff
from harness.compare.judge import VERDICTS
from harness.compare.load import CellSamples
from harness.compare.stats import Summary

DOC_FORMAT = 1


def render(comparisons: list[Comparison]) -> str:
    doc = document(comparisons)
    if msgspec is not None:  # 5x faster on 200k metrics; NaN and infinities become null
        return msgspec.json.encode(doc).decode() + "\n"
    # No indent: json's C encoder runs only without one.
    return json.dumps(doc) + "\n"


def document(comparisons: list[Comparison]) -> dict[str, Any]:
    first = comparisons[0]
    return {
        "format": DOC_FORMAT,
        "tool": f"kharness {__version__} compare",
        "baseline": first.base.shown_path,
        "alpha": first.rules.alpha,
        "min_samples": first.rules.min_samples,
        "regressions": sum(c.regressions for c in comparisons),
        "comparisons": [_comparison(c) for c in comparisons],
    }


def _comparison(cmp: Comparison) -> dict[str, Any]:
    metrics = cmp.metric_counts()
    cells = cmp.presence_counts()
    return {
        "baseline": cmp.base.shown_path,
        "new": cmp.new.shown_path,
        "regressions": cmp.regressions,
        "metrics": {v: metrics[v] for v in VERDICTS},
        "cells": {"matched": cells["both"], "new": cells["new"], "gone": cells["gone"]},
        "missing": {"baseline": cmp.base.missing, "new": cmp.new.missing},
        "cell_diffs": [_cell(c, cmp) for c in cmp.cells],
    }


def _cell(cell: CellDiff, cmp: Comparison) -> dict[str, Any]:
    return {
        "slug": cell.slug,
        "axes": cell.axes,
        "presence": cell.presence,
        "cell_id": {"baseline": _id(cell.base), "new": _id(cell.new)},
        "status": {
            "baseline": _status(cell.base), "new": _status(cell.new),
            "verdict": cell.status.verdict, "reason": cell.status.reason,
        },
        "metrics": [_metric(m, cmp) for m in cell.metrics],
    }


def _id(cell: CellSamples | None) -> str | None:
    return cell.cell_id if cell else None


def _status(cell: CellSamples | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    return {"status": cell.status, "reps": {str(k): v for k, v in sorted(cell.statuses.items())},
            "unfinished": cell.unfinished, "used": cell.used}


def _metric(m: MetricDiff, cmp: Comparison) -> dict[str, Any]:
    j = m.judgement
    base = m.summary("base")
    floor = cmp.rules.rule_for(m.key).floor(base.mean) if base else None
    return {
        "key": m.key, "workload": m.workload, "name": m.name,
        "unit": m.info.unit, "kind": m.info.kind, "better": m.info.better,
        "baseline": _summary(base, m.base), "new": _summary(m.summary("new"), m.new),
        "change_pct": m.percent(), "noise_floor": floor, "p": j.p,
        "verdict": j.verdict, "reason": j.reason, "suspect": m.suspect,
    }


def _summary(s: Summary | None, values: list[float] | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"n": s.n, "mean": s.mean, "stddev": s.stddev, "min": s.min, "max": s.max,
            "values": values}
