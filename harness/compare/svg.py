"""Grouped bar charts as inline SVG, written by hand.

A plotting library would pull in hundreds of megabytes for what is a few
rectangles per chart; hand-written SVG keeps the HTML report one small,
self-contained, deterministic file (no ids or dates that change per run).
"""

from __future__ import annotations

import math
from html import escape

from harness.compare.plots import Chart

# Paul Tol's "bright" scheme: distinguishable with the common colour blindnesses.
PALETTE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB")

HEIGHT = 335
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 44, 115
MIN_WIDTH = 520
BAR_MIN = 12  # pixels per bar: wider charts rather than slivers
LABEL_MAX = 24  # characters of a category label (rotated under its group)


def bar_chart(chart: Chart) -> str:
    top, ticks = _nice_top(chart)
    bars = len(chart.categories) * max(len(chart.series), 1)
    width = max(MIN_WIDTH, LEFT + RIGHT + int(bars * BAR_MIN / 0.8))
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" '
        f'role="img" aria-label="{escape(chart.title)}">',
        f'<text x="{width / 2:.0f}" y="16" text-anchor="middle" class="title">'
        f"{escape(chart.title)}</text>",
        *_legend(chart),
        *_y_axis(top, ticks, plot_w, plot_h, chart.unit),
        *_bars(chart, top, plot_w, plot_h),
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="#333"/>',
        "</svg>",
    ]
    return "\n".join(parts)


def _legend(chart: Chart) -> list[str]:
    out = []
    x = LEFT
    for i, s in enumerate(chart.series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="35" class="legend">{escape(_short(s.label, 24))}</text>')
        x += 24 + 7 * min(len(s.label), 24)
    return out


def _y_axis(top: float, ticks: int, plot_w: float, plot_h: float, unit: str) -> list[str]:
    out = [f'<text x="12" y="{TOP + plot_h / 2:.0f}" class="unit" '
           f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})" text-anchor="middle">'
           f"{escape(unit)}</text>"]
    for i in range(ticks + 1):
        value = top * i / ticks
        y = TOP + plot_h - plot_h * i / ticks
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                   f"{compact(value)}</text>")
    return out


def _bars(chart: Chart, top: float, plot_w: float, plot_h: float) -> list[str]:
    out: list[str] = []
    groups = max(len(chart.categories), 1)
    group_w = plot_w / groups
    bar_w = group_w * 0.8 / max(len(chart.series), 1)
    for g, category in enumerate(chart.categories):
        x0 = LEFT + g * group_w + group_w * 0.1
        for i, s in enumerate(chart.series):
            value = s.values[g]
            x = x0 + i * bar_w
            if value is None:
                out.append(f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h - 3}" '
                           f'text-anchor="middle" class="na">-</text>')
                continue
            out.append(_bar(x, bar_w, value, s.errors[g], top, plot_h, i,
                            f"{s.label}, {category}: {compact(value)}"))
        cx = LEFT + (g + 0.5) * group_w
        out.append(f'<text x="{cx:.1f}" y="{TOP + plot_h + 12}" class="cat" text-anchor="end" '
                   f'transform="rotate(-50 {cx:.1f} {TOP + plot_h + 12})">'
                   f"{escape(_short(category, LABEL_MAX))}<title>{escape(category)}</title></text>")
    return out


def _bar(x: float, w: float, value: float, err: float, top: float, plot_h: float, i: int,
         tip: str) -> str:
    h = plot_h * max(value, 0.0) / top
    y = TOP + plot_h - h
    colour = PALETTE[i % len(PALETTE)]
    title = escape(tip + (f" ±{compact(err)}" if err else ""))
    rect = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w - 1, 1):.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{title}</title></rect>')
    if not err:
        return rect
    lo = TOP + plot_h - plot_h * max(value - err, 0.0) / top
    hi = TOP + plot_h - plot_h * (value + err) / top
    cx = x + w / 2
    return rect + f'<line x1="{cx:.1f}" y1="{lo:.1f}" x2="{cx:.1f}" y2="{hi:.1f}" stroke="#222"/>'


# Axis tops (x 10^k) and how many intervals divide each into round ticks.
_TOPS = ((1.0, 4), (1.5, 3), (2.0, 4), (2.5, 5), (3.0, 3), (4.0, 4), (5.0, 5), (6.0, 3),
         (8.0, 4), (10.0, 5))


def _nice_top(chart: Chart) -> tuple[float, int]:
    """The axis top, the largest bar (with its error) rounded up, and its tick count."""
    peak = max((v + e for s in chart.series for v, e in zip(s.values, s.errors, strict=True)
                if v is not None), default=0.0)
    if peak <= 0 or not math.isfinite(peak):
        return 1.0, 4
    magnitude = 10.0 ** math.floor(math.log10(peak))
    return next((t * magnitude, n) for t, n in _TOPS if peak <= t * magnitude * (1 + 1e-9))


def compact(v: float) -> str:
    """1234567 -> 1.23M: short labels for ticks and tooltips."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= limit:
            return f"{v / limit:.3g}{suffix}"
    return f"{v:.3g}"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
