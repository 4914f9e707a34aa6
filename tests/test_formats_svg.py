"""The one SVG module: its number format, its axis, and the two figures drawn with them."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from harness.formats import svg


@pytest.mark.parametrize(("value", "unit", "text"), [
    (8, "bytes", "8"), (1023, "bytes", "1023"), (1024, "bytes", "1 KiB"), (2744320, "bytes", "2.62 MiB"),
    (1024 * 1024, "bytes", "1 MiB"), (1023.9 * 1024, "bytes", "1 MiB"),
    (1000 * 1024, "bytes", "1000 KiB"),  # not "1e+03 KiB"
    (4392, "", "4392"), (12345, "", "12.3k"), (999_999, "", "1M"),  # rounded as shown, not "1000k"
    (2_500_000, "IO/s", "2.5M"), (-12345, "", "-12.3k"), (0.25, "", "0.25"), (float("nan"), "", "nan"),
])
def test_human_is_short_and_never_an_exponent(value: float, unit: str, text: str) -> None:
    assert svg.human(value, unit) == text


@pytest.mark.parametrize(("values", "unit", "ticks"), [
    ([2744320], "bytes", ["0", "1 MiB", "2 MiB", "3 MiB"]),  # whole MiB, not 1e6 steps
    ([8, 128], "bytes", ["0", "50", "100", "150"]),
    ([-3.7, 12], "", ["-5", "0", "5", "10", "15"]),
    ([], "", ["0", "0.2", "0.4", "0.6", "0.8", "1"]),
    ([5.0, 5.0], "", ["0", "1", "2", "3", "4", "5"]),
])
def test_axis_has_round_ticks_from_zero_past_every_value(values: list[float], unit: str, ticks: list[str]) -> None:
    ax = svg.axis(values, unit)
    assert [svg.human(t, unit) for t in ax.ticks()] == ticks
    assert ax.low <= min([0.0, *values]) and ax.high >= max([0.0, *values])


@pytest.mark.parametrize("peak", [0.003, 0.7, 1.0, 9.99, 101.0, 7e5, 3.3e9])
def test_axis_never_has_more_than_five_intervals(peak: float) -> None:
    ax = svg.axis([peak])
    assert 1 <= len(ax.ticks()) - 1 <= svg.MAX_INTERVALS and ax.high >= peak
    assert ax.high < peak * 2.5 + 1e-12  # and does not leave most of the plot empty


def test_axis_ignores_what_is_not_finite() -> None:
    assert svg.axis([math.inf, 3.0, math.nan]) == svg.axis([3.0])


def _strip() -> svg.Strip:
    points = tuple(svg.Point(col, v, status, f"c#{i}") for i, (col, v, status) in enumerate(
        [("6.1", 4392.0, "pass"), ("6.1", 4400.0, "fail"), ("6.12", 2976.0, "error"), ("6.12", 2976.0, "skipped")]))
    return svg.Strip("slab.kmalloc.bytes by kernel", "bytes", ("6.1", "6.12"), points)


def _chart() -> svg.Chart:
    return svg.Chart("bounces", "bounces", ("8 B", "a category label much too long to fit its group"),
                     (svg.Series("base", (100.0, None), (5.0, 0.0)), svg.Series("new", (-20.0, 2e6), (0.0, 1e5))))


@pytest.mark.parametrize("figure", [_strip(), _chart()], ids=["strip", "bars"])
def test_figures_are_well_formed_deterministic_and_name_no_url(figure: svg.Strip | svg.Chart) -> None:
    text = svg.render(figure)
    root = ET.fromstring(text)
    assert root.tag == "svg" and "chart" in root.get("class", "")
    assert text == svg.render(figure)  # no ids or dates: a report diffs cleanly
    assert not re.search(r"https?://|\b(?:src|href)\s*=", text)  # inline in pages that fetch nothing


def test_strip_colours_dots_by_status_and_draws_the_mean() -> None:
    root = ET.fromstring(svg.render(_strip()))
    fills = [c.get("fill") for c in root.iter("circle")]
    assert fills == [svg.STATUS_COLOURS["pass"], svg.STATUS_COLOURS["fail"], svg.STATUS_COLOURS["error"],
                     svg.STATUS_OTHER]
    means = [line for line in root.iter("line") if line.get("stroke-width") == "2"]
    assert len(means) == 2
    assert [t.text for t in root.iter("title")][-1] == "c#3: 2.91 KiB"


def test_bars_share_the_axis_and_numbers_of_the_strip() -> None:
    text = svg.render(_chart())
    root = ET.fromstring(text)
    ticks = [t.text for t in root.iter("text") if t.get("class") == "tick"]
    assert ticks == [svg.human(v, "bounces") for v in svg.axis([100.0, 105.0, -20.0, 2e6, 2.1e6]).ticks()]
    tips = [t.text for r in root.iter("rect") for t in r.iter("title")]
    assert "new, a category label much too long to fit its group: 2M ±100k" in tips
    assert sum(1 for t in root.iter("text") if t.get("class") == "na") == 1  # base has no second value
    cut = [t for t in root.iter("text") if t.get("class") == "cat" and "transform" in t.attrib]
    assert cut and (cut[0].text or "").endswith("…")  # slanted and cut; the whole label is its tooltip
