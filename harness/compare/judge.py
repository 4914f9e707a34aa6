"""The verdict on one metric: improved, regressed, changed, unchanged or inconclusive.

The rule, in order:
1. An exact metric (minalign, swiotlb geometry) that does not scatter on
   either side is judged on its values alone, from one repetition a side.
2. Fewer than `min_samples` repetitions on a side: inconclusive, saying so.
3. |new mean - base mean| within the metric's noise floor: unchanged.
4. Welch's t-test: p >= alpha is inconclusive (a change of that size is
   within the run-to-run noise); p < alpha is a change, which the metric's
   direction makes improved or regressed ("changed" when neutral).

So a change must be both larger than the floor (the minimum effect size)
and unlikely to be noise. The p-value is computed only when step 4 is
reached: below the floor it would not change the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

from harness.compare.rules import MetricRule
from harness.compare.stats import summarize, welch
from harness.model import Better

Verdict = Literal["regressed", "improved", "changed", "inconclusive", "unchanged", "new", "gone"]
# Most telling first: the order of tables and of the summary line.
VERDICTS: tuple[Verdict, ...] = (
    "regressed", "improved", "changed", "inconclusive", "new", "gone", "unchanged",
)

class Judgement(NamedTuple):
    verdict: Verdict
    reason: str
    p: float | None = None


UNCHANGED = Judgement("unchanged", "within noise floor")


def judge(
    base: Sequence[float], new: Sequence[float], rule: MetricRule, better: Better,
    alpha: float, min_samples: int,
) -> Judgement:
    """Judge the repetitions of one metric, baseline against new (neither empty)."""
    n_base, n_new = len(base), len(new)
    base_mean = sum(base) / n_base
    delta = sum(new) / n_new - base_mean
    if not math.isfinite(delta):
        return Judgement("inconclusive", "a value is not a finite number")
    # rule.floor(), inlined: this runs for every metric of every cell
    relative = rule.noise * abs(base_mean)
    within = abs(delta) <= (relative if relative > rule.noise_abs else rule.noise_abs)
    if rule.exact and min(base) == max(base) and min(new) == max(new):
        if within:
            return Judgement("unchanged", "exact metric, same value")
        return Judgement(direction(delta, better), "exact metric, value differs")
    if n_base < min_samples or n_new < min_samples:
        reason = f"too few samples: n={n_base}/{n_new}, need {min_samples} a side"
        return Judgement("inconclusive", reason)
    if within:
        return UNCHANGED
    p = welch(summarize(base), summarize(new)).p
    floor = _floor_text(rule, base_mean)
    if p >= alpha:
        reason = f"beyond noise floor {floor}, but p >= {alpha:g}: may be noise"
        return Judgement("inconclusive", reason, p)
    return Judgement(direction(delta, better), f"beyond noise floor {floor}, p < {alpha:g}", p)


def _floor_text(rule: MetricRule, base_mean: float) -> str:
    if rule.noise_abs >= rule.noise * abs(base_mean):
        return f"{rule.noise_abs:g}"
    return f"{rule.noise * 100:g}%"


def direction(delta: float, better: Better) -> Verdict:
    if better == "neutral" or delta == 0:
        return "changed"
    return "improved" if (delta > 0) == (better == "higher") else "regressed"


def status_verdict(base: str, new: str) -> Judgement:
    """A cell's status, baseline against new (each summarised over its repetitions).

    A kernel that newly fails is a regression; an infrastructure error or an
    interrupted run on either side says nothing about the kernel.
    """
    if base == new:
        return Judgement("unchanged", f"{new} on both sides")
    if new == "fail" and base == "pass":
        return Judgement("regressed", "passed in baseline, fails now")
    if new == "pass" and base == "fail":
        return Judgement("improved", "failed in baseline, passes now")
    return Judgement("inconclusive", f"{base} -> {new}: not the kernel's verdict")
