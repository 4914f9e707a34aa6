"""Compare two loaded runs: match cells by identity, judge every metric and status.

Pure computation on values from `load`; the writers only format its result.
A cell or metric on one side only is "new" or "gone", never a zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from typing import Any, Literal, NamedTuple, cast

from harness.compare.judge import Judgement, judge, status_verdict
from harness.compare.load import CellSamples, Identity, MetricInfo, RunSamples
from harness.compare.rules import MetricRule, Rules
from harness.compare.stats import Summary, summarize
from harness.model import Better

Presence = Literal["both", "new", "gone"]


class MetricDiff(NamedTuple):
    key: str  # workload:name
    base: list[float] | None  # None: not reported on that side
    new: list[float] | None
    judgement: Judgement
    info: MetricInfo  # unit, kind, better after --rules overrides
    suspect: bool  # includes figures of failed repetitions

    @property
    def workload(self) -> str:
        return self.key.partition(":")[0]

    @property
    def name(self) -> str:
        return self.key.partition(":")[2]

    def summary(self, side: Literal["base", "new"]) -> Summary | None:
        values = self.base if side == "base" else self.new
        return summarize(values) if values else None

    def percent(self) -> float | None:
        """%change of the mean, None when a side is missing or the baseline is 0."""
        if not self.base or not self.new:
            return None
        return change_pct(sum(self.base) / len(self.base), sum(self.new) / len(self.new))


def change_pct(base_mean: float, new_mean: float) -> float | None:
    """%change from one mean to the other, None from a baseline of 0."""
    if base_mean == 0:
        return None
    return (new_mean - base_mean) / abs(base_mean) * 100.0


@dataclass(frozen=True)
class CellDiff:
    identity: Identity
    base: CellSamples | None
    new: CellSamples | None
    status: Judgement  # of the cell's status; "new"/"gone" for one-sided cells
    metrics: tuple[MetricDiff, ...]

    @property
    def presence(self) -> Presence:
        return "both" if self.base and self.new else ("gone" if self.base else "new")

    @property
    def cell(self) -> CellSamples:
        """The new side where there is one (its slug and axes are the current ones)."""
        return cast(CellSamples, self.new or self.base)

    @property
    def slug(self) -> str:
        return self.cell.slug

    @property
    def axes(self) -> dict[str, Any]:
        return self.cell.axes


@dataclass(frozen=True)
class Comparison:
    base: RunSamples
    new: RunSamples
    cells: tuple[CellDiff, ...]
    rules: Rules

    def metric_counts(self) -> Counter[str]:
        return Counter(self._verdicts)

    @cached_property
    def _verdicts(self) -> Counter[str]:
        """Counted once: every writer asks, some more than once, and a big matrix has 200,000 metrics."""
        return Counter(m.judgement.verdict for c in self.cells for m in c.metrics)

    def presence_counts(self) -> Counter[str]:
        return Counter(c.presence for c in self.cells)

    @property
    def regressions(self) -> int:
        """How many `regressed` yields: cell statuses, then metrics."""
        statuses = sum(1 for c in self.cells if c.status.verdict == "regressed")
        return statuses + self.metric_counts()["regressed"]

    def regressed(self) -> Iterator[tuple[CellDiff, MetricDiff | None]]:
        """Every regression: (cell, None) for a status, (cell, metric) for a metric."""
        for c in self.cells:
            if c.status.verdict == "regressed":
                yield c, None
            for m in c.metrics:
                if m.judgement.verdict == "regressed":
                    yield c, m


def compare_runs(base: RunSamples, new: RunSamples, rules: Rules) -> Comparison:
    resolve = _Resolver(rules, base.info, new.info)
    cells: list[CellDiff] = []
    for ident, b in base.cells.items():
        n = new.cells.get(ident)
        if n is None:
            cells.append(CellDiff(ident, b, None, Judgement("gone", "only in the baseline"), ()))
        else:
            cells.append(_matched(ident, b, n, resolve))
    for ident, n in new.cells.items():
        if ident not in base.cells:
            cells.append(CellDiff(ident, None, n, Judgement("new", "not in the baseline"), ()))
    return Comparison(base, new, tuple(cells), rules)


class _Resolver:
    """Per metric key, once: its rule and its unit/kind/direction after overrides; and per
    list of keys, once, the same as columns (`row`)."""

    def __init__(self, rules: Rules, *infos: dict[str, MetricInfo]) -> None:
        self.rules = rules
        self.infos = infos
        self.cache: dict[str, tuple[MetricRule, MetricInfo, Better]] = {}
        self.rows: dict[tuple[str, ...], _Row] = {}

    def __call__(self, key: str) -> tuple[MetricRule, MetricInfo, Better]:
        hit = self.cache.get(key)
        if hit is None:
            rule = self.rules.rule_for(key)
            # The newer side's catalogue wins when the two disagree.
            written = next((i[key] for i in reversed(self.infos) if key in i),
                           MetricInfo("", "gauge", "neutral"))
            better = rule.better or cast(Better, written.better)
            info = MetricInfo(rule.unit if rule.unit is not None else written.unit,
                              rule.kind or written.kind, better)
            hit = self.cache[key] = (rule, info, better)
        return hit

    def row(self, keys: tuple[str, ...]) -> _Row:
        """What judging needs of these keys, in their order: the cells of a run nearly all
        list the same keys, so this is worked out once per run, not once per cell."""
        hit = self.rows.get(keys)
        if hit is None:
            resolved = [self(k) for k in keys]
            hit = self.rows[keys] = _Row(resolved, [i for _, i, _ in resolved])
        return hit


class _Row(NamedTuple):
    resolved: list[tuple[MetricRule, MetricInfo, Better]]
    infos: list[MetricInfo]


_new_metric = tuple.__new__


def _matched(ident: Identity, b: CellSamples, n: CellSamples, resolve: _Resolver) -> CellDiff:
    status = status_verdict(b.status, n.status)
    unusable = _unusable(b, "baseline") or _unusable(n, "new run")
    suspect = b.suspect or n.suspect
    keys = tuple(b.values)
    if not unusable and keys == tuple(n.values):  # the common case: both sides list the same metrics
        metrics = _judged(keys, list(b.values.values()), list(n.values.values()), suspect, resolve)
        return CellDiff(ident, b, n, status, metrics)
    alpha, min_samples = resolve.rules.alpha, resolve.rules.min_samples
    base_values, new_values = b.values, n.values
    resolved = resolve.cache
    out = []
    for key in _keys(b, n):
        rule, info, better = resolved.get(key) or resolve(key)
        bv = base_values.get(key)
        nv = new_values.get(key)
        if bv is not None and nv is not None and not unusable:
            j = judge(bv, nv, rule, better, alpha, min_samples)
        elif unusable:
            j = Judgement("inconclusive", unusable)
        elif bv is None:
            j = Judgement("new", "not in the baseline")
        else:
            j = Judgement("gone", "not in the new run")
        out.append(_new_metric(MetricDiff, (key, bv, nv, j, info, suspect)))
    return CellDiff(ident, b, n, status, tuple(out))


def _judged(keys: tuple[str, ...], base: list[list[float]], new: list[list[float]], suspect: bool,
            resolve: _Resolver) -> tuple[MetricDiff, ...]:
    """The metrics of a cell whose sides list the same keys (`base` and `new` their values,
    in that order), judged.

    This runs for every metric of every cell (200,000 for a big matrix): the keys' rules
    come from `row`, made once per run, the values in order, without a lookup, and each
    MetricDiff is made by tuple.__new__ in map (a NamedTuple's own constructor is Python
    code, at twice the cost)."""
    rules = resolve.rules
    alpha, min_samples = rules.alpha, rules.min_samples
    row = resolve.row(keys)
    judgements = [judge(bv, nv, rule, better, alpha, min_samples)
                  for bv, nv, (rule, _, better) in zip(base, new, row.resolved, strict=True)]
    return tuple(map(_new_metric, repeat(MetricDiff),
                     zip(keys, base, new, judgements, row.infos, repeat(suspect, len(keys)), strict=True)))


def _keys(b: CellSamples, n: CellSamples) -> Iterable[str]:
    """Both sides' metric keys: the baseline's in order, then those only the new run has."""
    only_new = n.values.keys() - b.values.keys()
    if not only_new:
        return b.values.keys()
    return [*b.values, *(k for k in n.values if k in only_new)]


def _unusable(cell: CellSamples, side: str) -> str:
    if cell.used:
        return ""
    return f"no usable repetition in the {side} ({cell.status_text()})"
