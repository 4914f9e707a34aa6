"""How text meets a terminal or a pipe: colour, width and box-drawing tables.

One policy for every command (README "Command line"):

- colour: `--color always|never` decides; `auto` (the default) colours a
  terminal only, and not when NO_COLOR is set to anything (no-color.org) or
  TERM is `dumb`;
- width: COLUMNS when it is a number, else the terminal's width, else the
  caller's width for pipes and files (wide enough that a CI log's rows do not
  wrap);
- box-drawing tables only on a terminal: piped or redirected, a table is
  plain columns of text (`kharness kernel info X | cat`, grep, a mail).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from rich import box
from rich.cells import cell_len
from rich.console import COLOR_SYSTEMS, Console, ConsoleOptions
from rich.table import Table
from rich.text import Text

COLOR_MODES = ("auto", "always", "never")
MIN_WIDTH = 20


@dataclass(frozen=True)
class Terminal:
    """What one output stream gets: colour or not, box tables or not, how wide."""

    tty: bool
    color: bool
    width: int

    def console(self, file: IO[str]) -> Console:
        """A rich console that writes `file` by this policy (values, not markup, are the caller's job)."""
        return Console(
            file=file, width=self.width, force_terminal=self.tty or self.color,
            color_system="auto" if self.color else None, no_color=not self.color,
            highlight=False, emoji=False, soft_wrap=False,
        )

    def print(self, file: IO[str], *renderables: Any) -> None:
        """Print to `file`; off a terminal, without the blanks rich pads table rows with."""
        console = self.console(file)
        if self.tty:
            console.print(*renderables, sep="\n")
            return
        with console.capture() as captured:
            console.print(*renderables, sep="\n")
        file.write(strip_trailing(captured.get()))

    def table(self, **kwargs: Any) -> Table:
        """A rich table: box drawing on a terminal, plain space-separated columns elsewhere."""
        if not self.tty:
            kwargs.setdefault("box", None)
            kwargs.setdefault("pad_edge", False)
            kwargs.setdefault("show_edge", False)
            kwargs.setdefault("title_justify", "left")
        else:
            kwargs.setdefault("box", box.HEAVY_HEAD)
        if not self.color:
            kwargs.setdefault("header_style", "")
            kwargs.setdefault("title_style", "")
        return Table(**kwargs)


def strip_trailing(text: str) -> str:
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


def of(stream: IO[str], color: str = "auto", *, pipe_width: int = 80,
       environ: Mapping[str, str] | None = None) -> Terminal:
    """The policy for `stream` under `--color` mode `color` and the environment."""
    env = os.environ if environ is None else environ
    tty = _isatty(stream)
    return Terminal(tty=tty, color=wants_color(color, tty, env), width=width(stream, tty, pipe_width, env))


def wants_color(mode: str, tty: bool, environ: Mapping[str, str]) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return tty and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def width(stream: IO[str], tty: bool, pipe_width: int, environ: Mapping[str, str]) -> int:
    """COLUMNS first (a person's explicit word), then the terminal, then `pipe_width`."""
    columns = environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return max(MIN_WIDTH, int(columns))
    if tty:
        try:
            return max(MIN_WIDTH, os.get_terminal_size(stream.fileno()).columns)
        except (OSError, ValueError, AttributeError):
            return 80
    return pipe_width


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, AttributeError):  # closed, or a stand-in without isatty
        return False


def render_table(console: Console, table: Table, rows: Sequence[Sequence[str]],
                 styles: Mapping[int, Mapping[str, str]] | None = None) -> str:
    """What `console.print(table)` writes once `rows` are added as Text (the cell of column
    i styled `styles[i][cell]` where given), without rich laying out every cell.

    rich measures, wraps and pads each cell as a renderable of its own: about 2 ms a row
    of nine cells, minutes for a compare report of 200,000 rows. The column widths are
    rich's own, from a table of the few rows that hold each column's widest cell (only the
    widest counts); the header and the edges are rich's, rendered once at those widths;
    only the body lines are written here, a cell too wide for its column wrapped by rich.
    A table this does not know how to draw (a style, a footer, a title, row lines, ...)
    goes to rich whole.
    """
    styles = styles or {}
    try:
        return _FastTable(console, table, styles).render(rows)
    except _NotPlain:
        pass
    for row in rows:
        table.add_row(*(Text(cell, style=styles.get(i, {}).get(cell, "")) for i, cell in enumerate(row)))
    with console.capture() as captured:
        console.print(table)
    return captured.get()


