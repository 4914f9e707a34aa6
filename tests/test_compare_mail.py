"""The mail report formats only the rows it shows, and says what it said when it formatted them all."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from harness.compare import mail
from harness.compare import table as rows_table
from harness.compare.diff import CellDiff, Comparison
from tests.fakes import synth


def every_row_formatted(cmp: Comparison, width: int, show_all: bool, limit: int) -> str:
    """mail._one as it was before first_rows: every row formatted, then cut to `limit`."""
    lines = mail.wrap(f"kharness compare: {cmp.base.shown_path} -> {cmp.new.shown_path}", width, "  ", "")
    lines += mail.wrap(rows_table.summary_line(cmp), width, "  ", "")
    for note in (rows_table.no_match_hint(cmp), *rows_table.missing_lines(cmp.base),
                 *rows_table.missing_lines(cmp.new)):
        if note:
            lines += mail.wrap(note, width, "      ", "note: ")
    shown = rows_table.rows(cmp, show_all=show_all)
    if not shown:
        return "\n".join([*lines, "", "Nothing changed beyond the noise floors.", ""])
    one_cell = len({r.cell for r in shown}) == 1
    if one_cell:
        lines += mail.wrap(f"cell: {shown[0].cell}", width, "  ", "")
    for r in shown[:limit] if limit else shown:
        lines += ["", *mail._block(r, width, with_cell=not one_cell)]
    if limit and len(shown) > limit:
        lines += ["", *mail.wrap(f"... and {len(shown) - limit} more rows (--limit 0 shows all)", width)]
    return "\n".join([*lines, ""])


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Comparison:
    return synth.planted_comparison(tmp_path_factory.mktemp("runs"))


def one_cell_of(cmp: Comparison, n: int) -> Comparison:
    return replace(cmp, cells=cmp.cells[n:n + 1])


def unchanged_but_one_cell(cmp: Comparison) -> Comparison:
    """Rows in one cell only, though the cells before and after it have metrics too."""
    def quiet(cell: CellDiff) -> CellDiff:
        return replace(cell, status=cell.status._replace(verdict="unchanged"),
                       metrics=tuple(m for m in cell.metrics if m.judgement.verdict == "unchanged"))
    return replace(cmp, cells=(quiet(cmp.cells[0]), cmp.cells[1], quiet(cmp.cells[2])))


@pytest.mark.parametrize("show_all", [False, True])
@pytest.mark.parametrize("limit", [0, 1, 2, 7, 50, 10_000])
def test_the_mail_is_the_one_every_row_formatted_made(comparison: Comparison, show_all: bool, limit: int) -> None:
    for cmp in (comparison, one_cell_of(comparison, 1), unchanged_but_one_cell(comparison),
                replace(comparison, cells=())):
        for width in (72, 40):
            assert mail.render_mail([cmp], width=width, show_all=show_all, limit=limit) == \
                every_row_formatted(cmp, width, show_all, limit)


def test_the_cases_are_what_they_say(comparison: Comparison) -> None:
    rows = rows_table.rows(unchanged_but_one_cell(comparison))
    assert rows and len({r.cell for r in rows}) == 1
    assert len({r.cell for r in rows_table.rows(comparison)}) == 3
    # One row shown, of one cell, out of rows of three: each block still names its cell.
    assert "\ncell: " not in mail.render_mail([comparison], limit=1)
    assert "\ncell: " in mail.render_mail([unchanged_but_one_cell(comparison)], limit=1)


def test_only_the_rows_shown_are_formatted(comparison: Comparison, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []
    real = rows_table._metric_row

    def counted(*a: Any) -> Any:
        made.append(a)
        return real(*a)

    monkeypatch.setattr(rows_table, "_metric_row", counted)
    mail.render_mail([comparison], show_all=True, limit=5)
    assert len(made) <= 5
