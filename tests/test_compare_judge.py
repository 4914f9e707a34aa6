"""The verdict rule on plain values: direction, noise floor, samples, significance."""

from __future__ import annotations

import pytest

from harness.compare.judge import direction, judge, status_verdict
from harness.compare.rules import MetricRule
from harness.model import Better

FIVE_PERCENT = MetricRule("*", noise=0.05)
BASE = [1000.0, 1004.0, 996.0]  # 0.4% noise


def verdict(base: list[float], new: list[float], better: Better = "lower",
            rule: MetricRule = FIVE_PERCENT, min_samples: int = 3) -> tuple[str, str, float | None]:
    j = judge(base, new, rule, better, 0.05, min_samples)
    return j.verdict, j.reason, j.p


def test_ten_percent_up_with_low_noise_is_a_regression_when_lower_is_better() -> None:
    v, reason, p = verdict(BASE, [1100.0, 1104.0, 1097.0], "lower")
    assert v == "regressed"
    assert p is not None and p < 0.001
    assert reason == "beyond noise floor 5%, p < 0.05"


def test_direction_decides_improved_or_regressed() -> None:
    down = [900.0, 903.0, 898.0]
    assert verdict(BASE, down, "lower")[0] == "improved"
    assert verdict(BASE, down, "higher")[0] == "regressed"
    assert verdict(BASE, down, "neutral")[0] == "changed"


def test_same_change_inside_the_noise_is_inconclusive() -> None:
    v, reason, p = verdict([1000.0, 1150.0, 850.0], [1100.0, 1250.0, 950.0])
    assert v == "inconclusive"
    assert p is not None and p > 0.05
    assert "may be noise" in reason


def test_too_few_samples_is_inconclusive_and_says_so() -> None:
    v, reason, p = verdict([1000.0], [1100.0, 1101.0, 1099.0])
    assert v == "inconclusive"
    assert reason == "too few samples: n=1/3, need 3 a side"
    assert p is None


def test_change_within_the_floor_is_unchanged() -> None:
    assert verdict(BASE, [1030.0, 1031.0, 1029.0])[0] == "unchanged"  # +3%, floor 5%


def test_absolute_floor_guards_small_counts() -> None:
    rule = MetricRule("swiotlb.bounces", noise=0.05, noise_abs=1.0)
    assert verdict([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], rule=rule)[0] == "unchanged"
    assert verdict([0.0, 0.0, 0.0], [2.0, 2.0, 2.0], rule=rule)[0] == "regressed"


def test_exact_metric_needs_one_sample() -> None:
    rule = MetricRule("slab.minalign", noise=0.0, exact=True)
    assert verdict([128.0], [8.0], "neutral", rule) == ("changed", "exact metric, value differs", None)
    assert verdict([8.0], [8.0], "neutral", rule)[0] == "unchanged"


def test_exact_metric_that_scatters_is_tested_like_any_other() -> None:
    rule = MetricRule("slab.minalign", noise=0.0, exact=True)
    assert verdict([8.0, 64.0], [8.0, 8.0], "neutral", rule)[0] == "inconclusive"


def test_not_a_number_is_never_a_verdict() -> None:
    nan = float("nan")
    assert verdict(BASE, [nan, 1000.0, 1000.0]) == (
        "inconclusive", "a value is not a finite number", None)


@pytest.mark.parametrize(
    ("delta", "better", "expected"),
    [(1.0, "higher", "improved"), (-1.0, "higher", "regressed"), (1.0, "lower", "regressed"),
     (-1.0, "lower", "improved"), (1.0, "neutral", "changed")],
)
def test_direction(delta: float, better: Better, expected: str) -> None:
    assert direction(delta, better) == expected


@pytest.mark.parametrize(
    ("base", "new", "expected"),
    [("pass", "pass", "unchanged"), ("pass", "fail", "regressed"), ("fail", "pass", "improved"),
     ("fail", "fail", "unchanged"), ("pass", "error", "inconclusive"),
     ("error", "pass", "inconclusive")],
)
def test_status_verdict(base: str, new: str, expected: str) -> None:
    assert status_verdict(base, new).verdict == expected