class _NotPlain(Exception):
    """A table or a cell that the fast path does not draw the way rich would."""


class _FastTable:
    """The body of a table of plain Text cells, written line by line (see render_table)."""

    def __init__(self, console: Console, table: Table, styles: Mapping[int, Mapping[str, str]]) -> None:
        def unstyled(style: Any) -> bool:
            return not console.get_style(style or "")

        plain_table = (
            not console.legacy_windows and not table.rows and table.show_header and not table.show_footer
            and not table.show_lines and not table.leading and not table.expand and not table.title
            and not table.caption and not table.row_styles and not table.collapse_padding
            and table.width is None and table.min_width is None and unstyled(table.style)
            and unstyled(table.border_style) and tuple(table.padding) == (0, 1, 0, 1)
            and all(unstyled(c.style) and c.vertical == "top" and c.justify in ("left", "right")
                    and c.width is None and c.max_width is None for c in table.columns)
        )
        if not plain_table:
            raise _NotPlain
        self.console = console
        self.table = table
        self.styles = styles
        self.color_system = COLOR_SYSTEMS.get(console.color_system or "")
        self._styled: dict[tuple[str, str], str] = {}
        self._wrapped: dict[tuple[int, str, int], list[str]] = {}

    def render(self, rows: Sequence[Sequence[str]]) -> str:
        table, columns, console = self.table, self.table.columns, self.console
        ncol = len(columns)
        if any(len(row) != ncol for row in rows):
            raise _NotPlain
        texts = list(zip(*rows, strict=True)) if rows else [()] * ncol
        sizes = [_widths(column) for column in texts]  # None: each cell as wide as it is long
        lengths = [list(map(len, column)) if size is None else size for column, size in zip(texts, sizes, strict=True)]
        widest = [max(n, default=0) for n in lengths]
        proxy = self._copy(table)
        for index in sorted({n.index(w) for n, w in zip(lengths, widest, strict=True) if n}):
            self._add(proxy, rows[index])
        options = console.options
        widths, extra = _rich_widths(proxy, console, options)
        if sum(widths) + extra > options.max_width:
            raise _NotPlain  # rich would crop every line to the console: rare, its job
        pads = [(0 if i == 0 and not table.pad_edge else 1, 0 if i == ncol - 1 and not table.pad_edge else 1)
                for i in range(ncol)]
        head, foot = self._head_and_foot(widths, pads)
        if table.box is not None:
            box = table.box.substitute(options, safe=table.safe_box if table.safe_box is not None
                                       else console.safe_box)
            left_edge, divider, right_edge = box.mid_left, box.mid_vertical, box.mid_right
            if not table.show_edge:
                left_edge = right_edge = ""
        else:
            left_edge = divider = right_edge = ""
        inner = [w - left - right for w, (left, right) in zip(widths, pads, strict=True)]
        if min(inner, default=1) < 1:
            raise _NotPlain  # a column squeezed to its padding or less
        before = [left_edge + " " * pads[0][0]] + [" " * pads[i - 1][1] + divider + " " * pads[i][0]
                                                   for i in range(1, ncol)]
        after = " " * pads[-1][1] + right_edge + "\n"
        # One format string a line: a column of cells as wide as they are long is padded by
        # its field; the others (styled, wide characters) come padded.
        fields: list[str] = []
        args: list[Sequence[str]] = []
        tall: set[int] = set()  # rows with a cell wider than its column: drawn one by one
        for i, (column, width) in enumerate(zip(texts, inner, strict=True)):
            right = columns[i].justify == "right"
            if widest[i] > width:
                tall.update(j for j, n in enumerate(lengths[i]) if n > width)
            fields.append(_braces(before[i]))
            if i in self.styles or sizes[i] is not None:
                padded = {cell: self._piece(i, cell, size, width, right)
                          for cell, size in set(zip(column, lengths[i], strict=True)) if size <= width}
                args.append([padded.get(cell, "") for cell in column])
                fields.append("{}")
            else:
                args.append(column)
                fields.append(f"{{:{'>' if right else '<'}{width}}}")
        lines = list(map(("".join(fields) + _braces(after)).format, *args)) if rows else []
        for j in tall:
            lines[j] = self._row(rows[j], inner, before, after)
        return "".join(head) + "".join(lines) + foot

    def _head_and_foot(self, widths: list[int], pads: list[tuple[int, int]]) -> tuple[list[str], str]:
        """The lines above the rows and below them, rendered by rich: a table of no rows."""
        fixed = self._copy(self.table)
        for column, width, (left, right) in zip(fixed.columns, widths, pads, strict=True):
            column.width, column.min_width, column.ratio = width - left - right, None, None
        with self.console.capture() as captured:
            self.console.print(fixed)
        head = captured.get().splitlines(keepends=True)
        foot = head.pop() if self.table.box is not None and self.table.show_edge else ""
        return head, foot

    def _piece(self, i: int, cell: str, size: int, width: int, right: bool) -> str:
        fill = " " * (width - size)
        piece = fill + cell if right else cell + fill
        style = self.styles.get(i, {}).get(cell)
        return self._style(style, piece) if style else piece

    def _row(self, row: Sequence[str], inner: list[int], before: list[str], after: str) -> str:
        """The lines of a row with cells wider than their columns: wrapped by rich, the others
        padded with blank lines below."""
        cells: list[list[str]] = []
        for i, (cell, width) in enumerate(zip(row, inner, strict=True)):
            size = cell_len(cell)
            if size <= width:
                cells.append([self._piece(i, cell, size, width, self.table.columns[i].justify == "right")])
            else:
                cells.append(self._wrap(i, cell, width, self.styles.get(i, {}).get(cell)))
        height = max(len(lines) for lines in cells)
        return "".join("".join(before[i] + (lines[n] if n < len(lines) else " " * inner[i])
                               for i, lines in enumerate(cells)) + after
                       for n in range(height))

    @staticmethod
    def _copy(table: Table) -> Table:
        copied = copy.copy(table)
        copied.columns = [c.copy() for c in table.columns]
        copied.rows = []
        return copied

    def _add(self, table: Table, row: Sequence[str]) -> None:
        table.add_row(*(Text(cell, style=self.styles.get(i, {}).get(cell, "")) for i, cell in enumerate(row)))

    def _style(self, style: str, text: str) -> str:
        key = (style, text)
        done = self._styled.get(key)
        if done is None:
            done = self.console.get_style(style).render(text, color_system=self.color_system) \
                if self.color_system else text
            self._styled[key] = done
        return done

    def _wrap(self, i: int, cell: str, width: int, style: str | None) -> list[str]:
        """The lines rich makes of a cell wider than its column, each `width` wide."""
        key = (i, cell, width)
        done = self._wrapped.get(key)
        if done is None:
            column = self.table.columns[i]
            lines = Text(cell).wrap(self.console, width, justify=column.justify, overflow=column.overflow,
                                    tab_size=self.console.tab_size, no_wrap=column.no_wrap)
            done = []
            for line in lines:
                size = cell_len(line.plain)
                if line.spans or line.style or size > width or (style and size != width):
                    raise _NotPlain  # (justified, a line is as wide as its column: all one style)
                done.append(self._style(style, line.plain) if style else line.plain + " " * (width - size))
            self._wrapped[key] = done
        return done


