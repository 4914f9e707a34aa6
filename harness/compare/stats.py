"""Statistics of repetitions: summaries and Welch's t-test, in plain Python.

Welch's t and not Mann-Whitney: kernels boot slowly, so cells usually run 3
to 5 repetitions, and with 3 against 3 the smallest two-sided p that
Mann-Whitney can give is 0.1: it could never call anything significant.
Welch's t works from 2 samples a side and does not assume that the patch
left the run-to-run variance alone.

The Student t distribution comes from the regularised incomplete beta
function (continued fraction, Numerical Recipes 6.4) so that comparing needs
no numeric library; tests check it against tabulated critical values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple


class Summary(NamedTuple):
    """The repetitions of one metric on one side. stddev is the sample one (n-1)."""

    n: int
    mean: float
    stddev: float
    min: float
    max: float


class TTest(NamedTuple):
    t: float
    df: float
    p: float  # two-sided


def summarize(values: Sequence[float]) -> Summary:
    return _new_summary(Summary, figures(values))  # (a NamedTuple's own constructor is Python code)


def figures(values: Sequence[float]) -> tuple[int, float, float, float, float]:
    """Summary's figures as a plain tuple: what a JSON comparison encodes, 400,000 times.

    Written for speed, with the figures of the plain formulas (sum() / n, the
    sum() of squared deviations, min(), max()) operation for operation: min
    and max as the comparisons the builtins make (which parse keyword arguments
    on every call, and cost more than the rest), and three values (the usual
    repetition count) written out.
    """
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarize")
    mean = sum(values) / n
    if n == 3:
        a, b, c = values
        # The additions sum() of the squares makes, in order (its start, 0, changes no square)
        var = ((a - mean) ** 2 + (b - mean) ** 2 + (c - mean) ** 2) / 2
        low = high = a
        if b < low:
            low = b
        elif b > high:
            high = b
        if c < low:
            low = c
        elif c > high:
            high = c
        return 3, mean, math.sqrt(var), low, high
    low = high = values[0]
    for v in values:
        if v < low:  # (low <= high, or both NaN: a value below low is not above high)
            low = v
        elif v > high:
            high = v
    var = sum([(v - mean) ** 2 for v in values]) / (n - 1) if n > 1 else 0.0
    return n, mean, math.sqrt(var), low, high


_new_summary = tuple.__new__


def welch(a: Summary, b: Summary) -> TTest:
    """Welch's unequal-variance t-test of b's mean against a's (needs n >= 2 a side)."""
    if a.n < 2 or b.n < 2:
        raise ValueError("Welch's t-test needs at least 2 samples a side")
    va = a.stddev**2 / a.n
    vb = b.stddev**2 / b.n
    se2 = va + vb
    diff = b.mean - a.mean
    if se2 == 0.0:  # no spread on either side: the difference is all there is
        if diff == 0.0:
            return TTest(0.0, math.inf, 1.0)
        return TTest(math.copysign(math.inf, diff), math.inf, 0.0)
    t = diff / math.sqrt(se2)
    df = se2**2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return TTest(t, df, t_two_sided_p(t, df))


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom (df may be fractional)."""
    if math.isinf(t):
        return 0.0
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast only below this point; use the symmetry above it.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


_TINY = 1e-300
_EPS = 1e-13


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b), evaluated by the modified Lentz method."""
    c = 1.0
    d = _nonzero(1.0 - (a + b) * x / (a + 1.0))
    d = 1.0 / d
    h = d
    for m in range(1, 500):  # _nonzero() inlined: Welch's test runs for every metric that moved
        m2 = 2 * m
        even = m * (b - m) * x / ((a - 1.0 + m2) * (a + m2))
        d = 1.0 + even * d
        d = 1.0 / (d if abs(d) >= _TINY else _TINY)
        c = 1.0 + even / c
        c = c if abs(c) >= _TINY else _TINY
        h *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1.0 + m2))
        d = 1.0 + odd * d
        d = 1.0 / (d if abs(d) >= _TINY else _TINY)
        c = 1.0 + odd / c
        c = c if abs(c) >= _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h


def _nonzero(v: float) -> float:
    return v if abs(v) >= _TINY else _TINY
