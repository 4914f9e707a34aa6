"""Welch's t-test and the t distribution, against reference values.

The reference p-values were computed with scipy 1.17 (scipy.stats.t.sf and
scipy.stats.ttest_ind(equal_var=False)); they are also the textbook critical
values (t = 2.776 at 4 degrees of freedom is the two-sided 5% point).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.compare import jsondoc
from harness.compare.stats import betainc, figures, summarize, t_two_sided_p, welch
from tests.test_fuzz_collect import FUZZ


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [
        (2.776445105, 4, 0.05000000001011946),
        (12.70620474, 1, 0.04999999998500896),
        (1.0, 2.5, 0.40406102727827364),  # fractional df, as Welch gives
        (3.0, 7.3, 0.018980551023133497),
        (0.5, 30, 0.6207230048851272),
    ],
)
def test_t_two_sided_p_matches_reference(t: float, df: float, p: float) -> None:
    assert t_two_sided_p(t, df) == pytest.approx(p, rel=1e-9)
    assert t_two_sided_p(-t, df) == pytest.approx(p, rel=1e-9)


def test_t_at_infinite_df_is_normal() -> None:
    assert t_two_sided_p(1.959963985, math.inf) == pytest.approx(0.05, rel=1e-8)


def test_welch_matches_reference() -> None:
    base = summarize([10.2, 9.8, 10.1, 10.4])
    new = summarize([11.0, 11.3, 10.9])
    r = welch(base, new)
    # scipy: ttest_ind(base, new, equal_var=False) -> t=-5.4304, p=0.0031142, df=4.869
    assert r.t == pytest.approx(5.430433444054013, rel=1e-9)
    assert r.df == pytest.approx(4.868958890591318, rel=1e-9)
    assert r.p == pytest.approx(0.0031142087085953485, rel=1e-8)


def test_welch_without_spread() -> None:
    same = summarize([8.0, 8.0, 8.0])
    assert welch(same, same).p == 1.0
    assert welch(same, summarize([128.0, 128.0])).p == 0.0


def test_welch_needs_two_samples_a_side() -> None:
    with pytest.raises(ValueError, match="2 samples"):
        welch(summarize([1.0]), summarize([1.0, 2.0]))


def test_summarize() -> None:
    s = summarize([1.0, 2.0, 3.0, 6.0])
    assert (s.n, s.mean, s.min, s.max) == (4, 3.0, 1.0, 6.0)
    assert s.stddev == pytest.approx(math.sqrt(14 / 3))
    assert summarize([5.0]).stddev == 0.0


def test_betainc_edges_and_symmetry() -> None:
    assert betainc(2.0, 3.0, 0.0) == 0.0
    assert betainc(2.0, 3.0, 1.0) == 1.0
    assert betainc(2.0, 3.0, 0.3) == pytest.approx(1 - betainc(3.0, 2.0, 0.7), rel=1e-12)
    assert betainc(1.0, 1.0, 0.25) == pytest.approx(0.25)  # uniform


def _plain(values: Sequence[float]) -> tuple[int, float, float, float, float]:
    """The summary as the formulas say it (summarize is written for speed, not like this)."""
    n = len(values)
    mean = sum(values) / n
    var = sum([(v - mean) ** 2 for v in values]) / (n - 1) if n > 1 else 0.0
    return n, mean, math.sqrt(var), min(values), max(values)


def _bits(summary: Sequence[float]) -> list[bytes]:
    """Figures compared to the bit: NaN equals NaN, -0.0 differs from 0.0."""
    return [struct.pack("<d", x) for x in summary]


ODD = st.sampled_from([0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 1e30, -1e30, 5e-324])


@FUZZ
@given(st.lists(st.one_of(st.floats(allow_subnormal=True), ODD), min_size=1, max_size=7))
def test_summarize_gives_the_figures_of_the_plain_formulas(values: list[float]) -> None:
    """To the bit, for any values (3 of them are written out, the others looped over): the JSON
    document prints them in full, so a different rounding would change it."""
    try:
        expected = _plain(values)
    except OverflowError:  # a square beyond the floats: both say so
        with pytest.raises(OverflowError):
            summarize(values)
        return
    assert _bits(summarize(values)) == _bits(expected)
    assert _bits(figures(values)) == _bits(expected)
    assert _bits(summarize(tuple(values))) == _bits(expected)
    side = jsondoc._side(values)  # the JSON document's own copy of the three-value case
    assert _bits((side.n, side.mean, side.stddev, side.min, side.max)) == _bits(expected)


def test_summarize_refuses_no_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        summarize([])
