"""The one-screen summary printed at the end of a run (and again by `kharness show`).

`rows` computes it as plain values (what `kharness show --format json`
prints); `print_summary` lays them out: a box table on a terminal, plain
columns in a pipe or a CI log (harness/formats/terminal.py), colour by
`--color` and NO_COLOR.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from harness import results
from harness.formats import terminal
from harness.results import RepRecord

STYLE = {"pass": "green", "fail": "red", "error": "magenta", "skipped": "yellow", "interrupted": "yellow"}
COLUMNS = ("cell", "rep", "status", "boot s", "minalign", "slab kmalloc", "bounces", "reason")
PIPE_WIDTH = 200  # not a terminal (a CI log): wide enough that a row stays one line


def rows(run_dir: Path, records: list[RepRecord]) -> list[dict[str, Any]]:
    """One dict per repetition: its status and the figures the summary shows."""
    loaded = {(r.record.cell_id, r.record.rep): r for r in results.load_run(run_dir).reps}
    out = []
    for rec in records:
        rep = loaded.get((rec.cell_id, rec.rep))
        m = {x.key: x.value for x in rep.metrics} if rep else {}
        bounces = sum(v for k, v in m.items() if k.endswith(":swiotlb.bounces") and not k.startswith("boot:"))
        out.append({
            "cell_id": rec.cell_id, "slug": rec.slug, "rep": rec.rep, "status": rec.status,
            "reason": rec.reason, "boot_seconds": rec.timings.get("boot"),
            "minalign": m.get("boot:slab.minalign"), "slab_kmalloc_bytes": m.get("boot:slab.kmalloc.bytes"),
            "bounces": bounces,
        })
    return out


def counts(records: list[RepRecord]) -> dict[str, int]:
    """Repetitions per status (pass first, as the summary line reads), statuses with none left out."""
    return {s: n for s in STYLE if (n := sum(1 for r in records if r.status == s))}


def print_summary(run_dir: Path, records: list[RepRecord], console: Console | None = None,
                  *, color: str = "auto") -> None:
    term = terminal.of(sys.stdout, color, pipe_width=PIPE_WIDTH)
    table = term.table(title=Text(f"kharness: {run_dir}"), show_lines=False)
    for col in COLUMNS:
        table.add_column(col)
    for row in rows(run_dir, records):
        table.add_row(*_cells(row))
    lines = (table, Text(counts_line(counts(records))), Text(f"results: {run_dir}  (junit: {run_dir / 'junit.xml'})"))
    if console is not None:
        console.print(*lines, sep="\n")
    else:
        term.print(sys.stdout, *lines)


def counts_line(by_status: Mapping[str, int]) -> str:
    return " ".join(f"{n} {s}" for s, n in by_status.items() if n) or "no repetitions ran"


def _cells(row: dict[str, Any]) -> list[Text]:
    """As Text: slugs and reasons are data, never rich markup."""
    boot = row["boot_seconds"]
    return [
        Text(row["slug"]), Text(str(row["rep"])), Text(row["status"], style=STYLE.get(row["status"], "")),
        Text(f"{boot or 0:.1f}"), Text(_fmt(row["minalign"])), Text(_fmt_bytes(row["slab_kmalloc_bytes"])),
        Text(f"{row['bounces']:g}"), Text(row["reason"][:60]),
    ]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _fmt_bytes(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1024:.0f} KiB"
