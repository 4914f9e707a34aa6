"""The terminal table (rich): one table per new directory against the baseline.

Box drawing and colour only when the CLI says the output is a terminal
(harness/formats/terminal.py); in a file or a pipe it is plain columns.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

from harness.compare.diff import Comparison
from harness.compare.table import Row, first_rows, missing_lines, no_match_hint, summary_line
from harness.formats import terminal

STYLE = {
    "regressed": "bold red", "improved": "bold green", "changed": "cyan",
    "inconclusive": "yellow", "new": "blue", "gone": "magenta", "unchanged": "dim",
}


def render(comparisons: list[Comparison], *, show_all: bool = False, limit: int = 50,
           color: bool = False, width: int = 160, boxes: bool = True) -> str:
    out = io.StringIO()
    term = terminal.Terminal(tty=boxes, color=color, width=width)
    console = term.console(out)
    for cmp in comparisons:
        _render_one(console, term, cmp, show_all, limit)
    return out.getvalue() if boxes else terminal.strip_trailing(out.getvalue())


def _render_one(console: Console, term: terminal.Terminal, cmp: Comparison, show_all: bool, limit: int) -> None:
    console.print(Text(f"{cmp.base.shown_path} -> {cmp.new.shown_path}", style="bold"))
    console.print(summary_line(cmp))
    for line in (no_match_hint(cmp), *missing_lines(cmp.base), *missing_lines(cmp.new)):
        if line:
            console.print(Text(f"note: {line}", style="yellow"))
    shown, total = first_rows(cmp, show_all=show_all, limit=limit, ranges=False)
    if not shown:
        console.print("nothing changed beyond the noise floors\n")
        return
    table = term.table(show_lines=False, header_style="bold" if term.color else "")
    table.add_column("cell", overflow="fold")
    # Metric names are what a reader scans for: never cut them short.
    table.add_column("metric", no_wrap=True, min_width=min(60, max(len(r.metric) for r in shown)))
    for col in ("baseline", "new", "n", "change", "p"):
        table.add_column(col, justify="right")
    table.add_column("verdict")
    table.add_column("why", ratio=1)
    console.file.write(terminal.render_table(console, table, [_cells(r) for r in shown], {7: STYLE}))
    if limit and total > limit:
        console.print(f"... and {total - limit} more rows (--limit 0 shows all)")
    console.print()


def _cells(r: Row) -> tuple[str, ...]:
    """The text of each column (drawn as Text: "[bytes]" and the like are not rich markup)."""
    return (r.cell, r.metric, r.base, r.new, r.n, r.change, r.p, r.verdict, r.reason)
