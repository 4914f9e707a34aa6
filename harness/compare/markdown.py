"""Markdown for a review mail or a pull request: a summary and a table per new directory.

Names come from result directories and the command line (directory names,
cell slugs, metric names and units), which are untrusted: rendered by
GitHub or GitLab, a `<img ...>`, a backtick or a `|` in one would become
HTML, end a code span or split the table. So names go into code spans
fenced longer than any backtick run they hold, free text has markdown's
active characters backslash-escaped (an angle bracket only where it could
open a tag, so "p < 0.05" stays readable raw), and `|` and line breaks are
escaped in every table cell.
"""

from __future__ import annotations

import re

from harness.compare.diff import Comparison
from harness.compare.table import first_rows, missing_lines, no_match_hint, summary_line

HEADER = ("cell", "metric", "baseline", "new", "n", "range (base / new)", "change", "p", "verdict",
          "why")

# Characters with a meaning in (GitHub-flavoured) markdown inline text, and
# "<" where an HTML tag, comment or autolink could start.
_ACTIVE = re.compile(r"([\\`*_\[\]{}#!~&|])|<(?=[A-Za-z/!?])")
_TICKS = re.compile(r"`+")
_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def render(comparisons: list[Comparison], *, show_all: bool = False, limit: int = 50) -> str:
    parts = [_one(cmp, show_all, limit) for cmp in comparisons]
    return "\n".join(parts)


def _one(cmp: Comparison, show_all: bool, limit: int) -> str:
    lines = [f"### {code(cmp.base.name, table=False)} -> {code(cmp.new.name, table=False)}", "",
             escape(summary_line(cmp)), ""]
    notes = [n for n in (no_match_hint(cmp), *missing_lines(cmp.base), *missing_lines(cmp.new)) if n]
    lines += [f"> note: {escape(n)}" for n in notes]
    if notes:
        lines.append("")
    shown, total = first_rows(cmp, show_all=show_all, limit=limit)  # only the rows shown are written out
    if not shown:
        return "\n".join([*lines, "Nothing changed beyond the noise floors.", ""])
    lines.append(_row(tuple(escape(h) for h in HEADER)))
    lines.append("|" + "|".join("---" for _ in HEADER) + "|")
    for r in shown:
        ranges = f"{r.base_range} / {r.new_range}" if r.base_range or r.new_range else ""
        verdict = f"**{r.verdict}**" if r.verdict in ("regressed", "improved") else r.verdict
        lines.append(_row((escape(r.cell), code(r.metric), *map(escape, (r.base, r.new, r.n, ranges, r.change, r.p)),
                           verdict, escape(r.reason))))
    if limit and total > limit:
        lines += ["", f"... and {total - limit} more rows."]
    return "\n".join([*lines, ""])


def _row(cells: tuple[str, ...]) -> str:
    """A table row of cells already made markdown (escape(), code())."""
    return "| " + " | ".join(cells) + " |"


def _line(text: str) -> str:
    return _CONTROL.sub("", _BREAKS.sub(" ", text))


def escape(text: str) -> str:
    """Free text as markdown that shows it literally: on one line, nothing in it active."""
    return _ACTIVE.sub(lambda m: "\\" + (m.group(1) or "<"), _line(text))


def code(text: str, *, table: bool = True) -> str:
    """`text` as an inline code span: literal whatever it holds (backticks included).

    In a table cell `|` is escaped even inside the span: GFM splits cells
    before it reads spans, and shows the escaped bar as a plain one.
    """
    text = _line(text)
    fence = "`" * (max((len(t) for t in _TICKS.findall(text)), default=0) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if table else span