def _rich_widths(table: Table, console: Console, options: ConsoleOptions) -> tuple[list[int], int]:
    """rich's column widths for `table` and the width of its edges and dividers.

    These are rich's private helpers (Table._extra_width, Table._calculate_column_widths):
    the widths must be rich's own to the cell. rich is pinned below its next major
    version; a release that renames or reshapes them sends every table to rich whole
    (slower, the same output), never a traceback.
    """
    try:
        extra = table._extra_width
        widths = table._calculate_column_widths(console, options.update_width(options.max_width - extra))
    except (AttributeError, TypeError) as exc:
        raise _NotPlain from exc
    if not (isinstance(extra, int) and isinstance(widths, list) and len(widths) == len(table.columns)
            and all(isinstance(w, int) for w in widths)):
        raise _NotPlain
    return widths, extra


def _widths(column: Sequence[str]) -> list[int] | None:
    """How many of a terminal's cells each cell takes, None where that is its length; for text
    that rich would draw as it is (else _NotPlain)."""
    lines = "\n".join(column)
    if not "".join(column).isprintable() or lines[:1] == " " or lines[-1:] == " " \
            or " \n" in lines or "\n " in lines:
        raise _NotPlain  # control characters, tabs, newlines, blanks at an edge: rich's rules
    if lines.isascii() or all(cell_len(c) == 1 for c in set(lines) if not c.isascii()):
        return None
    return [cell_len(cell) for cell in column]


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")
