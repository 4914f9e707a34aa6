"""Markdown for a review mail or a pull request: a summary and a table per new directory."""

from __future__ import annotations

from harness.compare.diff import Comparison
from harness.compare.table import missing_lines, no_match_hint, rows, summary_line

HEADER = ("cell", "metric", "baseline", "new", "n", "range (base / new)", "change", "p", "verdict",
          "why")


def render(comparisons: list[Comparison], *, show_all: bool = False, limit: int = 50) -> str:
    parts = [_one(cmp, show_all, limit) for cmp in comparisons]
    return "\n".join(parts)


def _one(cmp: Comparison, show_all: bool, limit: int) -> str:
    lines = [f"### `{cmp.base.name}` -> `{cmp.new.name}`", "", summary_line(cmp), ""]
    notes = [n for n in (no_match_hint(cmp), *missing_lines(cmp.base), *missing_lines(cmp.new)) if n]
    lines += [f"> note: {escape(n)}" for n in notes]
    if notes:
        lines.append("")
    shown = rows(cmp, show_all=show_all)
    if not shown:
        return "\n".join([*lines, "Nothing changed beyond the noise floors.", ""])
    lines.append(_row(HEADER))
    lines.append("|" + "|".join("---" for _ in HEADER) + "|")
    for r in shown[:limit] if limit else shown:
        ranges = f"{r.base_range} / {r.new_range}" if r.base_range or r.new_range else ""
        verdict = f"**{r.verdict}**" if r.verdict in ("regressed", "improved") else r.verdict
        lines.append(_row((r.cell, f"`{r.metric}`", r.base, r.new, r.n, ranges, r.change, r.p,
                           verdict, r.reason)))
    if limit and len(shown) > limit:
        lines += ["", f"... and {len(shown) - limit} more rows."]
    return "\n".join([*lines, ""])


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(escape(c) for c in cells) + " |"


def escape(text: str) -> str:
    """Keep a cell's text from breaking the table. Angle brackets stay as they are: the
    text is read raw in mail, and "p < 0.05" is no HTML tag to a markdown renderer."""
    return text.replace("|", "\\|").replace("\n", " ")
