"""The comparison as one JSON document, for machines: every cell and every metric.

Two directories of 1000 cells x 200 metrics make a document of 200,000
metrics, 100 MB of JSON. So it is encoded as it is made, a cell at a time,
into one buffer: the objects of all cells never exist at once (as dicts they
were some 250 MB to allocate, and the text was copied once more), and a
metric is a msgspec Struct, which is made and encoded faster than a dict.
msgspec writes a Struct's members in the order they are declared, so the
text is the one the dicts made; NaN and infinities become null.
"""

from __future__ import annotations

from typing import Any

import msgspec

from harness import __version__
from harness.compare.diff import CellDiff, Comparison, MetricDiff, change_pct
from harness.compare.judge import VERDICTS
from harness.compare.load import CellSamples
from harness.compare.rules import MetricRule, Rules
from harness.compare.stats import figures

DOC_FORMAT = 1

_ENCODER = msgspec.json.Encoder()


class _Side(msgspec.Struct, gc=False):
    """One side of a metric: its summary and its values."""

    n: int
    mean: float
    stddev: float
    min: float
    max: float
    values: list[float]


class _Metric(msgspec.Struct, gc=False):
    """One metric of a cell, baseline against new."""

    key: str
    workload: str
    name: str
    unit: str
    kind: str
    better: str
    baseline: _Side | None
    new: _Side | None
    change_pct: float | None
    noise_floor: float | None
    p: float | None
    verdict: str
    reason: str
    suspect: bool


def render(comparisons: list[Comparison]) -> str:
    """The document as compact JSON, and a newline."""
    out = bytearray()
    _open(out, _head(comparisons), "comparisons")
    for i, cmp in enumerate(comparisons):
        if i:
            out += b","
        _open(out, _comparison(cmp), "cell_diffs")
        names = _Names(cmp.rules)
        for j, cell in enumerate(cmp.cells):
            if j:
                out += b","
            _ENCODER.encode_into(_cell(cell, names), out, -1)
        out += b"]}"
    out += b"]}\n"
    return out.decode()


def _open(out: bytearray, head: dict[str, Any], key: str) -> None:
    """Append `head` as a JSON object left open, its last member `key`: an array left open."""
    assert head, "an object with members before the array"
    _ENCODER.encode_into(head, out, -1)
    out[-1:] = b"," + _ENCODER.encode(key) + b":["  # over the object's closing brace


def _head(comparisons: list[Comparison]) -> dict[str, Any]:
    first = comparisons[0]
    return {
        "format": DOC_FORMAT,
        "tool": f"kharness {__version__} compare",
        "baseline": first.base.shown_path,
        "alpha": first.rules.alpha,
        "min_samples": first.rules.min_samples,
        "regressions": sum(c.regressions for c in comparisons),
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
    }


def _cell(cell: CellDiff, names: _Names) -> dict[str, Any]:
    return {
        "slug": cell.slug,
        "axes": cell.axes,
        "presence": cell.presence,
        "cell_id": {"baseline": _id(cell.base), "new": _id(cell.new)},
        "status": {
            "baseline": _status(cell.base), "new": _status(cell.new),
            "verdict": cell.status.verdict, "reason": cell.status.reason,
        },
        "metrics": _metrics(cell.metrics, names),
    }


def _id(cell: CellSamples | None) -> str | None:
    return cell.cell_id if cell else None


def _status(cell: CellSamples | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    return {"status": cell.status, "reps": {str(k): v for k, v in sorted(cell.statuses.items())},
            "unfinished": cell.unfinished, "used": cell.used}


class _Names(dict[str, tuple[str, str, MetricRule]]):
    """Metric key -> its workload, name and rule: worked out once per key, not once per cell."""

    def __init__(self, rules: Rules) -> None:
        super().__init__()
        self.rules = rules

    def __missing__(self, key: str) -> tuple[str, str, MetricRule]:
        workload, _, name = key.partition(":")
        hit = self[key] = (workload, name, self.rules.rule_for(key))
        return hit


def _metrics(metrics: tuple[MetricDiff, ...], names: _Names) -> list[_Metric]:
    out = []
    for key, base_values, new_values, (verdict, reason, p), info, suspect in metrics:
        workload, name, rule = names[key]
        base = new = floor = pct = None
        if base_values:
            base = _Side(*figures(base_values), base_values)
            floor = rule.floor(base.mean)
        if new_values:
            new = _Side(*figures(new_values), new_values)
            if base is not None:
                pct = change_pct(base.mean, new.mean)
        out.append(_Metric(key, workload, name, info.unit, info.kind, info.better, base, new, pct, floor, p,
                           verdict, reason, suspect))
    return out
