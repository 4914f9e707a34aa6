"""The comparison as one JSON document, for machines: every cell and every metric.

Two directories of 1000 cells x 200 metrics make a document of 200,000
metrics, 100 MB of JSON. So it is encoded as it is made, a cell at a time,
into a buffer: the objects of all cells never exist at once (as dicts they
were some 250 MB to allocate, and the text was copied once more), and a
metric is a msgspec Struct, which is made and encoded faster than a dict.
msgspec writes a Struct's members in the order they are declared, so the
text is the one the dicts made; NaN and infinities become null.

Each cell encodes on its own, so a big comparison's cells are encoded in two
halves at once, the second by a forked child (`beside`): the same bytes, in
about half the time on two cores. The child's half stays where the child
left it, in a memory file, and is written after the parent's part
(`render_parts`). Without a usable child, this process encodes both halves.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import sqrt
from typing import Any

import msgspec

from harness import __version__
from harness.compare.beside import beside
from harness.compare.diff import CellDiff, Comparison, MetricDiff
from harness.compare.judge import VERDICTS
from harness.compare.load import CellSamples
from harness.compare.rules import MetricRule, Rules
from harness.compare.stats import figures

DOC_FORMAT = 1

_ENCODER = msgspec.json.Encoder()
# Metrics in a comparison from which its cells are encoded in two processes: below,
# the fork (some milliseconds) and the copy back would cost more than they save.
SPLIT_METRICS = 20_000


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
    return b"".join(render_parts(comparisons)).decode()


def render_parts(comparisons: list[Comparison]) -> list[bytearray | memoryview]:
    """`render`'s text in UTF-8, as msgspec wrote it, in parts to be written one after the
    other: this process's, and the halves a child left in a memory file (mapped). A big
    document is 100 MB: not decoded into a str only to be encoded again on the way out,
    nor copied into one buffer (the child's half faulted in and copied again cost a
    sixth of rendering)."""
    out = bytearray()
    parts: list[bytearray | memoryview] = [out]
    _open(out, _head(comparisons), "comparisons")
    for i, cmp in enumerate(comparisons):
        if i:
            out += b","
        _open(out, _comparison(cmp), "cell_diffs")
        theirs = _cells(out, cmp)
        if theirs is not None:
            out = bytearray()
            parts += [theirs, out]
        out += b"]}"
    out += b"]}\n"
    return parts


def _cells(out: bytearray, cmp: Comparison) -> memoryview | None:
    """Append the comparison's cells, comma-separated: in two halves at once when they are
    many. The child's half, when a child encoded it, is returned, to follow `out`."""
    cells, rules = cmp.cells, cmp.rules
    half = _half(cells)
    if half == 0:
        _encode_cells(out, cells, _Names(rules))
        return None
    _, theirs = beside(lambda: _encode_cells(bytearray(), cells[half:], _Names(rules)),
                       lambda: _encode_cells(out, cells[:half], _Names(rules)))
    out += b","
    if theirs is None:  # no child: this process encodes them too
        _encode_cells(out, cells[half:], _Names(rules))
    return theirs


def _half(cells: tuple[CellDiff, ...]) -> int:
    """Where to cut the cells into two halves of as many metrics, or 0: not worth it."""
    total = sum(len(c.metrics) for c in cells)
    if total < SPLIT_METRICS or len(cells) < 2:
        return 0
    count = 0
    for i, cell in enumerate(cells):
        count += len(cell.metrics)
        if 2 * count >= total:
            return min(i + 1, len(cells) - 1)
    return len(cells) - 1  # pragma: no cover - the loop reaches half the total


def _encode_cells(out: bytearray, cells: Iterable[CellDiff], names: _Names) -> bytearray:
    """`out` with the cells appended, comma-separated."""
    for j, cell in enumerate(cells):
        if j:
            out += b","
        _ENCODER.encode_into(_cell(cell, names), out, -1)
    return out


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
    """The metrics of a cell as Structs. This runs for every metric of the document, so
    MetricRule.floor and change_pct are written out here, operation for operation (the
    JSON document test checks them against the originals)."""
    out: list[_Metric] = []
    append = out.append
    for key, base_values, new_values, (verdict, reason, p), info, suspect in metrics:
        workload, name, rule = names[key]
        base = new = floor = pct = None
        if base_values:
            base = _side(base_values)
            relative = rule.noise * abs(base.mean)
            floor = relative if relative > rule.noise_abs else rule.noise_abs
        if new_values:
            new = _side(new_values)
            if base is not None and base.mean != 0:
                pct = (new.mean - base.mean) / abs(base.mean) * 100.0
        append(_Metric(key, workload, name, info.unit, info.kind, info.better, base, new, pct, floor, p,
                       verdict, reason, suspect))
    return out


def _side(values: list[float]) -> _Side:
    """_Side(*stats.figures(values), values), with figures' three-value case written out
    here, operation for operation: 400,000 sides in a big document, and the call and the
    tuple it makes cost a fifth of rendering (measured)."""
    if len(values) != 3:
        return _Side(*figures(values), values)
    a, b, c = values
    mean = sum(values) / 3
    low = high = a
    if b < low:
        low = b
    elif b > high:
        high = b
    if c < low:
        low = c
    elif c > high:
        high = c
    var = ((a - mean) ** 2 + (b - mean) ** 2 + (c - mean) ** 2) / 2  # (as figures adds them)
    return _Side(3, mean, sqrt(var), low, high, values)
