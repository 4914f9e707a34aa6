"""Charts as inline SVG, for run's report.html and compare's HTML report.

One number format (`human`), one axis scaling (`axis`), one frame, and two
figures drawn on it: a dot strip (`Strip`: one dot per repetition, so a
nightly shows the spread and not only a mean) and grouped bars (`Chart`: one
series per result directory, with error bars). `render` draws either.

Written by hand: a few circles and rectangles per chart do not justify a
plotting library in the tool's dependencies, and the SVG stays small and
deterministic (no ids or dates), so a report diffs cleanly from one night to
the next. No xmlns either: the SVG is inline in HTML, and a page that names
no URL at all is easier to check for being self-contained.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

# Paul Tol's "bright" scheme: distinguishable with the common colour blindnesses.
PALETTE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB")
STATUS_COLOURS = {"pass": PALETTE[2], "fail": PALETTE[1], "error": PALETTE[5]}

# The classes the charts use, for the <style> of the page that holds them.
CSS = """
svg.chart { border: 1px solid #eee; background: #fff; }
svg .title { font-size: 12px; font-weight: 600; } svg .tick, svg .legend { font-size: 11px; fill: #444; }
svg .cat, svg .unit { font-size: 10px; fill: #444; } svg .na { font-size: 10px; fill: #999; }
"""


# --- numbers -------------------------------------------------------------

@dataclass(frozen=True)
class _Prefixes:
    base: int
    suffixes: tuple[str, ...]
    plain_below: float  # shown as it is below this: "4392" reads better than "4.39k"


_BYTES = _Prefixes(1024, (" KiB", " MiB", " GiB", " TiB"), 1024)
_COUNT = _Prefixes(1000, ("k", "M", "G", "T"), 10_000)


def _prefixes(unit: str) -> _Prefixes:
    return _BYTES if unit == "bytes" else _COUNT


def human(value: float, unit: str = "") -> str:
    """8, 4392, 12.3k, 2.5M, 2.62 MiB: short labels for ticks, tooltips and tables."""
    p = _prefixes(unit)
    # Compared as shown, so that 999999 is "1M" rather than "1000k".
    if not math.isfinite(value) or abs(float(_digits(value, 4))) < p.plain_below:
        return _digits(value, 4)
    value /= p.base
    i = 0
    while abs(float(_digits(value, 3))) >= p.base and i < len(p.suffixes) - 1:
        value /= p.base
        i += 1
    return _digits(value, 3) + p.suffixes[i]


def _digits(value: float, n: int) -> str:
    """`n` significant digits, but never an exponent: "1000 KiB", not "1e+03 KiB"."""
    text = f"{value:.{n}g}"
    return f"{value:.0f}" if "e+" in text else text


# --- the value axis ------------------------------------------------------

MAX_INTERVALS = 5
_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
_SLACK = 1e-9  # float noise: 3 steps that compute as 3.0000000001 are still 3


@dataclass(frozen=True)
class Axis:
    """A value range with round ends, cut into round steps."""

    low: float
    high: float
    step: float

    def ticks(self) -> list[float]:
        n = round((self.high - self.low) / self.step)
        ticks = (self.low + self.step * i for i in range(n + 1))
        return [0.0 if abs(t) < self.step * _SLACK else t for t in ticks]  # 0, not 1e-17


def axis(values: Iterable[float], unit: str = "") -> Axis:
    """From 0 (or below it, for negative values) to the largest value, rounded out to steps.

    0 is always on the axis: bars start there, and dots read against 0 show
    how big a difference is, not only that there is one.
    """
    finite = [v for v in values if math.isfinite(v)]
    low, high = min([0.0, *finite]), max([0.0, *finite])
    if high <= low:
        high = low + 1.0
    step = _round_step((high - low) / MAX_INTERVALS, unit)
    return Axis(step * math.floor(low / step + _SLACK), step * math.ceil(high / step - _SLACK), step)


def _round_step(raw: float, unit: str) -> float:
    """The smallest step >= raw of 1, 2, 2.5 or 5 x 10^k; for bytes, of KiB, MiB, GiB (ticks at 1 MiB, not 1e6)."""
    base = _prefixes(unit).base if unit == "bytes" else 1
    size = 1.0
    while base > 1 and raw / size >= base:
        size *= base
    scaled = raw / size
    magnitude = 10.0 ** math.floor(math.log10(scaled))
    step = next(m * magnitude for m in _STEPS if scaled <= m * magnitude * (1 + _SLACK))
    if base > 1 and step >= 1000:  # 1000 KiB: one MiB says it better
        return size * base
    return step * size


# --- the frame both figures are drawn on ---------------------------------

PLOT_H = 170
LEFT, RIGHT = 72, 12  # tick labels and the unit on the left
CHAR_W = 6  # pixels per character of a 10px label, roughly
LABEL_MAX = 24  # characters of a category label before it is cut (the full one is its tooltip)


@dataclass(frozen=True)
class _Frame:
    width: int
    top: int  # the title (and a legend) above the plot
    bottom: int  # the category labels below it
    axis: Axis

    @property
    def height(self) -> int:
        return self.top + PLOT_H + self.bottom

    @property
    def plot_w(self) -> float:
        return self.width - LEFT - RIGHT

    def y(self, value: float) -> float:
        ax = self.axis
        return self.top + PLOT_H * (ax.high - value) / (ax.high - ax.low)


def _label_bottom(labels: Sequence[str], room: float) -> int:
    """Space under the plot: one line of labels if they all fit their column, else room for slanted ones."""
    return 36 if all(len(s) * CHAR_W <= room for s in labels) else 115


def _open(f: _Frame, kind: str, title: str) -> list[str]:
    return [f'<svg class="chart {kind}" width="{f.width}" height="{f.height}" '
            f'viewBox="0 0 {f.width} {f.height}" role="img" aria-label="{escape(title)}">',
            f'<text x="{f.width / 2:.0f}" y="16" text-anchor="middle" class="title">{escape(title)}</text>']


def _y_axis(f: _Frame, unit: str) -> list[str]:
    mid = f.top + PLOT_H / 2
    out = [f'<text x="12" y="{mid:.0f}" class="unit" transform="rotate(-90 12 {mid:.0f})" '
           f'text-anchor="middle">{escape(unit)}</text>']
    for v in f.axis.ticks():
        y = f.y(v)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + f.plot_w:.0f}" y2="{y:.1f}" '
                   f'stroke="{"#333" if v == 0 else "#ddd"}"/>'
                   f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                   f"{escape(human(v, unit))}</text>")
    return out


def _category(f: _Frame, cx: float, room: float, text: str) -> str:
    """A column's label under the plot: level if it fits its column, else slanted and cut."""
    y = f.top + PLOT_H + 14
    if len(text) * CHAR_W <= room:
        place, shown = f'x="{cx:.1f}" y="{y}" text-anchor="middle"', text
    else:
        place = f'x="{cx:.1f}" y="{y}" text-anchor="end" transform="rotate(-50 {cx:.1f} {y})"'
        shown = _short(text, LABEL_MAX)
    return f'<text {place} class="cat">{escape(shown)}<title>{escape(text)}</title></text>'


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --- the dot strip -------------------------------------------------------

STRIP_W = 380
STATUS_OTHER = PALETTE[6]  # interrupted, skipped: grey


@dataclass(frozen=True)
class Point:
    column: str  # the axis value
    value: float
    status: str  # colours the dot
    label: str  # tooltip: cell#rep


@dataclass(frozen=True)
class Strip:
    """One column per axis value, one dot per repetition; the short bar across a column is the mean."""

    title: str
    unit: str
    columns: tuple[str, ...]  # axis values, in the order of the config
    points: tuple[Point, ...]


def _strip(strip: Strip) -> str:
    col_w = (STRIP_W - LEFT - RIGHT) / max(1, len(strip.columns))
    f = _Frame(STRIP_W, 28, _label_bottom(strip.columns, col_w), axis((p.value for p in strip.points), strip.unit))
    out = [*_open(f, "strip", strip.title), *_y_axis(f, strip.unit)]
    for i, col in enumerate(strip.columns):
        out += _column(f, strip, col, LEFT + col_w * (i + 0.5), col_w)
    out.append("</svg>")
    return "\n".join(out)


def _column(f: _Frame, strip: Strip, col: str, cx: float, col_w: float) -> list[str]:
    pts = [p for p in strip.points if p.column == col]
    out = [_category(f, cx, col_w, col)]
    for j, p in enumerate(pts):
        # A fixed spread, so equal values stay visible as several dots (and the SVG deterministic).
        dx = ((j % 7) - 3) * min(5.0, col_w / 16)
        colour = STATUS_COLOURS.get(p.status, STATUS_OTHER)
        tip = f"{p.label}: {human(p.value, strip.unit)}"
        out.append(f'<circle cx="{cx + dx:.1f}" cy="{f.y(p.value):.1f}" r="4" fill="{colour}" fill-opacity="0.8">'
                   f"<title>{escape(tip)}</title></circle>")
    if pts:
        mean = f.y(sum(p.value for p in pts) / len(pts))
        half = min(24.0, col_w / 3)
        out.append(f'<line x1="{cx - half:.1f}" y1="{mean:.1f}" x2="{cx + half:.1f}" y2="{mean:.1f}" '
                   'stroke="#333" stroke-width="2"/>')
    return out


# --- grouped bars --------------------------------------------------------

BARS_MIN_W = 520
BAR_MIN = 12  # pixels per bar: a wider chart rather than slivers


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float | None, ...]  # per category; None: not reported
    errors: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    """Categories along the bottom, one bar per series in each (the mean, with its stddev)."""

    title: str
    unit: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]


def _bars(chart: Chart) -> str:
    groups, per_group = max(len(chart.categories), 1), max(len(chart.series), 1)
    width = max(BARS_MIN_W, LEFT + RIGHT + int(groups * per_group * BAR_MIN / 0.8))
    group_w = (width - LEFT - RIGHT) / groups
    f = _Frame(width, 44, _label_bottom(chart.categories, group_w), axis(_extents(chart), chart.unit))
    out = [*_open(f, "bars", chart.title), *_legend(chart), *_y_axis(f, chart.unit)]
    bar_w = group_w * 0.8 / per_group
    for g, category in enumerate(chart.categories):
        x0 = LEFT + g * group_w + group_w * 0.1
        for i, s in enumerate(chart.series):
            out.append(_bar(f, x0 + i * bar_w, bar_w, s, g, i, f"{s.label}, {category}", chart.unit))
        out.append(_category(f, LEFT + (g + 0.5) * group_w, group_w, category))
    out.append("</svg>")
    return "\n".join(out)


def _extents(chart: Chart) -> list[float]:
    """Every bar's end and its error bar's far end (the near end never leaves the bar)."""
    out = []
    for s in chart.series:
        for v, e in zip(s.values, s.errors, strict=True):
            if v is not None:
                out += [v, v + e if v >= 0 else v - e]
    return out


def _legend(chart: Chart) -> list[str]:
    out = []
    x = LEFT
    for i, s in enumerate(chart.series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="35" class="legend">{escape(_short(s.label, 24))}</text>')
        x += 24 + 7 * min(len(s.label), 24)
    return out


def _bar(f: _Frame, x: float, w: float, s: Series, g: int, i: int, tip: str, unit: str) -> str:
    value, err = s.values[g], s.errors[g]
    zero = f.y(0.0)
    if value is None:
        return f'<text x="{x + w / 2:.1f}" y="{zero - 3:.1f}" text-anchor="middle" class="na">-</text>'
    y = f.y(value)
    title = escape(f"{tip}: {human(value, unit)}" + (f" ±{human(err, unit)}" if err else ""))
    rect = (f'<rect x="{x:.1f}" y="{min(y, zero):.1f}" width="{max(w - 1, 1):.1f}" height="{abs(zero - y):.1f}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"><title>{title}</title></rect>')
    if not err:
        return rect
    lo, hi = f.y(max(value - err, f.axis.low)), f.y(min(value + err, f.axis.high))
    cx = x + w / 2
    return rect + f'<line x1="{cx:.1f}" y1="{lo:.1f}" x2="{cx:.1f}" y2="{hi:.1f}" stroke="#222"/>'


def render(figure: Strip | Chart) -> str:
    """The figure as one <svg> element, to be put inline in an HTML page."""
    return _strip(figure) if isinstance(figure, Strip) else _bars(figure)
