"""Plain text at most 72 columns wide, for a mail to a kernel list (`--format mail`).

No table: mail clients and list archives reflow or cut wide lines, so each
row of harness/compare/table.py becomes a short block, most telling first:

    regressed    fio-small:swiotlb.bounces
                 0 -> 2,231 ±58.3, +2,231 (n=3/3, p=0.00023)
                 beyond noise floor 1, p < 0.05

The cell is named once at the top when every row is of one cell, else on
each block. Every line is at most `width` columns, whatever the names: long
words are broken, and characters that are not one printable column
(controls, wide or zero-width) become "?", since a result directory is
untrusted input. `render_mail` is the entry point; `kharness ab`'s
report.txt uses it and `wrap` too.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from rich.cells import cell_len

from harness.compare.diff import Comparison
from harness.compare.table import (
    Row,
    first_rows,
    metric_worth_a_row,
    missing_lines,
    no_match_hint,
    status_worth_a_row,
    summary_line,
)

MAIL_WIDTH = 72
MIN_WIDTH = 40
VERDICT_COLUMN = 13  # "inconclusive " is the longest verdict plus a space


def render_mail(comparisons: Sequence[Comparison], *, width: int = MAIL_WIDTH, show_all: bool = False,
                limit: int = 50) -> str:
    """Every comparison as plain text, no line wider than `width` (at least MIN_WIDTH)."""
    if width < MIN_WIDTH:
        raise ValueError(f"width {width}: a mail needs at least {MIN_WIDTH} columns")
    return "\n".join(_one(cmp, width, show_all, limit) for cmp in comparisons)


def wrap(text: str, width: int = MAIL_WIDTH, indent: str = "", first: str | None = None) -> list[str]:
    """`text` cleaned and wrapped to `width` columns: `first` starts the first line
    (default `indent`), `indent` the others; words longer than a line are broken."""
    first = indent if first is None else first
    wrapper = textwrap.TextWrapper(width=width, initial_indent=first, subsequent_indent=indent,
                                   break_long_words=True, break_on_hyphens=False)
    return wrapper.wrap(clean(text)) or [first.rstrip()]


def clean(text: str) -> str:
    """One column per character: anything else (a control, a wide or combining one) is "?"."""
    return "".join(c if c == " " or (c.isprintable() and cell_len(c) == 1) else "?" for c in text)


def _one(cmp: Comparison, width: int, show_all: bool, limit: int) -> str:
    lines = wrap(f"kharness compare: {cmp.base.shown_path} -> {cmp.new.shown_path}", width, "  ", "")
    lines += wrap(summary_line(cmp), width, "  ", "")
    for note in (no_match_hint(cmp), *missing_lines(cmp.base), *missing_lines(cmp.new)):
        if note:
            lines += wrap(note, width, "      ", "note: ")
    # Only the rows shown are written out (a block has no ranges); whether all rows are of
    # one cell is asked of the comparison, not of rows formatted for it.
    shown, total = first_rows(cmp, show_all=show_all, limit=limit, ranges=False)
    if not shown:
        return "\n".join([*lines, "", "Nothing changed beyond the noise floors.", ""])
    one_cell = _one_cell(cmp, show_all)
    if one_cell:
        lines += wrap(f"cell: {shown[0].cell}", width, "  ", "")
    for r in shown:
        lines += ["", *_block(r, width, with_cell=not one_cell)]
    if limit and total > limit:
        lines += ["", *wrap(f"... and {total - limit} more rows (--limit 0 shows all)", width)]
    return "\n".join([*lines, ""])


def _one_cell(cmp: Comparison, show_all: bool) -> bool:
    """Are all rows of `cmp` (table.rows) of one cell (by the name a row gives it, its slug)?
    Asked of the cells with a row, as table.first_rows chooses them, up to the second name."""
    slugs: set[str] = set()
    for cell in cmp.cells:
        if cell.slug not in slugs and (show_all or status_worth_a_row(cell)
                                       or any(metric_worth_a_row(cmp, m) for m in cell.metrics)):
            slugs.add(cell.slug)
            if len(slugs) > 1:
                return False
    return True


def _block(r: Row, width: int, *, with_cell: bool) -> list[str]:
    pad = " " * VERDICT_COLUMN
    out = wrap(r.metric, width, pad, f"{r.verdict:<{VERDICT_COLUMN}}")
    if with_cell:
        out += wrap(f"in {r.cell}", width, pad + "   ", pad)
    figures = f"{r.base} -> {r.new}" + (f", {r.change}" if r.change else "")
    p = (r.p if r.p.startswith("<") else f"={r.p}") if r.p else ""
    detail = ", ".join(x for x in (f"n={r.n}" if r.n else "", f"p{p}" if p else "") if x)
    out += wrap(figures + (f" ({detail})" if detail else ""), width, pad)
    if r.reason:
        out += wrap(r.reason, width, pad)
    return out
