"""The terminal table writes what rich would have written, without rich laying out every row."""

from __future__ import annotations

import io
import itertools
import random
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from rich.table import Table
from rich.text import Text

from harness.compare import table as rows_table
from harness.compare import text
from harness.formats import terminal
from tests.fakes import synth

STYLES = {"regressed": "bold red", "improved": "bold green", "unchanged": "dim"}
WORDS = ["beyond", "noise", "floor", "5%,", "p", "<", "0.05", "within", "±3.2", "寬字", "[bytes]",
         "e1000e-trixie-arm64-deadbeef-with-a-long-slug", "x"]


def _table(term: terminal.Terminal, header_style: str) -> Table:
    t = term.table(show_lines=False, header_style=header_style)
    t.add_column("cell", overflow="fold")
    t.add_column("metric", no_wrap=True, min_width=12)
    t.add_column("n", justify="right")
    t.add_column("verdict")
    t.add_column("why", ratio=1)
    return t


def _rows(rng: random.Random, count: int) -> list[tuple[str, ...]]:
    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, n)))
    return [(rng.choice(WORDS[-2:]) + str(i), f"fio:m{i}.iops [IO/s]", str(rng.randint(0, 10 ** rng.randint(0, 9))),
             rng.choice(list(STYLES)), words(12)) for i in range(count)]


def _by_rich(term: terminal.Terminal, header_style: str, rows: Sequence[tuple[str, ...]]) -> str:
    out = io.StringIO()
    console = term.console(out)
    t = _table(term, header_style)
    for row in rows:
        t.add_row(*map(Text, row[:3]), Text(row[3], style=STYLES[row[3]]), Text(row[4]))
    console.print(t)
    return out.getvalue()


@pytest.mark.parametrize(("tty", "color", "width"),
                         list(itertools.product((False, True), (False, True), (200, 90, 60, 30))))
def test_render_table_is_what_rich_prints(tty: bool, color: bool, width: int) -> None:
    """Rows that fit, cells wrapped or folded (a styled one too), wide characters, no rows; and
    a console too narrow for the table (left to rich): byte for byte."""
    rng = random.Random(width)
    term = terminal.Terminal(tty=tty, color=color, width=width)
    header_style = "bold" if color else ""
    for rows in ([], _rows(rng, 1), _rows(rng, 40)):
        console = term.console(io.StringIO())
        fast = terminal.render_table(console, _table(term, header_style), rows, {3: STYLES})
        assert fast == _by_rich(term, header_style, rows)


def test_render_table_leaves_what_rich_would_change_to_rich() -> None:
    """A tab, a newline or blanks at an edge: rich's own rules, so rich draws the table."""
    term = terminal.Terminal(tty=True, color=False, width=100)
    for odd in ("a\tb", "two\nlines", " lead", "trail ", "\x1b[31m"):
        rows = [("c", "m", "1", "unchanged", odd)]
        fast = terminal.render_table(term.console(io.StringIO()), _table(term, ""), rows, {3: STYLES})
        assert fast == _by_rich(term, "", rows)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return synth.planted_comparison(tmp_path_factory.mktemp("runs"))


@pytest.mark.parametrize("show_all", [False, True])
def test_first_rows_are_the_first_of_all_rows(comparison, show_all: bool) -> None:  # type: ignore[no-untyped-def]
    everything = rows_table.rows(comparison, show_all=show_all)
    for limit in (0, 1, 7, len(everything) + 5):
        shown, total = rows_table.first_rows(comparison, show_all=show_all, limit=limit)
        assert total == len(everything)
        assert shown == (everything[:limit] if limit else everything)
    bare, _ = rows_table.first_rows(comparison, show_all=show_all, ranges=False)
    assert [r._replace(base_range="", new_range="") for r in everything] == bare


def test_text_report_is_the_rich_table(comparison) -> None:  # type: ignore[no-untyped-def]
    """The whole report against one drawn by rich, row by row, on a terminal and off one."""
    for boxes, color, width in itertools.product((False, True), (False, True), (240, 120)):
        out = io.StringIO()
        term = terminal.Terminal(tty=boxes, color=color, width=width)
        console = term.console(out)
        text._render_one(console, term, comparison, True, 0)
        expected = io.StringIO()
        console = term.console(expected)
        shown = rows_table.rows(comparison, show_all=True)
        t = term.table(show_lines=False, header_style="bold" if color else "")
        t.add_column("cell", overflow="fold")
        t.add_column("metric", no_wrap=True, min_width=min(60, max(len(r.metric) for r in shown)))
        for col in ("baseline", "new", "n", "change", "p"):
            t.add_column(col, justify="right")
        t.add_column("verdict")
        t.add_column("why", ratio=1)
        for r in shown:
            t.add_row(*map(Text, text._cells(r)[:7]), Text(r.verdict, style=text.STYLE[r.verdict]), Text(r.reason))
        with console.capture() as captured:
            console.print(t)
        drawn, table = out.getvalue(), captured.get()
        assert table.count("\n") > len(shown)
        assert drawn.endswith("\n" + table + "\n")


def test_render_table_does_not_hand_every_row_to_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the rows that hold a column's widest cell go into a rich table (to size the
    columns): a compare report's table is drawn by the fast path, not left to rich."""
    added: list[int] = []
    add_row = Table.add_row

    def counted(self: Table, *cells: Any, **kw: Any) -> None:
        added.append(1)
        add_row(self, *cells, **kw)

    monkeypatch.setattr(Table, "add_row", counted)
    for tty, color in itertools.product((False, True), (False, True)):
        term = terminal.Terminal(tty=tty, color=color, width=120)
        t = term.table(show_lines=False, header_style="bold" if color else "")
        t.add_column("cell", overflow="fold")
        t.add_column("metric", no_wrap=True)
        t.add_column("verdict")
        t.add_column("why", ratio=1)
        added.clear()
        rows = [(f"cell-{i}", f"m{i}", "unchanged", "within noise floor") for i in range(500)]
        terminal.render_table(term.console(io.StringIO()), t, rows, {2: STYLES})
        assert 0 < len(added) <= 4



@pytest.mark.parametrize("change", ["gone", "reshaped"])
def test_render_table_outlives_a_rich_without_its_private_helpers(monkeypatch: pytest.MonkeyPatch,
                                                                  change: str) -> None:
    """The fast path sizes columns with rich's private Table._calculate_column_widths. A
    rich release that renames it (gone for kharness, there for rich itself) or reshapes
    it leaves the table to rich: the same bytes, never a traceback."""
    real = Table._calculate_column_widths

    def seen_from_kharness(self: Table, *args: object) -> object:
        if sys._getframe(1).f_code.co_filename == terminal.__file__:
            if change == "gone":
                raise AttributeError("'Table' object has no attribute '_calculate_column_widths'")
            return (1, 2)  # reshaped: not one width per column
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Table, "_calculate_column_widths", seen_from_kharness)
    term = terminal.Terminal(tty=True, color=True, width=90)
    rows = _rows(random.Random(7), 20)
    fast = terminal.render_table(term.console(io.StringIO()), _table(term, "bold"), rows, {3: STYLES})
    assert fast == _by_rich(term, "bold", rows)
