"""A strip plot as inline SVG: one column per axis value, one dot per repetition.

Dots rather than bars because a nightly wants to see the spread between
repetitions and cells, not only a mean (the mean is the short line across
each column). Written by hand: a few circles per chart do not justify a
plotting library in the tool's dependencies, and the SVG stays small and
deterministic (no ids or dates), so report.html diffs cleanly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 380, 240
LEFT, RIGHT, TOP, BOTTOM = 70, 12, 28, 56
DOT = {"pass": "#228833", "fail": "#EE6677", "error": "#AA3377"}


@dataclass(frozen=True)
class Point:
    column: str  # the axis value
    value: float
    status: str  # colours the dot
    label: str  # tooltip: cell#rep


@dataclass(frozen=True)
class Strip:
    title: str
    unit: str
    columns: tuple[str, ...]  # axis values, in the order of the config
    points: tuple[Point, ...]


def human(value: float, unit: str = "") -> str:
    """1.5 MiB, 2.7k, 8: short tick and table labels."""
    base, suffixes = (1024, (" KiB", " MiB", " GiB", " TiB")) if unit == "bytes" else (1000, ("k", "M", "G", "T"))
    if abs(value) < (1024 if unit == "bytes" else 10_000):
        return f"{value:.4g}"
    i = 0
    value /= base
    while abs(value) >= base and i < len(suffixes) - 1:
        value /= base
        i += 1
    return f"{value:.3g}{suffixes[i]}"


def _scale(points: tuple[Point, ...]) -> tuple[float, float]:
    """A y range from 0 (or the minimum, if negative) up to a round top."""
    values = [p.value for p in points] or [0.0]
    low = min(0.0, *values)
    high = max(values)
    if high <= low:
        high = low + 1.0
    step = 10 ** math.floor(math.log10(high - low))
    for mult in (1, 2, 2.5, 5, 10):
        if (high - low) / (step * mult) <= 5:
            step *= mult
            break
    return low, low + step * math.ceil((high - low) / step)


def render(strip: Strip) -> str:
    low, high = _scale(strip.points)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    col_w = plot_w / max(1, len(strip.columns))

    def y(v: float) -> float:
        return TOP + plot_h - (v - low) / (high - low) * plot_h

    out = [f'<svg class="strip" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(strip.title)}">',
           f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" class="title">{escape(strip.title)}</text>']
    for i in range(5):
        v = low + (high - low) * i / 4
        out.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{LEFT + plot_w}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">'
                   f"{escape(human(v, strip.unit))}</text>")
    for i, col in enumerate(strip.columns):
        out += _column(strip, col, LEFT + col_w * (i + 0.5), col_w, y)
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" class="unit">'
               f"{escape(strip.unit)}</text></svg>")
    return "\n".join(out)


def _column(strip: Strip, col: str, cx: float, col_w: float, y: Callable[[float], float]) -> list[str]:
    pts = [p for p in strip.points if p.column == col]
    out = [f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="tick">'
           f"{escape(col[:18])}</text>"]
    for j, p in enumerate(pts):
        # Deterministic spread so equal values stay visible as several dots.
        dx = ((j % 7) - 3) * min(5.0, col_w / 16)
        colour = DOT.get(p.status, "#BBBBBB")
        tip = f"{p.label}: {human(p.value, strip.unit)}"
        out.append(f'<circle cx="{cx + dx:.1f}" cy="{y(p.value):.1f}" r="4" fill="{colour}" fill-opacity="0.8">'
                   f"<title>{escape(tip)}</title></circle>")
    if pts:
        mean = sum(p.value for p in pts) / len(pts)
        half = min(24.0, col_w / 3)
        out.append(f'<line x1="{cx - half:.1f}" y1="{y(mean):.1f}" x2="{cx + half:.1f}" y2="{y(mean):.1f}" '
                   'stroke="#333" stroke-width="2"/>')
    return out
